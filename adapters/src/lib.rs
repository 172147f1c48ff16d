//! Adapters between Aisha's engine and the outside world.

pub mod fal;
pub mod http;
pub mod metrics;
