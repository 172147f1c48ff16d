//! One test's whole FAL world: a fresh database, the engine running, the FAL simulator, and
//! the real webhook service on a socket, wired as the binary wires them.

use std::sync::Arc;
use std::time::Duration;

use aisha_adapters::blob::local::LocalBlobStore;
use aisha_adapters::fal::client::{FalClient, FalKey};
use aisha_adapters::fal::inbox::Handover;
use aisha_adapters::fal::jobs::FalJobs;
use aisha_adapters::fal::jwks::JwksCache;
use aisha_adapters::fal::probe::{self, ProbeDeps};
use aisha_adapters::fal::sim::{SimConfig, SimFal};
use aisha_adapters::fal::submissions::Submissions;
use aisha_adapters::fal::token::WebhookToken;
use aisha_adapters::http::webhook::WebhookService;
use aisha_adapters::http::{AppState, HttpServer, public_router};
use aisha_adapters::metrics::Metrics;
use aisha_engine::EngineBuilder;
use aisha_engine::ops::RunDetail;
use aisha_engine::testkit::{TestDb, fast_config, redis_url};
use aisha_engine::{Db, Engine, Pools, QueueBackend, QueueKind};

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
    pub local_blobs: Arc<LocalBlobStore>,
    blob_dir: tempfile::TempDir,
    pub db: TestDb,
    pub sim: SimFal,
    pub server: HttpServer,
    pub base: String,
    pub jobs: FalJobs,
    pub token: WebhookToken,
    pub metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a test's own workflows may use.
pub struct Wiring<'a> {
    pub jobs: &'a FalJobs,
    pub token: &'a WebhookToken,
    pub base: &'a str,
    pub db: &'a Db,
    /// A local blob store whose presigned URLs the world's HTTP server answers.
    pub local_blobs: &'a Arc<LocalBlobStore>,
}

impl World {
    /// `register` adds workflows beyond `fal_probe`, given the world's FAL jobs.
    pub async fn start(
        kind: QueueKind,
        sim_config: SimConfig,
        register: impl FnOnce(EngineBuilder, Wiring<'_>) -> EngineBuilder,
    ) -> World {
        let db = TestDb::new(kind).await;
        let pools = Pools::connect(&db.url, 10).await.expect("connect");
        let pool = pools.db.clone();
        pool.migrate().await.expect("migrate");
        let queue = QueueBackend::open(kind, &pools, Some(&redis_url()))
            .await
            .expect("queue");
        let sim = SimFal::start(sim_config).await.expect("sim");
        // The webhook's address must be known before the jobs that point FAL at it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let metrics = Arc::new(Metrics::new("test").unwrap());
        let token = WebhookToken::new(SECRET).unwrap();
        let client = FalClient::new(&sim.base_url, FalKey::new("k"), Duration::from_secs(10))
            .unwrap()
            .with_metrics(metrics.clone());
        let jobs = FalJobs::new(client, Submissions::new(pool.clone()), token.clone(), &base);
        let db_handle = pool.clone();
        let builder = Engine::builder(pool, queue, fast_config())
            .observer(metrics.clone())
            .register(probe::workflow(ProbeDeps {
                jobs: jobs.clone(),
                generator: "fal-ai/flux-lora".into(),
                http: reqwest::Client::new(),
            }));
        let blob_dir = tempfile::tempdir().expect("blob dir");
        let local_blobs =
            Arc::new(LocalBlobStore::new(blob_dir.path(), &base, b"test-blob-key").expect("blobs"));
        let wiring = Wiring {
            jobs: &jobs,
            token: &token,
            base: &base,
            db: &db_handle,
            local_blobs: &local_blobs,
        };
        let engine = register(builder, wiring).build().await.expect("engine");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (handover, handover_task) =
            Handover::start(engine.clone(), metrics.clone(), stopped.clone())
                .await
                .expect("handover");
        let webhook = Arc::new(WebhookService {
            jwks: JwksCache::new(&sim.jwks_url).min_refresh(Duration::ZERO),
            token: token.clone(),
            handover,
            // Checked in every test: the simulator signs as `sim-user`.
            fal_user_id: Some(sim.user_id().to_string()),
        });
        let state = AppState {
            engine: engine.clone(),
            metrics: metrics.clone(),
            admin_token: None,
            webhook: Some(webhook),
            blobs: Some(local_blobs.clone()),
            telegram: None,
            credit_limits: Default::default(),
        };
        let server = HttpServer::start(&format!("127.0.0.1:{port}"), public_router(state))
            .await
            .expect("webhook server");
        let runner = engine.clone();
        let mut stopped_engine = stopped;
        let engine_task = tokio::spawn(async move {
            let _ = runner
                .run_until(async move {
                    let _ = stopped_engine.wait_for(|s| *s).await;
                })
                .await;
        });
        World {
            engine,
            local_blobs,
            blob_dir,
            db,
            sim,
            server,
            base,
            jobs,
            token,
            metrics,
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
        self.engine.db().close().await;
        self.db.drop_db().await;
        drop(self.blob_dir);
    }
}
