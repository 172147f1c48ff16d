//! Crash drill: a worker process is killed with SIGKILL in the middle of many runs; after a
//! restart every run completes and no step is recorded as completed twice.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aisha_engine::StartOptions;
use aisha_engine::testkit::{TestDb, namespace, redis_url};
use aisha_engine::{Db, Engine, EngineConfig, Pools, QueueBackend, QueueKind, on_db};
use serde_json::json;

const RUNS: usize = 150;

/// A worker process, killed when dropped so that a failing test leaves none behind.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(db: &TestDb, ns: &str) -> Worker {
    let child = Command::new(env!("CARGO_BIN_EXE_aisha"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("QUEUE_BACKEND", db.kind.as_str())
        .env("REDIS_URL", redis_url())
        .env("QUEUE_NAMESPACE", ns)
        .env("HTTP_BIND", "127.0.0.1:0")
        .env("ADMIN_BIND", "127.0.0.1:0")
        .env("WORKER_CONCURRENCY", "8")
        .env("DB_MAX_CONNECTIONS", "6")
        .env("LEASE_GRACE_SECS", "1")
        .env("RECONCILE_EVERY_SECS", "1")
        .env("RECONCILE_STALE_SECS", "3")
        .env("SHUTDOWN_GRACE_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn aisha worker");
    Worker(child)
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    on_db!(db, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).expect("count")
}

async fn drill(kind: QueueKind) {
    let tdb = TestDb::new(kind).await;
    let ns = namespace();
    let pools = Pools::connect(&tdb.url, 5).await.unwrap();
    let db = pools.db.clone();
    db.migrate().await.unwrap();
    let queue = QueueBackend::open(kind, &pools, Some(&redis_url()))
        .await
        .unwrap();
    // This engine only starts runs; the worker processes execute them.
    let engine = Engine::builder(
        db.clone(),
        queue,
        EngineConfig {
            namespace: ns.clone(),
            ..EngineConfig::default()
        },
    )
    .register(aisha_engine::testkit::noop3::workflow())
    .build()
    .await
    .unwrap();
    let mut first = spawn_worker(&tdb, &ns);
    for _ in 0..RUNS {
        engine
            .start("noop3", json!({"step_ms": 40}), StartOptions::default())
            .await
            .unwrap();
    }
    // Let it get well into the runs, then kill it without warning.
    let t0 = Instant::now();
    while count(
        &db,
        "SELECT count(*) FROM step_attempts WHERE outcome = 'ok'",
    )
    .await
        < (RUNS as i64) / 2
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first worker made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let unfinished = count(
        &db,
        "SELECT count(*) FROM workflow_runs WHERE status <> 'succeeded'",
    )
    .await;
    assert!(
        unfinished > 0,
        "every run finished before the kill: the drill proves nothing"
    );

    let mut second = spawn_worker(&tdb, &ns);
    let t0 = Instant::now();
    loop {
        let done = count(
            &db,
            "SELECT count(*) FROM workflow_runs WHERE status = 'succeeded'",
        )
        .await;
        if done == RUNS as i64 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "only {done} of {RUNS} runs finished after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No step completed twice, and each run's state saw each step exactly once.
    let dup = count(
        &db,
        "SELECT count(*) FROM (SELECT run_id, step FROM step_attempts WHERE outcome = 'ok' \
         GROUP BY run_id, step HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dup, 0, "some step was recorded as completed twice");
    let oks = count(
        &db,
        "SELECT count(*) FROM step_attempts WHERE outcome = 'ok'",
    )
    .await;
    assert_eq!(oks, 3 * RUNS as i64);
    let states: Vec<String> =
        on_db!(&db, p => sqlx::query_scalar("SELECT state FROM workflow_runs").fetch_all(p).await)
            .unwrap();
    let mut shapes: HashMap<String, usize> = HashMap::new();
    for s in states {
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        *shapes.entry(v["done"].to_string()).or_default() += 1;
    }
    assert_eq!(
        shapes.get(r#"["one","two","three"]"#),
        Some(&RUNS),
        "{shapes:?}"
    );

    // Graceful shutdown: SIGTERM lets the worker finish and exit cleanly.
    let pid = second.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = second.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "worker ignored SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "worker exited with {status}");
    db.close().await;
    tdb.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_postgres() {
    drill(QueueKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_redis() {
    drill(QueueKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_sqlite() {
    drill(QueueKind::Sqlite).await;
}
