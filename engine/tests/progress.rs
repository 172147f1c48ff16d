//! Progress hooks of parked runs, on every queue backend: a progress is recorded on the run
//! and a changed one handed to the workflow, the wait is neither resolved nor failed by it,
//! and a progress that arrives after the run resumed is dropped.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisha_engine::workflow::{Next, ProgressCtx, StepCtx, StepResult, Wait, Workflow};
use aisha_engine::{QueueKind, ResolveOutcome, StartOptions};
use common::{Harness, outline, test_config};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

/// What the hooks saw: how often `ask` was called and returned, what `tell` was handed, and
/// a gate `ask` waits at while it is closed.
struct Probe {
    asked: Mutex<u32>,
    returned: Mutex<u32>,
    told: Mutex<Vec<(String, Value)>>,
    gate: watch::Sender<bool>,
}

impl Probe {
    fn new(open: bool) -> Arc<Probe> {
        Arc::new(Probe {
            asked: Mutex::new(0),
            returned: Mutex::new(0),
            told: Mutex::new(Vec::new()),
            gate: watch::channel(open).0,
        })
    }
    fn asked(&self) -> u32 {
        *self.asked.lock().unwrap()
    }
    fn returned(&self) -> u32 {
        *self.returned.lock().unwrap()
    }
    fn told(&self) -> Vec<(String, Value)> {
        self.told.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    key: String,
}

/// The percentage a hook reports on its n-th call: 10, 20, 30, then 30 for ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Percent {
    percent: u32,
}

fn reporter(probe: Arc<Probe>) -> Workflow<Job, Arc<Probe>> {
    Workflow::new("reporter", probe)
        .step("submit", submit)
        .step("finish", finish)
        .on_progress(ask, tell)
}

async fn submit(s: Job, _ctx: StepCtx<Arc<Probe>>) -> StepResult<Job> {
    let key = s.key.clone();
    // Polls and the deadline are far away: only the progress hook is asked in these tests.
    Ok(Next::Wait(
        Wait::new("sim", key, "finish", s)
            .deadline(Duration::from_secs(120))
            .poll_every(Duration::from_secs(120))
            .progress_every(Duration::from_millis(30)),
    ))
}

async fn finish(s: Job, _ctx: StepCtx<Arc<Probe>>) -> StepResult<Job> {
    Ok(Next::Done(s))
}

async fn ask(s: Job, ctx: ProgressCtx<Arc<Probe>>) -> Option<Percent> {
    assert_eq!(ctx.external_id, s.key, "the hook is asked about its wait");
    let n = {
        let mut a = ctx.deps.asked.lock().unwrap();
        *a += 1;
        *a
    };
    let mut gate = ctx.deps.gate.subscribe();
    let _ = gate.wait_for(|open| *open).await;
    *ctx.deps.returned.lock().unwrap() += 1;
    Some(Percent {
        percent: (n * 10).min(30),
    })
}

async fn tell(_s: Job, p: Percent, ctx: ProgressCtx<Arc<Probe>>) {
    ctx.deps
        .told
        .lock()
        .unwrap()
        .push((ctx.run_id.clone(), json!(p)));
}

async fn harness(kind: QueueKind, probe: &Arc<Probe>) -> Harness {
    let p = probe.clone();
    Harness::start(kind, test_config(), true, move |b| b.register(reporter(p))).await
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !ok() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn progress_is_recorded_and_told(kind: QueueKind) {
    let probe = Probe::new(true);
    let h = harness(kind, &probe).await;
    let key = ulid::Ulid::generate().to_string();
    let id = h
        .engine
        .start("reporter", json!({"key": key}), StartOptions::default())
        .await
        .unwrap()
        .run_id;
    // Asked well past the point its answer stops changing.
    until("the hook is asked six times", || probe.returned() >= 6).await;
    let d = h.engine.show_run(&id).await.unwrap();
    assert_eq!(d.run.status, "waiting", "a progress never ends the wait");
    until("the last progress is recorded", || probe.told().len() == 3).await;
    let d = h.engine.show_run(&id).await.unwrap();
    assert_eq!(d.progress, Some(json!({"percent": 30})));
    assert!(d.progress_at.is_some());
    // Each change told once, in order; the unchanged answers after it are not news.
    let told: Vec<Value> = probe.told().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        told,
        [
            json!({"percent": 10}),
            json!({"percent": 20}),
            json!({"percent": 30})
        ]
    );
    let out = h
        .engine
        .resolve_callback("sim", &key, &json!({"ok": 1}))
        .await
        .unwrap();
    assert_eq!(out, ResolveOutcome::Resolved { run_id: id.clone() });
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(outline(&d), ["submit:waiting", "finish:ok"]);
    assert_eq!(
        d.progress,
        Some(json!({"percent": 30})),
        "the last progress is kept"
    );
    h.finish().await;
}

async fn late_progress_is_dropped(kind: QueueKind) {
    let probe = Probe::new(false);
    let h = harness(kind, &probe).await;
    let key = ulid::Ulid::generate().to_string();
    let id = h
        .engine
        .start("reporter", json!({"key": key}), StartOptions::default())
        .await
        .unwrap()
        .run_id;
    until("the hook is asked", || probe.asked() >= 1).await;
    // The callback resumes the run while its hook is still out asking.
    h.engine
        .resolve_callback("sim", &key, &json!({"ok": 1}))
        .await
        .unwrap();
    h.wait_for(&id, "succeeded").await;
    let asked = probe.asked();
    probe.gate.send_replace(true);
    until("every hook call returned", || probe.returned() >= asked).await;
    // Their answers reach the engine after the run moved on: none may land.
    for _ in 0..25 {
        let d = h.engine.show_run(&id).await.unwrap();
        assert_eq!(d.progress, None, "a progress after the resume is dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(probe.told().is_empty());
    h.finish().await;
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Postgres).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Redis).await } )* }
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Sqlite).await } )* }
    };
}

suite!(progress_is_recorded_and_told, late_progress_is_dropped);
