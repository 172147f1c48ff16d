//! What the handlers of our own routes (probes, metrics, the admin API) share.

use std::sync::Arc;

use aisha_engine::Engine;
use aisha_workflows::credits::CreditLimits;

use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    /// Bearer token of the admin API; `None` turns the API off (every call is 401).
    pub admin_token: Option<String>,
    /// `MAX_GRANT` and `MAX_BALANCE`, for the admin API's grants.
    pub credit_limits: CreditLimits,
}
