use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// What a step decides.
#[derive(Debug)]
pub enum Next<S> {
    /// Continue with step `.0` and the new state.
    Goto(&'static str, S),
    /// Park the run until an outside service calls back (or the poll hook answers).
    Wait(Wait<S>),
    /// The run succeeded with this final state.
    Done(S),
}

pub type StepResult<S> = Result<Next<S>, StepError>;

/// A step hands work to an outside service and parks the run on `(provider, external_id)`.
/// The run holds no worker slot while parked; the callback payload reaches step `then`
/// through [`crate::StepCtx::callback`].
#[derive(Debug)]
pub struct Wait<S> {
    pub provider: String,
    pub external_id: String,
    pub then: &'static str,
    pub state: S,
    pub deadline: Duration,
    pub poll_every: Duration,
    /// Ask the workflow's progress hook this often while parked (None: never).
    pub progress_every: Option<Duration>,
}

impl<S> Wait<S> {
    pub fn new(
        provider: impl Into<String>,
        external_id: impl Into<String>,
        then: &'static str,
        state: S,
    ) -> Self {
        Wait {
            provider: provider.into(),
            external_id: external_id.into(),
            then,
            state,
            deadline: Duration::from_secs(3600),
            poll_every: Duration::from_secs(60),
            progress_every: None,
        }
    }

    /// Give up (poll one last time, then fail) after this long.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }

    /// Ask the poll hook after this much silence, and again at this interval.
    pub fn poll_every(mut self, d: Duration) -> Self {
        self.poll_every = d;
        self
    }

    /// Ask the workflow's progress hook ([`crate::Workflow::on_progress`]) this often while
    /// the run is parked. The hook only reports; it never resolves or fails the wait.
    pub fn progress_every(mut self, d: Duration) -> Self {
        self.progress_every = Some(d);
        self
    }
}

/// A failed step: retryable errors are retried by the step's policy, permanent ones fail the
/// run at once (and run its compensation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    Retryable(String),
    Permanent(String),
}

impl StepError {
    pub fn retryable(e: impl fmt::Display) -> Self {
        StepError::Retryable(e.to_string())
    }

    pub fn permanent(e: impl fmt::Display) -> Self {
        StepError::Permanent(e.to_string())
    }

    pub fn message(&self) -> &str {
        match self {
            StepError::Retryable(m) | StepError::Permanent(m) => m,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, StepError::Permanent(_))
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Retryable(m) => write!(f, "retryable: {m}"),
            StepError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

/// The poll hook's answer when a wait's poll time or deadline comes.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// The outside work finished: resolve the wait with this payload (as if it called back).
    Resolved(Value),
    /// Still running: park again (or fail, if the deadline has passed).
    Pending,
    /// The outside work is lost or failed for good: fail the run.
    Failed(String),
}
