//! One behaviour suite, run against every queue backend: Postgres (state + apalis-postgres),
//! Redis (Postgres state + apalis-redis) and SQLite (state + apalis-sqlite).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisha_engine::StartOptions;
use aisha_engine::ops::RunFilter;
use aisha_engine::testkit::execute;
use aisha_engine::testkit::noop3;
use aisha_engine::workflow::{
    FailureCtx, Next, PollCtx, PollOutcome, StepCtx, StepError, StepResult, Wait, Workflow,
};
use aisha_engine::{EngineError, Held, LimitMode, QueueKind, ResolveOutcome, RetryPolicy};
use common::{Harness, outline, test_config};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Calls per (run, step), compensations per run, and what the poll hook answers.
#[derive(Default)]
struct Probe {
    calls: Mutex<HashMap<(String, String), u32>>,
    compensated: Mutex<HashMap<String, (u32, bool)>>,
    poll_answer: Mutex<Option<PollOutcome>>,
}

impl Probe {
    fn hit(&self, run: &str, step: &str) -> u32 {
        let mut c = self.calls.lock().unwrap();
        let n = c.entry((run.to_string(), step.to_string())).or_default();
        *n += 1;
        *n
    }
    fn calls(&self, run: &str, step: &str) -> u32 {
        *self
            .calls
            .lock()
            .unwrap()
            .get(&(run.to_string(), step.to_string()))
            .unwrap_or(&0)
    }
    fn compensations(&self, run: &str) -> Option<(u32, bool)> {
        self.compensated.lock().unwrap().get(run).copied()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Flaky {
    #[serde(default)]
    fail_times: u32,
    #[serde(default)]
    permanent: bool,
    #[serde(default)]
    slow_first_ms: u64,
    #[serde(default)]
    started: u32,
}

fn flaky(probe: Arc<Probe>) -> Workflow<Flaky, Arc<Probe>> {
    let policy = RetryPolicy::default()
        .attempts(3)
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
        .timeout(Duration::from_millis(400));
    Workflow::new("flaky", probe)
        .default_policy(policy)
        .step("start", flaky_start)
        .step("a", flaky_a)
        .step("b", flaky_b)
        .on_failure(record_failure)
}

async fn flaky_start(mut s: Flaky, ctx: StepCtx<Arc<Probe>>) -> StepResult<Flaky> {
    ctx.deps.hit(&ctx.run_id, "start");
    s.started += 1;
    Ok(Next::Goto("a", s))
}

async fn flaky_a(s: Flaky, ctx: StepCtx<Arc<Probe>>) -> StepResult<Flaky> {
    let n = ctx.deps.hit(&ctx.run_id, "a");
    if n == 1 && s.slow_first_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.slow_first_ms)).await;
    }
    if n <= s.fail_times {
        let msg = format!("failure {n} of {}", s.fail_times);
        return Err(if s.permanent {
            StepError::permanent(msg)
        } else {
            StepError::retryable(msg)
        });
    }
    Ok(Next::Goto("b", s))
}

async fn flaky_b(s: Flaky, ctx: StepCtx<Arc<Probe>>) -> StepResult<Flaky> {
    ctx.deps.hit(&ctx.run_id, "b");
    Ok(Next::Done(s))
}

async fn record_failure<S>(_s: S, ctx: FailureCtx<Arc<Probe>>) -> Result<(), StepError> {
    let mut c = ctx.deps.compensated.lock().unwrap();
    let e = c.entry(ctx.run_id.clone()).or_default();
    e.0 += 1;
    e.1 = ctx.cancelled;
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Waiter {
    key: String,
    #[serde(default = "default_deadline")]
    deadline_ms: u64,
    #[serde(default = "default_deadline")]
    poll_ms: u64,
    #[serde(default)]
    got: Option<Value>,
}

fn default_deadline() -> u64 {
    30_000
}

fn waiter(name: &'static str, probe: Arc<Probe>) -> Workflow<Waiter, Arc<Probe>> {
    Workflow::new(name, probe)
        .step("submit", waiter_submit)
        .step("finish", waiter_finish)
        .on_failure(record_failure)
        .on_poll(waiter_poll)
}

async fn waiter_submit(s: Waiter, ctx: StepCtx<Arc<Probe>>) -> StepResult<Waiter> {
    ctx.deps.hit(&ctx.run_id, "submit");
    let key = s.key.clone();
    let (d, p) = (s.deadline_ms, s.poll_ms);
    Ok(Next::Wait(
        Wait::new("sim", key, "finish", s)
            .deadline(Duration::from_millis(d))
            .poll_every(Duration::from_millis(p)),
    ))
}

async fn waiter_finish(mut s: Waiter, ctx: StepCtx<Arc<Probe>>) -> StepResult<Waiter> {
    ctx.deps.hit(&ctx.run_id, "finish");
    s.got = ctx.callback.clone();
    Ok(Next::Done(s))
}

async fn waiter_poll(_s: Waiter, ctx: PollCtx<Arc<Probe>>) -> PollOutcome {
    ctx.deps
        .poll_answer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(PollOutcome::Pending)
}

async fn harness(kind: QueueKind, probe: &Arc<Probe>) -> Harness {
    let p = probe.clone();
    Harness::start(kind, test_config(), true, move |b| {
        b.register(noop3::workflow())
            .register(flaky(p.clone()))
            .register(waiter("waiter", p))
    })
    .await
}

async fn start(h: &Harness, wf: &str, input: Value) -> String {
    h.engine
        .start(wf, input, StartOptions::default())
        .await
        .expect("start")
        .run_id
}

fn key() -> String {
    ulid::Ulid::generate().to_string()
}

async fn sequencing(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "noop3", json!({})).await;
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(d.state["done"], json!(["one", "two", "three"]));
    assert_eq!(outline(&d), ["one:ok", "two:ok", "three:ok"]);
    h.finish().await;
}

async fn retry_with_backoff(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "flaky", json!({"fail_times": 2})).await;
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(
        outline(&d),
        ["start:ok", "a:retry", "a:retry", "a:ok", "b:ok"]
    );
    assert_eq!(d.timeline[1].error.as_deref(), Some("failure 1 of 2"));
    // Backoff: attempt 2 waits at least half of 100 ms, attempt 3 at least half of 200 ms.
    let gap = |i: usize| {
        let end =
            chrono::DateTime::parse_from_rfc3339(d.timeline[i].finished_at.as_deref().unwrap())
                .unwrap();
        let next = chrono::DateTime::parse_from_rfc3339(&d.timeline[i + 1].started_at).unwrap();
        (next - end).num_milliseconds()
    };
    assert!(gap(1) >= 50, "first backoff {} ms", gap(1));
    assert!(gap(2) >= 100, "second backoff {} ms", gap(2));
    assert_eq!(probe.calls(&id, "a"), 3);
    h.finish().await;
}

async fn permanent_failure_compensates(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "flaky", json!({"fail_times": 5, "permanent": true})).await;
    let d = h.wait_for(&id, "failed").await;
    assert_eq!(outline(&d), ["start:ok", "a:failed", "$compensate:ok"]);
    assert_eq!(d.run.step, "a");
    assert_eq!(d.run.error.as_deref(), Some("failure 1 of 5"));
    assert_eq!(probe.calls(&id, "a"), 1, "permanent errors are not retried");
    assert_eq!(probe.compensations(&id), Some((1, false)));
    h.finish().await;
}

async fn exhausted_retries_fail(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "flaky", json!({"fail_times": 10})).await;
    let d = h.wait_for(&id, "failed").await;
    assert_eq!(
        outline(&d),
        [
            "start:ok",
            "a:retry",
            "a:retry",
            "a:failed",
            "$compensate:ok"
        ]
    );
    assert_eq!(probe.calls(&id, "a"), 3);
    assert_eq!(probe.compensations(&id), Some((1, false)));
    h.finish().await;
}

async fn step_timeout_retries(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "flaky", json!({"slow_first_ms": 2000})).await;
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(outline(&d), ["start:ok", "a:retry", "a:ok", "b:ok"]);
    assert!(
        d.timeline[1]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out"),
        "{:?}",
        d.timeline[1]
    );
    h.finish().await;
}

async fn wait_then_resolve(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let k = key();
    let id = start(&h, "waiter", json!({"key": k})).await;
    let d = h.wait_for(&id, "waiting").await;
    assert_eq!(d.waiting_on.as_ref().unwrap().external_id, k);
    let out = h
        .engine
        .resolve_callback("sim", &k, &json!({"ok": 1}))
        .await
        .unwrap();
    assert_eq!(out, ResolveOutcome::Resolved { run_id: id.clone() });
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(d.state["got"], json!({"ok": 1}));
    let again = h
        .engine
        .resolve_callback("sim", &k, &json!({"ok": 2}))
        .await
        .unwrap();
    assert_eq!(again, ResolveOutcome::Duplicate);
    assert_eq!(probe.calls(&id, "finish"), 1);
    assert_eq!(outline(&d), ["submit:waiting", "finish:ok"]);
    h.finish().await;
}

async fn callback_before_wait(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let k = key();
    let out = h
        .engine
        .resolve_callback("sim", &k, &json!({"early": true}))
        .await
        .unwrap();
    assert_eq!(out, ResolveOutcome::Early);
    let dup = h
        .engine
        .resolve_callback("sim", &k, &json!({"early": true}))
        .await
        .unwrap();
    assert_eq!(dup, ResolveOutcome::Duplicate);
    let id = start(&h, "waiter", json!({"key": k})).await;
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(d.state["got"], json!({"early": true}));
    h.finish().await;
}

async fn concurrent_duplicates_apply_once(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let k = key();
    let id = start(&h, "waiter", json!({"key": k})).await;
    h.wait_for(&id, "waiting").await;
    let mut joins = Vec::new();
    for i in 0..10 {
        let e = h.engine.clone();
        let k = k.clone();
        joins.push(tokio::spawn(async move {
            e.resolve_callback("sim", &k, &json!({"i": i}))
                .await
                .unwrap()
        }));
    }
    let mut resolved = 0;
    for j in joins {
        match j.await.unwrap() {
            ResolveOutcome::Resolved { .. } => resolved += 1,
            ResolveOutcome::Duplicate => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(resolved, 1);
    h.wait_for(&id, "succeeded").await;
    assert_eq!(probe.calls(&id, "finish"), 1);
    h.finish().await;
}

async fn deadline_then_poll(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    // The poll hook finds the work done: the run resolves without any callback.
    *probe.poll_answer.lock().unwrap() = Some(PollOutcome::Resolved(json!({"polled": true})));
    let id = start(&h, "waiter", json!({"key": key(), "poll_ms": 200})).await;
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(d.state["got"], json!({"polled": true}));
    // Still nothing at the deadline: the run fails and compensates.
    *probe.poll_answer.lock().unwrap() = Some(PollOutcome::Pending);
    let id = start(
        &h,
        "waiter",
        json!({"key": key(), "poll_ms": 100, "deadline_ms": 400}),
    )
    .await;
    let d = h.wait_for(&id, "failed").await;
    assert!(
        d.run.error.as_deref().unwrap().contains("deadline"),
        "{:?}",
        d.run.error
    );
    assert_eq!(probe.compensations(&id), Some((1, false)));
    h.finish().await;
}

async fn retry_from_failed_step(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let id = start(&h, "flaky", json!({"fail_times": 1, "permanent": true})).await;
    h.wait_for(&id, "failed").await;
    let s = h.engine.retry_run(&id).await.unwrap();
    assert_eq!(s.step, "a");
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(
        probe.calls(&id, "start"),
        1,
        "earlier steps are not run again"
    );
    assert_eq!(d.state["started"], json!(1));
    assert_eq!(
        outline(&d),
        ["start:ok", "a:failed", "$compensate:ok", "a:ok", "b:ok"]
    );
    let err = h.engine.retry_run(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::WrongStatus { .. }), "{err}");
    h.finish().await;
}

async fn cancel_compensates(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let k = key();
    let id = start(&h, "waiter", json!({"key": k})).await;
    h.wait_for(&id, "waiting").await;
    h.engine.cancel_run(&id).await.unwrap();
    let d = h.wait_for(&id, "cancelled").await;
    assert_eq!(probe.compensations(&id), Some((1, true)));
    assert_eq!(d.run.step, "finish");
    let late = h
        .engine
        .resolve_callback("sim", &k, &json!({}))
        .await
        .unwrap();
    assert_eq!(late, ResolveOutcome::Late { run_id: id.clone() });
    assert_eq!(probe.calls(&id, "finish"), 0);
    assert!(h.engine.cancel_run(&id).await.is_err());
    assert!(matches!(
        h.engine.show_run("nope").await,
        Err(EngineError::UnknownRun(_))
    ));
    h.finish().await;
}

async fn reconciler_recovers_lost_task(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let p = probe.clone();
    // Not running: the run's first task sits in the queue.
    let mut h = Harness::start(kind, test_config(), false, move |b| b.register(flaky(p))).await;
    let id = start(&h, "flaky", json!({})).await;
    // Lose the task: the run moves to a new dispatch generation that no task carries.
    execute(
        h.engine.db(),
        "UPDATE workflow_runs SET seq = seq + 1 WHERE id = $1",
        &id,
    )
    .await;
    h.run();
    // The stale task is dropped; after `stale_after` the reconciler queues a new one.
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(outline(&d), ["start:ok", "a:ok", "b:ok"]);
    assert_eq!(probe.calls(&id, "start"), 1);
    h.finish().await;
}

/// A hold or final status that no variant names is an error naming the run and the text,
/// never a guess. (The schema's CHECK keeps unknown statuses out of `status` itself; the unit
/// tests of `runs` read one past it on SQLite.)
async fn unknown_stored_values_are_errors(kind: QueueKind) {
    // Not running: nothing moves the run while its row is tampered with.
    let h = Harness::start(kind, test_config(), false, |b| {
        b.register(noop3::workflow())
    })
    .await;
    let id = start(&h, "noop3", json!({})).await;
    let sql = "UPDATE workflow_runs SET held = 'vacation' WHERE id = $1";
    execute(h.engine.db(), sql, &id).await;
    let err = h.engine.show_run(&id).await.unwrap_err().to_string();
    assert!(err.contains(&id) && err.contains("`vacation`"), "{err}");
    let err = h.engine.list_runs(&RunFilter::default()).await.unwrap_err();
    assert!(err.to_string().contains(&id), "{err}");
    let sql = "UPDATE workflow_runs SET held = NULL, final_status = 'gone' WHERE id = $1";
    execute(h.engine.db(), sql, &id).await;
    let err = h.engine.show_run(&id).await.unwrap_err().to_string();
    assert!(err.contains(&id) && err.contains("`gone`"), "{err}");
    h.finish().await;
}

async fn reconciler_recovers_dead_workers_step(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let p = probe.clone();
    let mut h = Harness::start(kind, test_config(), false, move |b| b.register(flaky(p))).await;
    let id = start(&h, "flaky", json!({})).await;
    // As if a worker claimed the step and died: running, with a lease long gone.
    execute(h.engine.db(), "UPDATE workflow_runs SET status = 'running', lease_id = 'dead-worker', lease_until = 1 WHERE id = $1", &id).await;
    h.run();
    let d = h.wait_for(&id, "succeeded").await;
    assert_eq!(outline(&d), ["start:lost", "start:ok", "a:ok", "b:ok"]);
    assert_eq!(d.timeline[0].worker.as_deref(), Some("dead-worker"));
    assert_eq!(
        probe.calls(&id, "start"),
        1,
        "the queued task of the lost claim was dropped"
    );
    h.finish().await;
}

async fn retention_prunes_finished_tasks(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let p = probe.clone();
    // Retention stays at its default here so that only the explicit prune below removes rows.
    let h = Harness::start(kind, test_config(), true, move |b| {
        b.register(noop3::workflow()).register(flaky(p))
    })
    .await;
    let id = start(&h, "noop3", json!({})).await;
    h.wait_for(&id, "succeeded").await;
    let q = h
        .engine
        .queue_names()
        .into_iter()
        .find(|q| q.ends_with(".noop3"))
        .unwrap();
    // Acks are batched: wait until the three tasks are recorded as done, then prune them.
    let t0 = std::time::Instant::now();
    loop {
        let d = h.engine.queue().depth(&q).await.unwrap();
        if d.done >= 3 || t0.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pruned = h.engine.queue().prune(&q, Duration::ZERO).await.unwrap();
    assert!(pruned >= 3, "pruned {pruned}");
    assert_eq!(h.engine.queue().depth(&q).await.unwrap().done, 0);
    h.finish().await;
}

async fn subject_limits(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let (p1, p2) = (probe.clone(), probe.clone());
    let h = Harness::start(kind, test_config(), true, move |b| {
        b.register(waiter("one_at_a_time", p1).limit_per_subject(1, LimitMode::Refuse))
            .register(waiter("queued", p2).limit_per_subject(1, LimitMode::Queue))
    })
    .await;
    let opts = |s: &str| StartOptions {
        subject: Some(s.into()),
        ..StartOptions::default()
    };
    let (k1, k2) = (key(), key());
    let a = h
        .engine
        .start("one_at_a_time", json!({"key": k1}), opts("u1"))
        .await
        .unwrap();
    let refused = h
        .engine
        .start("one_at_a_time", json!({"key": k2}), opts("u1"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EngineError::SubjectLimit { limit: 1, .. }),
        "{refused}"
    );
    // Another subject is not limited by u1.
    h.engine
        .start("one_at_a_time", json!({"key": key()}), opts("u2"))
        .await
        .unwrap();
    h.wait_for(&a.run_id, "waiting").await;

    let (q1, q2) = (key(), key());
    let first = h
        .engine
        .start("queued", json!({"key": q1}), opts("u1"))
        .await
        .unwrap();
    let second = h
        .engine
        .start("queued", json!({"key": q2}), opts("u1"))
        .await
        .unwrap();
    assert!(!first.held && second.held);
    h.wait_for(&first.run_id, "waiting").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.engine.show_run(&second.run_id).await.unwrap().run.status,
        "pending"
    );
    assert_eq!(probe.calls(&second.run_id, "submit"), 0);
    h.engine
        .resolve_callback("sim", &q1, &json!({}))
        .await
        .unwrap();
    h.wait_for(&first.run_id, "succeeded").await;
    h.wait_for(&second.run_id, "waiting").await;
    h.finish().await;
}

async fn provider_capacity(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let mut cfg = test_config();
    cfg.provider_capacity.insert("sim".into(), 1);
    let p = probe.clone();
    let wf = Workflow::new("capped", p)
        .step_with_permit("submit", "sim", RetryPolicy::default(), waiter_submit)
        .step("finish", waiter_finish);
    let h = Harness::start(kind, cfg, true, move |b| b.register(wf)).await;
    let (k1, k2) = (key(), key());
    let a = start(&h, "capped", json!({"key": k1})).await;
    h.wait_for(&a, "waiting").await;
    let b = start(&h, "capped", json!({"key": k2})).await;
    // Its worker finds no free permit and holds it (no task, no slot).
    let t0 = std::time::Instant::now();
    loop {
        let d = h.engine.show_run(&b).await.unwrap();
        if d.held == Some(Held::Provider("sim".into())) {
            assert_eq!(d.run.status, "pending");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(probe.calls(&b, "submit"), 0);
    h.engine
        .resolve_callback("sim", &k1, &json!({}))
        .await
        .unwrap();
    h.wait_for(&a, "succeeded").await;
    h.wait_for(&b, "waiting").await;
    h.finish().await;
}

async fn idempotent_start(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let opts = StartOptions {
        idempotency_key: Some("order-1".into()),
        ..StartOptions::default()
    };
    let a = h
        .engine
        .start("noop3", json!({}), opts.clone())
        .await
        .unwrap();
    let b = h.engine.start("noop3", json!({}), opts).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.run_id, b.run_id);
    let bad = h
        .engine
        .start("noop3", json!({"step_ms": "slow"}), StartOptions::default())
        .await;
    assert!(matches!(bad, Err(EngineError::InvalidInput { .. })));
    let unknown = h
        .engine
        .start("nope", json!({}), StartOptions::default())
        .await;
    assert!(matches!(unknown, Err(EngineError::UnknownWorkflow(_))));
    h.finish().await;
}

async fn requeue_dead_tasks(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let p = probe.clone();
    let mut h = Harness::start(kind, test_config(), false, move |b| b.register(flaky(p))).await;
    let id = start(&h, "flaky", json!({})).await;
    let q = h.engine.queue_names().remove(0);
    // The task dies in the queue (as a crashed handler's would): an operator re-queues it.
    match (h.engine.db(), kind) {
        (aisha_engine::Db::Postgres(p), QueueKind::Postgres) => {
            sqlx::query("UPDATE apalis.jobs SET status = 'Killed' WHERE job_type = $1")
                .bind(&q)
                .execute(p)
                .await
                .unwrap();
        }
        (aisha_engine::Db::Sqlite(p), QueueKind::Sqlite) => {
            sqlx::query("UPDATE Jobs SET status = 'Killed' WHERE job_type = $1")
                .bind(&q)
                .execute(p)
                .await
                .unwrap();
        }
        _ => {
            let mut c = ::redis::Client::open(aisha_engine::testkit::redis_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let ids: Vec<String> = ::redis::cmd("LRANGE")
                .arg(format!("{q}:active"))
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .unwrap();
            for t in ids {
                let _: () = ::redis::pipe()
                    .cmd("LREM")
                    .arg(format!("{q}:active"))
                    .arg(0)
                    .arg(&t)
                    .ignore()
                    .cmd("SADD")
                    .arg(format!("{q}:dead"))
                    .arg(&t)
                    .ignore()
                    .query_async(&mut c)
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(h.engine.queue().depth(&q).await.unwrap().dead, 1);
    assert_eq!(h.engine.requeue_dead("flaky").await.unwrap(), 1);
    assert_eq!(h.engine.queue().depth(&q).await.unwrap().dead, 0);
    assert!(h.engine.requeue_dead("no-such-queue").await.is_err());
    h.run();
    h.wait_for(&id, "succeeded").await;
    h.finish().await;
}

/// apalis-redis's own push schedules every task, and its fetch promotes all due scheduled
/// tasks with one Lua `unpack`, which fails past ~8,000. Our pushes go straight to the
/// active list: 9,000 due tasks at once are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_many_due_tasks() {
    let wf = Workflow::new("single", ()).step("only", |s: Value, _ctx: StepCtx<()>| async move {
        Ok(Next::Done(s))
    });
    let mut cfg = test_config();
    cfg.concurrency = 64;
    let mut h = Harness::start(QueueKind::Redis, cfg, false, move |b| b.register(wf)).await;
    // 16 starts at a time: the test's pool has 10 connections.
    let engine = h.engine.clone();
    futures::stream::iter(0..9000)
        .map(|_| {
            let e = engine.clone();
            async move {
                e.start("single", json!({}), StartOptions::default())
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    h.run();
    let t0 = std::time::Instant::now();
    loop {
        let counts = h.engine.run_counts().await.unwrap();
        let done = counts
            .iter()
            .find(|c| c.status == "succeeded")
            .map_or(0, |c| c.count);
        if done == 9000 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{done} of 9000 done: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.finish().await;
}

async fn seq_of(h: &Harness, id: &str) -> i64 {
    aisha_engine::on_db!(h.engine.db(), p => sqlx::query_scalar("SELECT seq FROM workflow_runs WHERE id = $1")
        .bind(id)
        .fetch_one(p)
        .await)
    .expect("seq")
}

/// One group commit of five step transitions in which one run has moved on (an operator
/// re-dispatched it): that row fails its seq guard alone, the four others commit with their
/// timeline rows and next tasks, and every run then finishes with each step applied once.
async fn group_commit_stale_row_fails_alone(kind: QueueKind) {
    // Not running yet: the runs' first tasks wait in the queue while the test claims them.
    let mut h = Harness::start(kind, test_config(), false, |b| {
        b.register(noop3::workflow())
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(start(&h, "noop3", json!({})).await);
    }
    let mut steps = Vec::new();
    for id in &ids {
        // As a worker's claim leaves it: running step one at the task's seq.
        execute(
            h.engine.db(),
            "UPDATE workflow_runs SET status = 'running', lease_id = 'test', \
             lease_until = 9999999999999 WHERE id = $1",
            id,
        )
        .await;
        steps.push(aisha_engine::testkit::StepDone {
            run_id: id.clone(),
            seq: seq_of(&h, id).await,
            workflow: "noop3".into(),
            step: "one".into(),
            next: Some("two".into()),
            state: json!({"done": ["batched"]}).to_string(),
        });
    }
    let stale = ids[2].clone();
    execute(
        h.engine.db(),
        "UPDATE workflow_runs SET status = 'pending', seq = seq + 1, lease_id = NULL, \
         lease_until = NULL WHERE id = $1",
        &stale,
    )
    .await;
    let stale_seq = seq_of(&h, &stale).await;
    let applied = aisha_engine::testkit::commit_step_transitions(&h.engine, steps)
        .await
        .expect("group commit");
    assert_eq!(applied, [true, true, false, true, true]);
    assert_eq!(
        seq_of(&h, &stale).await,
        stale_seq,
        "the stale row is untouched"
    );
    h.run();
    for id in &ids {
        let d = h.wait_for(id, "succeeded").await;
        assert_eq!(outline(&d), ["one:ok", "two:ok", "three:ok"]);
        let first = if *id == stale { "one" } else { "batched" };
        assert_eq!(d.state["done"], json!([first, "two", "three"]));
    }
    h.finish().await;
}

/// Many runs at once through the worker's group commits: every run finishes with each of its
/// steps applied exactly once, and the transitions' commits carried every step.
async fn many_concurrent_transitions_apply_once(kind: QueueKind) {
    let probe = Arc::new(Probe::default());
    let h = harness(kind, &probe).await;
    let starts = (0..60).map(|_| start(&h, "noop3", json!({})));
    let ids: Vec<String> = futures::future::join_all(starts).await;
    for id in &ids {
        let d = h.wait_for(id, "succeeded").await;
        assert_eq!(outline(&d), ["one:ok", "two:ok", "three:ok"]);
        assert_eq!(d.state["done"], json!(["one", "two", "three"]));
    }
    let (transitions, claims) = h.engine.group_commits();
    let (commits, items) = transitions.snapshot();
    // At least: a task re-queued by the reconciler is claimed (and dropped) once more.
    assert!(
        items >= 3 * ids.len() as u64,
        "every step's transition went through"
    );
    assert!((1..=items).contains(&commits));
    assert!(claims.snapshot().1 >= 3 * ids.len() as u64);
    h.finish().await;
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Postgres).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Redis).await } )* }
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(aisha_engine::QueueKind::Sqlite).await } )* }
    };
}

suite!(
    sequencing,
    retry_with_backoff,
    permanent_failure_compensates,
    exhausted_retries_fail,
    step_timeout_retries,
    wait_then_resolve,
    callback_before_wait,
    concurrent_duplicates_apply_once,
    deadline_then_poll,
    retry_from_failed_step,
    cancel_compensates,
    reconciler_recovers_lost_task,
    reconciler_recovers_dead_workers_step,
    unknown_stored_values_are_errors,
    retention_prunes_finished_tasks,
    subject_limits,
    provider_capacity,
    idempotent_start,
    requeue_dead_tasks,
    group_commit_stale_row_fails_alone,
    many_concurrent_transitions_apply_once,
);
