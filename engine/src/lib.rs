//! Aisha's durable workflow engine.
//!
//! A workflow is a list of typed steps (see [`workflow`]). Runs live in our own tables (the
//! state of record); the queue (apalis on Postgres, Redis or SQLite) only carries "run R,
//! dispatch S". Every transition is one conditional update of the run row, committed together
//! with the next task where the queue shares the database. Nothing here knows about FAL,
//! Telegram or images.

// The public modules are the ones other crates name paths in: the database handles and their
// macros (`db`), operators' views (`ops`), the run's vocabulary (`runs`), supervised loops
// (`supervisor`), clocks (`time`), the workflow builder (`workflow`) and the test helpers.
// Everything else is the engine's own; what of it appears in the public API is re-exported
// below.
mod callbacks;
mod config;
pub mod db;
mod engine;
mod error;
mod group_commit;
mod health;
mod inner;
mod limits;
mod nudge;
mod observer;
pub mod ops;
mod queue;
mod reconciler;
mod retry_policy;
pub mod runs;
mod runtime;
mod scheduler;
mod start_writes;
mod step_writes;
pub mod supervisor;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
mod transitions;
mod worker;
pub mod workflow;

pub use callbacks::ResolveOutcome;
pub use config::EngineConfig;
pub use db::{Budget, Db, Pools};
pub use engine::{Engine, EngineBuilder, StartOptions, Started};
pub use error::EngineError;
pub use group_commit::CommitStats;
pub use health::{Health, LoopName, LoopState};
pub use observer::Observer;
pub use queue::{QueueBackend, QueueDepth, QueueKind};
pub use retry_policy::RetryPolicy;
pub use runs::{Held, RunStatus};
pub use workflow::{
    FailureCtx, LimitMode, Next, PollCtx, PollOutcome, StepCtx, StepError, StepResult, Wait,
    Workflow,
};
