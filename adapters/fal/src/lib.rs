//! FAL.ai: the queue client, typed app inputs and outputs, webhook verification and routing,
//! the callback inbox and the webhook route ([`router`]). Its simulator lives in `aisha-sim`.

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
pub mod submissions;
pub mod token;
pub mod webhook;

pub use jobs::PROVIDER;
pub use webhook::{WebhookService, router};

/// This crate's tables (FAL submissions, the callback inbox, the stored webhook secret), applied with [`aisha_engine::Db::apply`].
pub static MIGRATIONS: aisha_engine::Migrations = aisha_engine::Migrations {
    postgres: || sqlx::migrate!("../../migrations/fal/postgres"),
    sqlite: || sqlx::migrate!("../../migrations/fal/sqlite"),
};
