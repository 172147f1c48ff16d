//! Aisha's durable workflow engine.
//!
//! A workflow is a list of typed steps (see [`workflow`]). Runs live in our own tables (the
//! state of record); the queue (apalis on Postgres, Redis or SQLite) only carries "run R,
//! dispatch S". Every transition is one conditional update of the run row, committed together
//! with the next task where the queue shares the database. Nothing here knows about FAL,
//! Telegram or images.
//!
//! # A workflow, end to end
//!
//! A workflow is a name, the dependencies its steps share, and named async steps over one
//! typed state: each step takes the state and says where the run goes next. Register it, run
//! the engine, start runs:
//!
//! ```
//! use std::time::Duration;
//!
//! use aisha_engine::{
//!     Engine, EngineConfig, Next, Pools, QueueBackend, QueueKind, RunStatus, StartOptions,
//!     StepCtx, StepResult, Workflow,
//! };
//! use serde::{Deserialize, Serialize};
//! use serde_json::json;
//!
//! /// The run's state: its input first, then what each step made of it. It is stored after
//! /// every step, so a crash resumes at the step that did not finish.
//! #[derive(Serialize, Deserialize)]
//! struct Greeting {
//!     name: String,
//!     #[serde(default)]
//!     text: String,
//! }
//!
//! /// What the steps share (clients, stores…); here, the word to greet with.
//! struct Deps {
//!     salutation: &'static str,
//! }
//!
//! async fn compose(mut g: Greeting, ctx: StepCtx<Deps>) -> StepResult<Greeting> {
//!     g.text = format!("{}, {}", ctx.deps.salutation, g.name);
//!     Ok(Next::Goto("shout", g))
//! }
//!
//! async fn shout(mut g: Greeting, _ctx: StepCtx<Deps>) -> StepResult<Greeting> {
//!     g.text = g.text.to_uppercase() + "!";
//!     Ok(Next::Done(g))
//! }
//!
//! fn greet() -> Workflow<Greeting, Deps> {
//!     // The first step added is where runs start.
//!     Workflow::new("greet", Deps { salutation: "hello" })
//!         .step("compose", compose)
//!         .step("shout", shout)
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("aisha-engine-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! // Embedded: SQLite holds the runs and the queue (Postgres and Redis work the same way).
//! let url = format!("sqlite:{}", dir.join("aisha.db").display());
//! let pools = Pools::connect(&url, 4).await?;
//! pools.db.migrate().await?;
//! let queue = QueueBackend::open(QueueKind::Sqlite, &pools, None).await?;
//! let engine = Engine::builder(pools.db.clone(), queue, EngineConfig::default())
//!     .register(greet())
//!     .build()
//!     .await?;
//!
//! // Workers, the scheduler and the reconciler run until the shutdown future completes.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn({
//!     let engine = engine.clone();
//!     async move { engine.run_until(async { stopped.await.unwrap_or(()) }).await }
//! });
//!
//! let started = engine
//!     .start("greet", json!({"name": "Aisha"}), StartOptions::default())
//!     .await?;
//! // Wait for the run to end, as `aisha admin runs show` would see it.
//! let run = tokio::time::timeout(Duration::from_secs(30), async {
//!     loop {
//!         let run = engine.show_run(&started.run_id).await?;
//!         if run.run.status.is_terminal() {
//!             return Ok::<_, aisha_engine::EngineError>(run);
//!         }
//!         tokio::time::sleep(Duration::from_millis(20)).await;
//!     }
//! })
//! .await??;
//! assert_eq!(run.run.status, RunStatus::Succeeded);
//! assert_eq!(run.state["text"], "HELLO, AISHA!");
//!
//! stop.send(()).ok();
//! running.await??;
//! pools.close().await;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

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
mod progress;
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
pub use db::{Budget, Db, Migrations, Pools};
pub use engine::{Engine, EngineBuilder, StartOptions, Started};
pub use error::EngineError;
pub use group_commit::CommitStats;
pub use health::{Health, LoopName, LoopState};
pub use observer::Observer;
pub use queue::{QueueBackend, QueueDepth, QueueKind};
pub use retry_policy::RetryPolicy;
pub use runs::{Held, RunStatus};
pub use workflow::{
    FailureCtx, LimitMode, Next, PollCtx, PollOutcome, ProgressCtx, StepCtx, StepError, StepResult,
    Wait, Workflow,
};
