use std::sync::Arc;

use serde_json::Value;

/// What a step knows about where it runs.
#[derive(Debug, Clone)]
pub struct StepCtx<D> {
    pub run_id: String,
    pub workflow: String,
    pub step: String,
    pub attempt: i64,
    pub subject: Option<String>,
    pub parent_run_id: Option<String>,
    /// The payload that resolved the wait this step follows, if it follows one.
    pub callback: Option<Value>,
    pub deps: Arc<D>,
}

impl<D> StepCtx<D> {
    /// A key unique to this run and step, stable across retries: for idempotent effects.
    pub fn effect_key(&self, what: &str) -> String {
        format!("{}:{}:{what}", self.run_id, self.step)
    }
}

/// Given to the compensation hook when a run fails or is cancelled.
#[derive(Debug, Clone)]
pub struct FailureCtx<D> {
    pub run_id: String,
    pub workflow: String,
    pub subject: Option<String>,
    pub failed_step: String,
    pub error: String,
    pub cancelled: bool,
    pub attempt: i64,
    pub deps: Arc<D>,
}

/// Given to the poll hook of a parked run.
#[derive(Debug, Clone)]
pub struct PollCtx<D> {
    pub run_id: String,
    pub workflow: String,
    pub subject: Option<String>,
    pub provider: String,
    pub external_id: String,
    /// True when this is the last poll: the wait's deadline has passed.
    pub deadline_passed: bool,
    pub deps: Arc<D>,
}

/// Given to the progress hooks of a parked run.
#[derive(Debug, Clone)]
pub struct ProgressCtx<D> {
    pub run_id: String,
    pub workflow: String,
    pub subject: Option<String>,
    pub provider: String,
    pub external_id: String,
    pub deps: Arc<D>,
}
