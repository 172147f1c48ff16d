//! Aisha's durable workflow engine.
//!
//! A workflow is a list of typed steps (see [`workflow`]). Runs live in our own tables (the
//! state of record); the queue (apalis on Postgres, Redis or SQLite) only carries "run R,
//! dispatch S". Every transition is one conditional update of the run row, committed together
//! with the next task where the queue shares the database. Nothing here knows about FAL,
//! Telegram or images.

pub mod callbacks;
pub mod config;
pub mod db;
pub mod engine;
pub mod error;
pub mod group_commit;
pub mod health;
mod inner;
pub mod limits;
mod nudge;
pub mod observer;
pub mod ops;
pub mod queue;
pub mod reconciler;
pub mod retry_policy;
pub mod runs;
mod runtime;
pub mod scheduler;
mod start_writes;
mod step_writes;
pub mod supervisor;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
mod transitions;
pub mod worker;
pub mod workflow;

pub use callbacks::ResolveOutcome;
pub use config::EngineConfig;
pub use db::{Budget, Db, Pools};
pub use engine::{Engine, StartOptions, Started};
pub use error::EngineError;
pub use health::{Health, LoopName};
pub use observer::Observer;
pub use queue::{QueueBackend, QueueKind};
pub use retry_policy::RetryPolicy;
pub use runs::{Held, RunStatus};
pub use workflow::{
    FailureCtx, LimitMode, Next, PollCtx, PollOutcome, StepCtx, StepError, StepResult, Wait,
    Workflow,
};
