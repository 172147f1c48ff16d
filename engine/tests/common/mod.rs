//! Test harness: a fresh database (Postgres database, SQLite file) and queue namespace per
//! test, the engine running in the background, and helpers to wait for runs.

#![allow(dead_code)]

use std::time::Duration;

use aisha_engine::EngineBuilder;
use aisha_engine::ops::RunDetail;
use aisha_engine::testkit::{TestDb, redis_url};
use aisha_engine::{Db, Engine, EngineConfig, Pools, QueueBackend, QueueKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn test_config() -> EngineConfig {
    aisha_engine::testkit::fast_config()
}

pub struct Harness {
    pub engine: Engine,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub async fn open(db: &TestDb) -> (Db, QueueBackend) {
    let pools = Pools::connect(&db.url, 10).await.expect("connect");
    let pool = pools.db.clone();
    pool.migrate().await.expect("migrate");
    let queue = QueueBackend::open(db.kind, &pools, Some(&redis_url()))
        .await
        .expect("queue");
    (pool, queue)
}

impl Harness {
    /// Builds the engine with `register` and `config`, and runs it unless `run` is false.
    pub async fn start(
        kind: QueueKind,
        config: EngineConfig,
        run: bool,
        register: impl FnOnce(EngineBuilder) -> EngineBuilder,
    ) -> Harness {
        let db = TestDb::new(kind).await;
        let (pool, queue) = open(&db).await;
        let engine = register(Engine::builder(pool, queue, config))
            .build()
            .await
            .expect("engine");
        let mut h = Harness {
            engine,
            db,
            stop: None,
            task: None,
        };
        if run {
            h.run();
        }
        h
    }

    pub fn run(&mut self) {
        let (tx, rx) = oneshot::channel::<()>();
        let engine = self.engine.clone();
        self.task = Some(tokio::spawn(async move {
            let _ = engine
                .run_until(async move {
                    let _ = rx.await;
                })
                .await;
        }));
        self.stop = Some(tx);
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn wait_for(&self, run_id: &str, status: &str) -> RunDetail {
        wait_for(&self.engine, run_id, status, Duration::from_secs(30)).await
    }

    pub async fn finish(mut self) {
        self.stop().await;
        self.engine.db().close().await;
        self.db.drop_db().await;
    }
}

pub async fn wait_for(engine: &Engine, run_id: &str, status: &str, limit: Duration) -> RunDetail {
    let t0 = std::time::Instant::now();
    loop {
        let d = engine.show_run(run_id).await.expect("show run");
        if d.run.status == status {
            return d;
        }
        if t0.elapsed() > limit {
            panic!(
                "run {run_id} is still {} (wanted {status}): {d:#?}",
                d.run.status
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Steps of the timeline as `step:outcome`.
pub fn outline(d: &RunDetail) -> Vec<String> {
    d.timeline
        .iter()
        .map(|t| format!("{}:{}", t.step, t.outcome))
        .collect()
}
