//! The HTTP face of every process, served by salvo on two listeners: the public one
//! (`HTTP_BIND`: the FAL and Telegram webhooks, `/health`, `/ready`, the local blob URLs) and
//! the private one for operators (`ADMIN_BIND`: `/metrics`, `/admin/*`, the web page `/admin/ui`), so that what is for
//! operators is never reachable where the webhooks are, whatever the proxy in front does.
//!
//! Each adapter crate owns its own routes (`aisha_fal::router`, `aisha_telegram::router`,
//! `aisha_blob::router`); the binary mounts them per role on [`public_router`].

mod admin;
mod admin_ui;
pub mod limits;
pub mod metrics;
mod probes;
mod server;
mod state;

pub use limits::HttpLimits;
pub use metrics::Metrics;
pub use server::{BindError, HttpServer, admin_router, public_router};
pub use state::AppState;
