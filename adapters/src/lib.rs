//! Adapters between Aisha's engine and the outside world.

pub mod blob;
pub mod fal;
pub mod http;
pub mod metrics;
pub mod telegram;
