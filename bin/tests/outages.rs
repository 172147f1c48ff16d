//! Outage drills: the backends fail under running processes, which carry on by themselves.
//! Each drill runs its own Redis or PostgreSQL (never the shared ones) and stops, kills or
//! restarts it on purpose while real `aisha` processes work.
//!
//! - Redis killed with runs in flight and kept down 30 s, then started again *empty*: `/ready`
//!   says 503 meanwhile, runs started during the outage are not lost, every run completes with
//!   each step recorded once, and the restarted queue worker is counted in the metrics.
//! - PostgreSQL stopped with `-m immediate` and started again under a worker, a webhook replica
//!   and a bot: none exits, each is ready again, every run completes, the bot answers.
//! - A Postgres with `max_connections = 100`: the engine bench at concurrency 100 and 256, and
//!   two workers with `WORKER_CONCURRENCY=1024`, `DB_MAX_CONNECTIONS=20`, stay in their budget.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aisha_engine::StartOptions;
use aisha_engine::testkit::servers::{ThrowawayPostgres, ThrowawayRedis};
use aisha_engine::testkit::{TestDb, namespace};
use aisha_engine::{Db, Engine, EngineConfig, Pools, QueueBackend, QueueKind, on_db};
use aisha_sim::telegram::{SimConfig, SimTelegram, SimUser, UserAction};
use common::{Dir, Server, aisha, spawn, spawn_announcing, until_up};
use serde_json::{Value, json};

/// Settings that make recovery quick enough for a test.
fn fast(env: &mut Vec<(String, String)>) {
    for (k, v) in [
        ("LEASE_GRACE_SECS", "1"),
        ("RECONCILE_EVERY_SECS", "1"),
        ("RECONCILE_STALE_SECS", "3"),
        ("SHUTDOWN_GRACE_SECS", "5"),
    ] {
        env.push((k.into(), v.into()));
    }
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// An engine in the test process that only starts runs (the worker processes execute them).
async fn starter(kind: QueueKind, url: &str, redis: Option<&str>, ns: &str) -> (Engine, Db) {
    let pools = Pools::connect(url, 4).await.unwrap();
    let db = pools.db.clone();
    db.migrate().await.unwrap();
    let queue = QueueBackend::open(kind, &pools, redis).await.unwrap();
    let engine = Engine::builder(
        db.clone(),
        queue,
        EngineConfig {
            namespace: ns.into(),
            ..EngineConfig::default()
        },
    )
    .register(aisha_engine::testkit::noop3::workflow())
    .build()
    .await
    .unwrap();
    (engine, db)
}

async fn start_runs(engine: &Engine, n: usize, step_ms: u64) {
    for _ in 0..n {
        engine
            .start(
                "noop3",
                json!({"step_ms": step_ms}),
                StartOptions::default(),
            )
            .await
            .expect("starting a run");
    }
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    on_db!(db, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).expect("count")
}

async fn steps_ok(db: &Db) -> i64 {
    count(
        db,
        "SELECT count(*) FROM step_attempts WHERE outcome = 'ok'",
    )
    .await
}

/// Waits until every one of `runs` runs succeeded, then checks that no step completed twice
/// and that each run's state saw each of its three steps once.
async fn all_complete_once(db: &Db, runs: i64, within: Duration) {
    let t0 = Instant::now();
    loop {
        let done = count(
            db,
            "SELECT count(*) FROM workflow_runs WHERE status = 'succeeded'",
        )
        .await;
        if done == runs {
            break;
        }
        assert!(
            t0.elapsed() < within,
            "only {done} of {runs} runs finished {within:?} after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dup = count(
        db,
        "SELECT count(*) FROM (SELECT run_id, step FROM step_attempts WHERE outcome = 'ok' \
         GROUP BY run_id, step HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dup, 0, "some step was recorded as completed twice");
    assert_eq!(steps_ok(db).await, 3 * runs);
    let states: Vec<String> =
        on_db!(db, p => sqlx::query_scalar("SELECT state FROM workflow_runs").fetch_all(p).await)
            .unwrap();
    let mut shapes: HashMap<String, i64> = HashMap::new();
    for s in states {
        let v: Value = serde_json::from_str(&s).unwrap();
        *shapes.entry(v["done"].to_string()).or_default() += 1;
    }
    assert_eq!(
        shapes.get(r#"["one","two","three"]"#),
        Some(&runs),
        "{shapes:?}"
    );
}

async fn wait_steps(db: &Db, at_least: i64) {
    let t0 = Instant::now();
    while steps_ok(db).await < at_least {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the workers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/ready`'s status and body (None when nothing answers).
async fn ready(base: &str) -> Option<(u16, Value)> {
    let r = reqwest::Client::new()
        .get(format!("{base}/ready"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

async fn until_ready_is(base: &str, status: u16, within: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let got = ready(base).await;
        if let Some((s, body)) = &got
            && *s == status
        {
            return body.clone();
        }
        assert!(
            t0.elapsed() < within,
            "{base}/ready is not {status} after {within:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of one sample of `/metrics` on the private listener `admin` (0 when absent).
async fn metric(admin: &str, name: &str, label: &str) -> f64 {
    let text = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/health` says the process lives, whatever its backends do.
async fn healthy(base: &str) {
    let r = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{base}/health during the outage");
}

fn alive(s: &mut Server, what: &str) {
    assert!(
        s.0.try_wait().unwrap().is_none(),
        "the {what} process exited during the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_30s_then_back_empty() {
    const RUNS: usize = 150;
    const DURING: usize = 20;
    let mut redis = ThrowawayRedis::start();
    let tdb = TestDb::new(QueueKind::Redis).await;
    let ns = namespace();
    let dir = Dir::new();
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), tdb.url.clone()),
        ("QUEUE_BACKEND".into(), "redis".into()),
        ("REDIS_URL".into(), redis.url()),
        ("QUEUE_NAMESPACE".into(), ns.clone()),
        ("HTTP_BIND".into(), "127.0.0.1:0".into()),
        ("ADMIN_BIND".into(), "127.0.0.1:0".into()),
        ("WORKER_CONCURRENCY".into(), "8".into()),
        ("DB_MAX_CONNECTIONS".into(), "6".into()),
    ];
    fast(&mut env);
    let (engine, db) = starter(QueueKind::Redis, &tdb.url, Some(&redis.url()), &ns).await;
    let t = Instant::now();
    let (mut worker, at) =
        spawn_announcing(&dir, &["worker"], &refs(&env), &["HTTP_BIND", "ADMIN_BIND"]);
    let base = format!("http://{}", at["HTTP_BIND"]);
    let admin_base = format!("http://{}", at["ADMIN_BIND"]);
    until_ready_is(&base, 200, Duration::from_secs(30)).await;
    start_runs(&engine, RUNS, 40).await;
    wait_steps(&db, RUNS as i64).await;
    println!("worker up and {RUNS} steps done in {:?}", t.elapsed());

    redis.kill();
    let down_at = Instant::now();
    let body = until_ready_is(&base, 503, Duration::from_secs(15)).await;
    assert!(body.to_string().contains("queue"), "{body}");
    // Runs started while Redis is away are committed; their tasks come when it is back.
    let t = Instant::now();
    start_runs(&engine, DURING, 40).await;
    println!(
        "{DURING} runs started during the outage in {:?}",
        t.elapsed()
    );
    let unfinished = count(
        &db,
        "SELECT count(*) FROM workflow_runs WHERE status <> 'succeeded'",
    )
    .await;
    assert!(
        unfinished > DURING as i64,
        "nothing was in flight at the kill"
    );
    let still_503 = ready(&base).await.map(|(s, _)| s);
    assert_eq!(still_503, Some(503));
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    assert_eq!(ready(&base).await.map(|(s, _)| s), Some(503));
    healthy(&base).await;
    alive(&mut worker, "worker");

    redis.start_again();
    let back_at = Instant::now();
    until_ready_is(&base, 200, Duration::from_secs(60)).await;
    println!("ready again {:?} after Redis came back", back_at.elapsed());
    all_complete_once(&db, (RUNS + DURING) as i64, Duration::from_secs(120)).await;
    println!(
        "every run done {:?} after Redis came back",
        back_at.elapsed()
    );
    let queue = format!("queue=\"{ns}.noop3\"");
    assert!(
        metric(&admin_base, "aisha_queue_worker_restarts_total", &queue).await >= 1.0,
        "the queue worker's restart is not counted"
    );
    assert_eq!(
        metric(&admin_base, "aisha_queue_workers_up", &queue).await,
        1.0
    );
    alive(&mut worker, "worker");
    drop(worker);
    db.close().await;
    tdb.drop_db().await;
}

const TOKEN: &str = "424242:outage-drill-token";

fn telegram_user(id: i64) -> SimUser {
    serde_json::from_value(json!({"id": id, "first_name": format!("U{id}"), "language_code": "en"}))
        .unwrap()
}

fn say_start(sim: &SimTelegram, id: i64) {
    let mut v = json!({"text": "/start"});
    v["user"] = serde_json::to_value(telegram_user(id)).unwrap();
    sim.push(serde_json::from_value::<UserAction>(v).unwrap());
}

async fn answered(sim: &SimTelegram, chat: i64, within: Duration) {
    let t0 = Instant::now();
    while !sim
        .sent(Some(chat), 0)
        .iter()
        .any(|c| c.method == "sendMessage")
    {
        assert!(t0.elapsed() < within, "the bot never answered {chat}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_under_worker_webhook_and_bot() {
    const RUNS: usize = 100;
    let pg = ThrowawayPostgres::start(100);
    let url = pg.url();
    let ns = namespace();
    let dir = Dir::new();
    let sim = SimTelegram::start(SimConfig {
        token: TOKEN.into(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (_fal, fal) = spawn_announcing(
        &dir,
        &["sim-fal", "--bind", "127.0.0.1:0", "--key", "outage-key"],
        &[],
        &["FAL_QUEUE_URL", "FAL_JWKS_URL"],
    );
    let jwks = fal["FAL_JWKS_URL"].clone();
    until_up(&jwks).await;
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), url.clone()),
        ("QUEUE_BACKEND".into(), "postgres".into()),
        ("QUEUE_NAMESPACE".into(), ns.clone()),
        ("WORKER_CONCURRENCY".into(), "8".into()),
        ("DB_MAX_CONNECTIONS".into(), "8".into()),
        ("FAL_KEY".into(), "outage-key".into()),
        ("FAL_QUEUE_URL".into(), fal["FAL_QUEUE_URL"].clone()),
        ("FAL_JWKS_URL".into(), jwks.clone()),
        ("TELEGRAM_BOT_TOKEN".into(), TOKEN.into()),
        ("TELEGRAM_API_URL".into(), sim.base_url.clone()),
        ("TELEGRAM_CHAT_INTERVAL_MS".into(), "20".into()),
    ];
    fast(&mut env);
    assert!(aisha(&dir, &["migrate"], &refs(&env)).status.success());
    let (engine, db) = starter(QueueKind::Postgres, &url, None, &ns).await;
    // Each role on ports of its own choosing (port 0), announced as it starts.
    let role = |args: &[&str]| {
        let mut e = env.clone();
        e.push(("HTTP_BIND".into(), "127.0.0.1:0".into()));
        e.push(("ADMIN_BIND".into(), "127.0.0.1:0".into()));
        spawn_announcing(&dir, args, &refs(&e), &["HTTP_BIND", "ADMIN_BIND"])
    };
    let (mut worker, worker_at) = role(&["worker"]);
    let (mut webhook, webhook_at) = role(&["webhook", "--bind", "127.0.0.1:0"]);
    let (mut bot, bot_at) = role(&["bot"]);
    let bases: Vec<String> = [&worker_at, &webhook_at, &bot_at]
        .iter()
        .map(|at| format!("http://{}", at["HTTP_BIND"]))
        .collect();
    for b in &bases {
        until_ready_is(b, 200, Duration::from_secs(30)).await;
    }
    say_start(&sim, 1);
    answered(&sim, 1, Duration::from_secs(30)).await;
    start_runs(&engine, RUNS, 40).await;
    wait_steps(&db, RUNS as i64).await;

    pg.stop_immediately();
    for b in &bases {
        let body = until_ready_is(b, 503, Duration::from_secs(20)).await;
        assert!(body.to_string().contains("database"), "{b}: {body}");
    }
    // A user writes while the database is down: Telegram keeps the update until it is stored.
    say_start(&sim, 2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    for b in &bases {
        healthy(b).await;
    }
    pg.start_again();

    for b in &bases {
        until_ready_is(b, 200, Duration::from_secs(60)).await;
    }
    alive(&mut worker, "worker");
    alive(&mut webhook, "webhook");
    alive(&mut bot, "bot");
    answered(&sim, 2, Duration::from_secs(60)).await;
    start_runs(&engine, 20, 0).await;
    all_complete_once(&db, RUNS as i64 + 20, Duration::from_secs(120)).await;
    say_start(&sim, 3);
    answered(&sim, 3, Duration::from_secs(30)).await;
    // The worker's loops that lost the database were restarted, and are counted.
    let worker_admin = format!("http://{}", worker_at["ADMIN_BIND"]);
    let restarts = metric(&worker_admin, "aisha_queue_worker_restarts_total", "queue=").await
        + metric(
            &worker_admin,
            "aisha_background_loop_restarts_total",
            "loop=",
        )
        .await;
    println!("worker loop restarts after the Postgres crash: {restarts}");
    assert!(restarts >= 1.0, "no restart counted on the worker");
    db.close().await;
}

/// Samples the cluster's client connections every 50 ms, keeping the most seen at once.
struct PeakConnections {
    peak: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakConnections {
    async fn start(pg: &ThrowawayPostgres) -> PeakConnections {
        let admin = sqlx::PgPool::connect(&pg.url()).await.unwrap();
        let peak = Arc::new(AtomicI64::new(0));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(n) = sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
                )
                .fetch_one(&admin)
                .await
                {
                    // Not counting the sampler's own connection.
                    seen.fetch_max(n - 1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakConnections { peak, task }
    }

    fn stop(self) -> i64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_steps_at_once_stay_in_the_connection_budget() {
    const RUNS: usize = 600;
    const BUDGET: i64 = 20;
    let pg = ThrowawayPostgres::start(100);
    let url = pg.url();
    let ns = namespace();
    let dir = Dir::new();
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), url.clone()),
        ("QUEUE_BACKEND".into(), "postgres".into()),
        ("QUEUE_NAMESPACE".into(), ns.clone()),
        ("WORKER_CONCURRENCY".into(), "1024".into()),
        ("DB_MAX_CONNECTIONS".into(), BUDGET.to_string()),
    ];
    fast(&mut env);
    assert!(aisha(&dir, &["migrate"], &refs(&env)).status.success());
    let (engine, db) = starter(QueueKind::Postgres, &url, None, &ns).await;
    let peak = PeakConnections::start(&pg).await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut e = env.clone();
        e.push(("HTTP_BIND".into(), "127.0.0.1:0".into()));
        workers.push(spawn(&dir, &["worker"], &refs(&e)));
    }
    // Steps that sleep keep a thousand of them in flight at once.
    start_runs(&engine, RUNS, 200).await;
    all_complete_once(&db, RUNS as i64, Duration::from_secs(180)).await;
    for w in &mut workers {
        alive(w, "worker");
    }
    let peak = peak.stop();
    // Two workers at their budget, plus this test's starter pool (4).
    println!("peak client connections: {peak} (budget: 2 × {BUDGET} + 4)");
    assert!(peak <= 2 * BUDGET + 4, "{peak} connections at once");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_engine_fits_a_100_connection_postgres() {
    let pg = ThrowawayPostgres::start(100);
    let dir = Dir::new();
    for concurrency in ["100", "256"] {
        let out = aisha(
            &dir,
            &[
                "bench",
                "engine",
                "--backend",
                "postgres",
                "--workflows",
                "1500",
                "--concurrency",
                concurrency,
                "--postgres",
                &pg.url(),
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "bench at concurrency {concurrency}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("1500"), "{report}");
    }
}
