//! `noop3`: three trivial steps, for tests, crash drills and the benchmark.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workflow::{Next, StepCtx, StepResult, Workflow};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Noop3 {
    /// Each step sleeps this long.
    #[serde(default)]
    pub step_ms: u64,
    /// Steps done so far, in order.
    #[serde(default)]
    pub done: Vec<String>,
}

pub const NAME: &str = "noop3";

pub fn workflow() -> Workflow<Noop3, ()> {
    Workflow::new(NAME, ())
        .step("one", one)
        .step("two", two)
        .step("three", three)
}

async fn pause(s: &Noop3) {
    if s.step_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.step_ms)).await;
    }
}

async fn one(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    pause(&s).await;
    s.done.push("one".into());
    Ok(Next::Goto("two", s))
}

async fn two(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    pause(&s).await;
    s.done.push("two".into());
    Ok(Next::Goto("three", s))
}

async fn three(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    pause(&s).await;
    s.done.push("three".into());
    Ok(Next::Done(s))
}
