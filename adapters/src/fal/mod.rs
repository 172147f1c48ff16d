//! FAL.ai: the queue client, typed app inputs and outputs, webhook verification and routing,
//! the callback inbox, and a local simulator that speaks FAL's wire format.

pub mod apps;
pub mod callback;
pub mod client;
pub mod error;
pub mod inbox;
pub mod jobs;
pub mod jwks;
pub mod probe;
pub mod provider;
pub mod signature;
pub mod signing;
pub mod sim;
pub mod submissions;
pub mod token;
