use std::collections::HashMap;
use std::time::Duration;

/// How long a caller waits for a free database connection before giving up with
/// [`EngineError::NoConnection`](crate::EngineError::NoConnection) (a retryable error for a
/// step). Here rather than in `db`, which it configures, because the error's message names it
/// too and `error` sits below `db`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the engine runs. Every field has a production default; the binary fills it from the
/// environment.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Prefix of queue names (`<namespace>.<workflow>`); tests use their own.
    pub namespace: String,
    /// Steps run at once per workflow queue in this process.
    pub concurrency: usize,
    /// Added to a step's timeout to form its lease; a lease that runs out means the worker
    /// died, and the reconciler retries the step.
    pub lease_grace: Duration,
    /// How often the scheduler looks for due retries and for waits to poll.
    pub tick: Duration,
    /// How often the reconciler runs.
    pub reconcile_every: Duration,
    /// A pending run whose task has not started for this long is queued again.
    pub stale_after: Duration,
    /// Finished queue rows older than this are deleted.
    pub retention: Duration,
    /// How long in-flight steps may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Most external calls in flight per provider (e.g. a FAL account's concurrency cap).
    pub provider_capacity: HashMap<String, i64>,
    /// Most poll hooks running at once.
    pub poll_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            namespace: "aisha".into(),
            concurrency: 32,
            lease_grace: Duration::from_secs(30),
            tick: Duration::from_millis(200),
            reconcile_every: Duration::from_secs(5),
            stale_after: Duration::from_secs(120),
            retention: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(30),
            provider_capacity: HashMap::new(),
            poll_concurrency: 16,
        }
    }
}
