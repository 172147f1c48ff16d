//! `noop3`: three trivial steps, for tests, crash drills and the benchmark. No product runs
//! it, so it lives in the testkit; the binary registers it too, for `aisha bench engine`, crash
//! drills and smoke tests (`aisha admin runs start noop3`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry_policy::RetryPolicy;
use crate::time::now_us;
use crate::workflow::{Next, StepCtx, StepResult, Workflow};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Noop3 {
    /// Each step sleeps this long.
    #[serde(default)]
    pub step_ms: u64,
    /// Steps done so far, in order.
    #[serde(default)]
    pub done: Vec<String>,
    /// Unix microseconds at the start and end of each step done (step-to-step latency).
    #[serde(default)]
    pub t: Vec<[i64; 2]>,
}

pub const NAME: &str = "noop3";

/// Steps time out after 5 s, so a crash drill recovers a killed worker's steps quickly.
pub fn workflow() -> Workflow<Noop3, ()> {
    Workflow::new(NAME, ())
        .default_policy(RetryPolicy::default().timeout(Duration::from_secs(5)))
        .step("one", one)
        .step("two", two)
        .step("three", three)
}

async fn work(s: &mut Noop3, name: &str) {
    let start = now_us();
    if s.step_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.step_ms)).await;
    }
    s.done.push(name.to_string());
    s.t.push([start, now_us()]);
}

async fn one(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    work(&mut s, "one").await;
    Ok(Next::Goto("two", s))
}

async fn two(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    work(&mut s, "two").await;
    Ok(Next::Goto("three", s))
}

async fn three(mut s: Noop3, _ctx: StepCtx<()>) -> StepResult<Noop3> {
    work(&mut s, "three").await;
    Ok(Next::Done(s))
}
