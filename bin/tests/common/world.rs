//! One test's whole world in this process: a fresh database, the FAL simulator, the engine
//! with every workflow and the public HTTP server, built by the binary's own wiring
//! ([`App::build_with`]) from settings, as `aisha serve` builds them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aisha::app::{App, Startup, Wiring};
use aisha::settings::Settings;
use aisha_engine::EngineBuilder;
use aisha_engine::ops::RunDetail;
use aisha_engine::testkit::{TestDb, fast_config, redis_url};
use aisha_engine::{Engine, QueueKind};
use aisha_fal::jobs::FalJobs;
use aisha_fal::probe;
use aisha_fal::token::WebhookToken;
use aisha_http::{HttpServer, Metrics};
use aisha_sim::fal::{SimConfig, SimFal};
use aisha_workflows::blob::BlobStore;

pub const SECRET: &str = "test-webhook-secret-0123456789abcdef";

/// A simulator that answers in 50 ms.
pub fn fast_sim() -> SimConfig {
    SimConfig {
        delay: Duration::from_millis(50),
        ..SimConfig::default()
    }
}

/// Starts `fal_probe`, which waits up to `wait_secs` for FAL's callback.
pub async fn start_probe(w: &World, wait_secs: u64) -> String {
    w.engine
        .start(
            probe::NAME,
            serde_json::json!({"prompt": "a test portrait", "wait_secs": wait_secs}),
            aisha_engine::StartOptions::default(),
        )
        .await
        .unwrap()
        .run_id
}

pub struct World {
    pub engine: Engine,
    /// The product's blob store: S3 when the test configured it, else the local folder.
    pub blobs: Arc<dyn BlobStore>,
    data_dir: tempfile::TempDir,
    pub db: TestDb,
    pub sim: SimFal,
    pub server: HttpServer,
    pub base: String,
    pub jobs: FalJobs,
    pub token: WebhookToken,
    pub metrics: Arc<Metrics>,
    app: App,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl World {
    /// `register` adds workflows beyond the product's, given the world's wiring.
    pub async fn start(
        kind: QueueKind,
        sim: SimConfig,
        register: impl FnOnce(EngineBuilder, &Wiring<'_>) -> EngineBuilder,
    ) -> World {
        World::start_with(kind, sim, |_| {}, register).await
    }

    /// [`World::start`], with `settings` changed by `tune` first (an S3 store, shorter waits).
    pub async fn start_with(
        kind: QueueKind,
        sim: SimConfig,
        tune: impl FnOnce(&mut Settings),
        register: impl FnOnce(EngineBuilder, &Wiring<'_>) -> EngineBuilder,
    ) -> World {
        let db = TestDb::new(kind).await;
        let data_dir = tempfile::tempdir().expect("data dir");
        // Bound before anything is built: FAL's callbacks are pointed at this address, and
        // the server takes this very listener over (no window for another process).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let addr = listener.local_addr().expect("address");
        let base = format!("http://{addr}");
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", db.url.clone()),
            ("QUEUE_BACKEND", kind.as_str().to_string()),
            ("REDIS_URL", redis_url()),
            ("DB_MAX_CONNECTIONS", "10".into()),
            ("DATA_DIR", data_dir.path().display().to_string()),
            ("HTTP_BIND", addr.to_string()),
            ("PUBLIC_URL", base.clone()),
            ("WEBHOOK_SECRET", SECRET.into()),
            ("SIM_FAL_DELAY_MS", sim.delay.as_millis().to_string()),
            // Checked in every test: the simulator signs as this account.
            ("FAL_USER_ID", sim.user_id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut settings = Settings::from_map(&vars).expect("settings");
        settings.engine = fast_config();
        tune(&mut settings);
        let mut app = App::build_with(&settings, "test", true, Startup::FailFast, register)
            .await
            .expect("app");
        // The key-rotation test needs FAL's new key fetched at once.
        app.fal.jwks_min_refresh = Duration::ZERO;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (webhook, handover_task) = app
            .fal
            .webhook(&app.engine, app.metrics.clone(), stopped.clone())
            .await
            .expect("webhook");
        let server = app
            .serve_public(&settings, listener, webhook, None)
            .expect("webhook server");
        let runner = app.engine.clone();
        let mut stopped_engine = stopped;
        let engine_task = tokio::spawn(async move {
            let _ = runner
                .run_until(async move {
                    let _ = stopped_engine.wait_for(|s| *s).await;
                })
                .await;
        });
        World {
            engine: app.engine.clone(),
            blobs: app.blobs.store.clone(),
            data_dir,
            db,
            sim: app.fal.sim.take().expect("the built-in FAL simulator"),
            server,
            base,
            jobs: app.fal.jobs.clone(),
            token: app.fal.token.clone(),
            metrics: app.metrics.clone(),
            app,
            stop,
            tasks: vec![handover_task, engine_task],
        }
    }

    pub async fn wait_for(&self, run_id: &str, status: &str) -> RunDetail {
        let t0 = std::time::Instant::now();
        loop {
            let d = self.engine.show_run(run_id).await.expect("show run");
            if d.run.status == status {
                return d;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "run {run_id} is still {} (wanted {status}): {d:#?}",
                d.run.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        aisha_engine::on_db!(self.engine.db(), p => sqlx::query_scalar(sql).fetch_one(p).await)
            .expect("count")
    }

    /// A sample of `name` whose labels include every one of `labels` (`key="value"`).
    pub fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.metrics.registry().gather())
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.server.stop().await;
        self.sim.stop().await;
        self.app.pools.close().await;
        self.db.drop_db().await;
        drop(self.data_dir);
    }
}
