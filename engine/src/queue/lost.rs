//! Tasks that may have been lost on the way to Redis, and the pause of pushes after a failed
//! one (Redis is the one queue whose tasks are not committed with the transition).

use std::sync::Mutex;
use std::time::Duration;

/// After a failed push, commits leave their tasks to the reconciler this long before trying
/// Redis again.
const PUSH_PAUSE: Duration = Duration::from_secs(1);

/// Set when tasks may have been lost (a Redis push failed, a queue worker restarted, Redis
/// came back empty): the reconciler then re-queues every pending run that has waited more
/// than a moment, not only those older than `stale_after`. A task queued twice is harmless:
/// the run's claim lets one of them run.
#[derive(Debug, Default)]
pub struct LostTasks {
    since_ms: std::sync::atomic::AtomicI64,
    /// When a push last failed: for [`PUSH_PAUSE`] after it, commits skip the push.
    push_failed_ms: std::sync::atomic::AtomicI64,
    /// The `run_id` Redis last reported: a new one means Redis restarted.
    redis_run_id: Mutex<Option<String>>,
}

impl LostTasks {
    /// Notes the server's `run_id`; a change (Redis restarted, maybe empty) marks tasks lost.
    pub(crate) fn observe_run_id(&self, run_id: String) {
        let mut seen = self.redis_run_id.lock().unwrap_or_else(|p| p.into_inner());
        if seen.as_ref().is_some_and(|s| *s != run_id) {
            tracing::warn!("Redis restarted (new run_id): queued tasks may be lost");
            self.suspect();
        }
        *seen = Some(run_id);
    }

    /// A push failed: its tasks are lost, and pushes pause for [`PUSH_PAUSE`]. True when this
    /// is the first failure in a minute (an outage begins: worth a warning).
    pub(crate) fn push_failed(&self) -> bool {
        self.suspect();
        let now = crate::time::now_ms();
        let before = self
            .push_failed_ms
            .swap(now, std::sync::atomic::Ordering::SeqCst);
        now - before > 60_000
    }

    pub(super) fn failed_recently(&self) -> bool {
        let at = self
            .push_failed_ms
            .load(std::sync::atomic::Ordering::SeqCst);
        at != 0 && crate::time::now_ms() - at < PUSH_PAUSE.as_millis() as i64
    }

    pub(crate) fn suspect(&self) {
        let now = crate::time::now_ms();
        let _ = self.since_ms.compare_exchange(
            0,
            now,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// When tasks were first suspected lost, clearing the mark (None: nothing suspected).
    pub(crate) fn take(&self) -> Option<i64> {
        match self.since_ms.swap(0, std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            t => Some(t),
        }
    }

    /// Puts a mark taken by [`LostTasks::take`] back (the repair did not finish).
    pub(crate) fn restore(&self, since_ms: i64) {
        let _ = self.since_ms.compare_exchange(
            0,
            since_ms,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}
