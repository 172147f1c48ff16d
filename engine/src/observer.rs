//! Hooks the engine calls as runs move, so metrics live outside the engine.

use std::time::Duration;

pub trait Observer: Send + Sync {
    /// `outcome`: ok, waiting, retry, failed, lost, timeout.
    fn step_finished(&self, _workflow: &str, _step: &str, _outcome: &str, _took: Duration) {}
    fn step_retried(&self, _workflow: &str, _step: &str) {}
    fn run_finished(&self, _run_id: &str, _workflow: &str, _status: &str) {}
    /// `outcome`: resolved, duplicate, early, late.
    fn callback(&self, _provider: &str, _outcome: &str) {}
    /// Time from parking on a callback to its resolution.
    fn callback_waited(&self, _provider: &str, _waited: Duration) {}
    /// A parked run's progress hook reported a new progress, recorded on the run.
    fn progress(&self, _workflow: &str) {}
}

/// The observer that observes nothing.
pub(crate) struct NoopObserver;

impl Observer for NoopObserver {}
