//! FAL.ai: the webhook signature check (the queue client, webhook service and simulator
//! build on it).

pub mod signature;
