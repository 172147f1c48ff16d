//! How a workflow is written: a list of named async steps over a typed state.
//!
//! ```ignore
//! Workflow::new("noop3", deps)
//!     .step("first", first)      // async fn first(s: S, ctx: StepCtx<D>) -> StepResult<S>
//!     .step("second", second)
//!     .on_failure(refund)        // compensation, durable and retried
//!     .on_poll(ask_provider)     // what to do when a wait's poll time or deadline comes
//!     .on_progress(ask, tell)    // while parked: how far the outside work is, and telling it
//! ```

mod builder;
mod context;
mod step;

pub(crate) use builder::{DynWorkflow, ErasedNext, FailureInfo, PollInfo, ProgressInfo, StepInfo};
pub use builder::{LimitMode, Workflow};
pub use context::{FailureCtx, PollCtx, ProgressCtx, StepCtx};
pub use step::{Next, PollOutcome, StepError, StepResult, Wait};
