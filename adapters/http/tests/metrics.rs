//! Metrics move when runs move: a run through retries to failure, another to success.

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::StartOptions;
use aisha_engine::testkit::TestDb;
use aisha_engine::workflow::{Next, StepCtx, StepError, StepResult, Workflow};
use aisha_engine::{Engine, EngineConfig, Pools, QueueBackend, QueueKind, RetryPolicy};
use aisha_http::metrics::Metrics;
use serde_json::{Value, json};

async fn step(s: Value, _ctx: StepCtx<()>) -> StepResult<Value> {
    if s["fail"] == true {
        return Err(StepError::retryable("boom"));
    }
    Ok(Next::Done(s))
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_runs() {
    let tdb = TestDb::new(QueueKind::Sqlite).await;
    let pools = Pools::connect(&tdb.url, 5).await.unwrap();
    let db = pools.db.clone();
    db.migrate().await.unwrap();
    let queue = QueueBackend::open(QueueKind::Sqlite, &pools, None)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new("test").unwrap());
    let policy = RetryPolicy::default()
        .attempts(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(40));
    let wf = Workflow::new("probe", ()).step_with("only", policy, step);
    let config = EngineConfig {
        tick: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let engine = Engine::builder(db, queue, config)
        .register(wf)
        .observer(metrics.clone())
        .build()
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let before = metrics.render(&engine).await.unwrap();
    assert_eq!(
        value(&before, r#"aisha_runs{status="failed",workflow="probe"}"#),
        0.0
    );

    let bad = engine
        .start("probe", json!({"fail": true}), StartOptions::default())
        .await
        .unwrap();
    let good = engine
        .start("probe", json!({"fail": false}), StartOptions::default())
        .await
        .unwrap();
    for (id, want) in [(&bad.run_id, "failed"), (&good.run_id, "succeeded")] {
        let t0 = std::time::Instant::now();
        while engine.show_run(id).await.unwrap().run.status != want {
            assert!(t0.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let after = metrics.render(&engine).await.unwrap();
    assert_eq!(
        value(
            &after,
            r#"aisha_step_retries_total{step="only",workflow="probe"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"aisha_runs_finished_total{status="failed",workflow="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"aisha_runs_finished_total{status="succeeded",workflow="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&after, r#"aisha_runs{status="failed",workflow="probe"}"#),
        1.0
    );
    assert_eq!(
        value(&after, r#"aisha_runs{status="succeeded",workflow="probe"}"#),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"aisha_step_duration_seconds_count{outcome="retry",step="only",workflow="probe"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"aisha_step_duration_seconds_count{outcome="failed",step="only",workflow="probe"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"aisha_step_duration_seconds_count{outcome="ok",step="only",workflow="probe"}"#
        ),
        1.0
    );
    assert!(
        after.contains("aisha_queue_tasks{queue=\"aisha.probe\",status=\"dead\"} 0"),
        "{after}"
    );
    let _ = stop.send(());
    let _ = runner.await;
}
