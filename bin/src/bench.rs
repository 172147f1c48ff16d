//! `aisha bench engine`: runs noop3 workflows through the real engine and queue and prints
//! throughput, step-to-step latency and CPU per workflow. Figures, not pass/fail.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisha_engine::StartOptions;
use aisha_engine::testkit::noop3::Noop3;
use aisha_engine::{Db, Engine, EngineConfig, Observer, Pools, QueueBackend, QueueKind, on_db};
use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Args, Debug, Clone)]
pub struct EngineBench {
    /// Queue backend: postgres, redis or sqlite (redis keeps state in Postgres).
    #[arg(long, default_value = "postgres")]
    pub backend: String,
    /// Workflows to run.
    #[arg(long, default_value_t = 2000)]
    pub workflows: usize,
    /// Workflows in flight at once (closed loop), and the worker's step concurrency.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The process's connection budget, as `DB_MAX_CONNECTIONS` sets it for every role:
    /// steps beyond it wait for a connection.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// Each step sleeps this long.
    #[arg(long, default_value_t = 0)]
    pub step_ms: u64,
    /// Finished runs to insert in bulk before measuring (tables that are not empty).
    #[arg(long, default_value_t = 0)]
    pub seed_finished: u64,
    /// Postgres server for the bench database `aisha_bench` (dropped and created anew).
    #[arg(
        long,
        env = "AISHA_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis: String,
    /// First run the bare step loop (claim txn + complete-and-enqueue txn, the pgbench script
    /// of `shared/bench/pg/step.sql`) for as many workflows on the same database with the
    /// same driver, then noop3, and print both and their ratio.
    #[arg(long)]
    pub baseline: bool,
}

struct Figures {
    /// Steps per transaction of the transitions' group commit, and of the claims'.
    per_commit: (f64, f64),
    /// Postgres: steps per committed transaction of the database, every kind counted.
    per_xact: Option<f64>,
    wall: Duration,
    cpu_ms: f64,
    gaps_us: Vec<i64>,
    first_us: Vec<i64>,
    last_us: Vec<i64>,
}

pub async fn run(args: EngineBench) -> anyhow::Result<()> {
    let kind: QueueKind = args
        .backend
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--backend: expected {e}"))?;
    if args.workflows == 0 || args.concurrency == 0 {
        bail!("--workflows and --concurrency must be at least 1");
    }
    let (pools, url, _tmp) = bench_db(kind, &args).await?;
    let db = pools.db.clone();
    let queue = QueueBackend::open(kind, &pools, Some(&args.redis)).await?;
    if args.seed_finished > 0 {
        let t = Instant::now();
        seed_finished(&db, args.seed_finished).await?;
        println!(
            "seeded {} finished runs in {:.1} s",
            args.seed_finished,
            t.elapsed().as_secs_f64()
        );
    }
    let baseline = if args.baseline {
        let b = crate::bench_baseline::run(&db, args.workflows, args.concurrency).await?;
        println!(
            "bare step loop: {} steps in {:.2} s, {:.0} steps/s (2 commits per step)",
            b.steps,
            b.wall.as_secs_f64(),
            b.steps_per_s()
        );
        Some(b)
    } else {
        None
    };
    let config = EngineConfig {
        namespace: format!("bench{}", ulid::Ulid::generate().to_string().to_lowercase()),
        concurrency: args.concurrency,
        ..EngineConfig::default()
    };
    let finished = Arc::new(Finished::default());
    let engine = Engine::builder(db.clone(), queue, config)
        .register(aisha_engine::testkit::noop3::workflow())
        .observer(finished.clone())
        .build()
        .await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run_until(async move {
                    let _ = stop_rx.await;
                })
                .await
        })
    };
    let xacts0 = pg_commits(&db).await;
    let mut f = measure(&engine, finished, &db, &args).await?;
    let (transitions, claims) = engine.group_commits();
    f.per_commit = (per(transitions.snapshot()), per(claims.snapshot()));
    if let (Some(a), Some(b)) = (xacts0, pg_commits(&db).await) {
        f.per_xact = Some(3.0 * args.workflows as f64 / (b - a).max(1) as f64);
    }
    let _ = stop_tx.send(());
    let _ = runner.await;
    if std::env::var("AISHA_BENCH_PGSS").is_ok() {
        let rows: Vec<(String, i64, f64)> = on_db!(&db, p => sqlx::query_as("SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, total_exec_time FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15").fetch_all(p).await)?;
        for (q, c, t) in rows {
            println!("{t:>10.0} ms {c:>8}  {q}");
        }
    }
    pools.close().await;
    if kind != QueueKind::Sqlite {
        drop_pg(&args.postgres, "aisha_bench").await;
    }
    report(kind, &args, &url, &f);
    if let Some(b) = baseline {
        let noop3 = 3.0 * args.workflows as f64 / f.wall.as_secs_f64();
        println!(
            "  bare step loop      {:.0} steps/s, same database and driver, just before",
            b.steps_per_s()
        );
        println!(
            "  noop3 / bare loop   {:.2}×",
            noop3 / b.steps_per_s().max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}

async fn bench_db(
    kind: QueueKind,
    args: &EngineBench,
) -> anyhow::Result<(Pools, String, Option<tempfile::TempDir>)> {
    match kind {
        QueueKind::Sqlite => {
            let dir = tempfile::Builder::new().prefix("aisha-bench-").tempdir()?;
            let url = format!("sqlite:{}", dir.path().join("bench.db").display());
            let pools = Pools::connect(&url, args.db_max_connections).await?;
            pools.db.migrate().await?;
            Ok((pools, url, Some(dir)))
        }
        QueueKind::Postgres | QueueKind::Redis => {
            let url = fresh_pg(&args.postgres, "aisha_bench").await?;
            let pools = Pools::connect(&url, args.db_max_connections).await?;
            pools.db.migrate().await?;
            if std::env::var("AISHA_BENCH_PGSS").is_ok() {
                on_db!(&pools.db, p => sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()").execute(p).await.map(|_| ()))?;
            }
            Ok((pools, url, None))
        }
    }
}

/// A new, empty database `name` on the Postgres server of `admin_url` (dropped first): its URL.
/// Whoever connects migrates it (the benches that run the whole app let `App::build` do it).
pub(crate) async fn fresh_pg(admin_url: &str, name: &'static str) -> anyhow::Result<String> {
    let admin = sqlx::PgPool::connect(admin_url).await.with_context(|| {
        format!(
            "--postgres: cannot connect to {}",
            aisha_engine::db::redact_url(admin_url)
        )
    })?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    // The same server and options (`?sslmode=…` and the like), another database.
    let mut url = reqwest::Url::parse(admin_url).with_context(|| {
        format!(
            "--postgres: not a URL: {}",
            aisha_engine::db::redact_url(admin_url)
        )
    })?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

pub(crate) async fn drop_pg(admin_url: &str, name: &'static str) {
    if let Ok(admin) = sqlx::PgPool::connect(admin_url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
        admin.close().await;
    }
}

/// Inserts `n` succeeded noop3 runs with their three step attempts, in bulk.
async fn seed_finished(db: &Db, n: u64) -> anyhow::Result<()> {
    let now = aisha_engine::time::now_ms();
    let n = n as i64;
    let state = json!({"done": ["one", "two", "three"]}).to_string();
    match db {
        Db::Postgres(p) => {
            sqlx::query(
                "INSERT INTO workflow_runs (id, workflow, status, step, attempt, seq, state, subject, created_at, updated_at, finished_at) \
                 SELECT 'seed-' || g, 'noop3', 'succeeded', 'three', 1, 4, $3, 'seed-' || (g % 10000), $1 - g, $1 - g, $1 - g \
                 FROM generate_series(1, $2) g",
            )
            .bind(now)
            .bind(n)
            .bind(&state)
            .execute(p)
            .await?;
            sqlx::query(
                "INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome) \
                 SELECT 'seed-' || g, v.s, v.step, 1, 'seed', $1 - g, $1 - g, 'ok' \
                 FROM generate_series(1, $2) g, (VALUES (1, 'one'), (2, 'two'), (3, 'three')) AS v(s, step)",
            )
            .bind(now)
            .bind(n)
            .execute(p)
            .await?;
            sqlx::raw_sql("ANALYZE workflow_runs; ANALYZE step_attempts")
                .execute(p)
                .await?;
        }
        Db::Sqlite(p) => {
            sqlx::query(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < $2) \
                 INSERT INTO workflow_runs (id, workflow, status, step, attempt, seq, state, subject, created_at, updated_at, finished_at) \
                 SELECT 'seed-' || x, 'noop3', 'succeeded', 'three', 1, 4, $3, 'seed-' || (x % 10000), $1 - x, $1 - x, $1 - x FROM g",
            )
            .bind(now)
            .bind(n)
            .bind(&state)
            .execute(p)
            .await?;
            sqlx::query(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < $2) \
                 INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome) \
                 SELECT 'seed-' || x, v.s, v.step, 1, 'seed', $1 - x, $1 - x, 'ok' \
                 FROM g, (SELECT 1 AS s, 'one' AS step UNION ALL SELECT 2, 'two' UNION ALL SELECT 3, 'three') v",
            )
            .bind(now)
            .bind(n)
            .execute(p)
            .await?;
        }
    }
    Ok(())
}

/// Tells waiting drivers when their run has finished.
#[derive(Default)]
struct Finished {
    inner: Mutex<FinishedState>,
}

#[derive(Default)]
struct FinishedState {
    /// Finished before anyone waited for them.
    early: HashSet<String>,
    waiting: HashMap<String, oneshot::Sender<()>>,
}

impl Observer for Finished {
    fn run_finished(&self, run_id: &str, _workflow: &str, _status: &str) {
        let Ok(mut g) = self.inner.lock() else { return };
        match g.waiting.remove(run_id) {
            Some(tx) => {
                let _ = tx.send(());
            }
            None => {
                g.early.insert(run_id.to_string());
            }
        }
    }
}

impl Finished {
    async fn wait(&self, run_id: &str) {
        let rx = {
            let Ok(mut g) = self.inner.lock() else { return };
            if g.early.remove(run_id) {
                return;
            }
            let (tx, rx) = oneshot::channel();
            g.waiting.insert(run_id.to_string(), tx);
            rx
        };
        let _ = rx.await;
    }
}

/// Closed loop: `concurrency` drivers each start a workflow, wait for it to finish, and
/// start the next, until `workflows` have run.
async fn measure(
    engine: &Engine,
    finished: Arc<Finished>,
    db: &Db,
    args: &EngineBench,
) -> anyhow::Result<Figures> {
    let cpu0 = process_cpu_ms();
    let t0 = Instant::now();
    let left = Arc::new(AtomicUsize::new(args.workflows));
    let mut drivers = Vec::new();
    for _ in 0..args.concurrency {
        let (engine, finished, left) = (engine.clone(), finished.clone(), left.clone());
        let input = json!({"step_ms": args.step_ms});
        drivers.push(tokio::spawn(async move {
            let mut ends = Vec::new();
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let t_start = aisha_engine::time::now_us();
                let started = engine
                    .start("noop3", input.clone(), StartOptions::default())
                    .await?;
                finished.wait(&started.run_id).await;
                ends.push((started.run_id, t_start, aisha_engine::time::now_us()));
            }
            anyhow::Ok(ends)
        }));
    }
    let limit = Duration::from_secs(900);
    let mut ends = HashMap::new();
    for d in drivers {
        for (id, t_start, t_end) in tokio::time::timeout(limit, d)
            .await
            .map_err(|_| anyhow::anyhow!("the workflows did not finish within {limit:?}"))???
        {
            ends.insert(id, (t_start, t_end));
        }
    }
    let wall = t0.elapsed();
    let cpu_ms = process_cpu_ms() - cpu0;
    let states: Vec<(String, String)> = on_db!(db, p => sqlx::query_as(
        "SELECT id, state FROM workflow_runs WHERE status = 'succeeded' AND id NOT LIKE 'seed-%'",
    )
    .fetch_all(p)
    .await)?;
    let mut gaps_us = Vec::with_capacity(states.len() * 2);
    let (mut first_us, mut last_us) = (Vec::new(), Vec::new());
    for (id, s) in states {
        let n: Noop3 = serde_json::from_str(&s)?;
        for w in n.t.windows(2) {
            gaps_us.push(w[1][0] - w[0][1]);
        }
        if let (Some(&(t_start, t_end)), Some(first), Some(last)) =
            (ends.get(&id), n.t.first(), n.t.last())
        {
            first_us.push(first[0] - t_start);
            last_us.push(t_end - last[1]);
        }
    }
    gaps_us.sort_unstable();
    first_us.sort_unstable();
    last_us.sort_unstable();
    Ok(Figures {
        per_commit: (0.0, 0.0),
        per_xact: None,
        wall,
        cpu_ms,
        gaps_us,
        first_us,
        last_us,
    })
}

/// Items per commit from a `(commits, items)` count.
fn per((commits, items): (u64, u64)) -> f64 {
    items as f64 / commits.max(1) as f64
}

/// Transactions committed in this Postgres database so far (None on SQLite). The statistics
/// collector reports them with a delay of up to a second: the figure is approximate.
async fn pg_commits(db: &Db) -> Option<i64> {
    let Db::Postgres(p) = db else { return None };
    let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(p)
        .await;
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(p)
    .await
    .ok()
}

pub(crate) fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(kind: QueueKind, args: &EngineBench, url: &str, f: &Figures) {
    let secs = f.wall.as_secs_f64();
    let n = args.workflows as f64;
    println!("aisha bench engine");
    println!(
        "  backend {} ({}), workflows {}, concurrency {}, step_ms {}, seeded finished runs {}",
        kind.as_str(),
        aisha_engine::db::redact_url(url),
        args.workflows,
        args.concurrency,
        args.step_ms,
        args.seed_finished
    );
    println!("  wall                {secs:.2} s");
    println!("  workflows/s         {:.0}", n / secs);
    println!("  steps/s             {:.0}", 3.0 * n / secs);
    println!(
        "  step-to-step        p50 {:.2} ms  p99 {:.2} ms  (end of a step to start of the next)",
        pct(&f.gaps_us, 0.5),
        pct(&f.gaps_us, 0.99)
    );
    println!(
        "  start to first step p50 {:.2} ms  p99 {:.2} ms;  last step to run finished p50 {:.2} ms",
        pct(&f.first_us, 0.5),
        pct(&f.first_us, 0.99),
        pct(&f.last_us, 0.5)
    );
    println!(
        "  cpu per workflow    {:.2} ms (aisha process, user+system)",
        f.cpu_ms / n
    );
    println!(
        "  steps per commit    {:.1} per transition commit, {:.1} per claim commit",
        f.per_commit.0, f.per_commit.1
    );
    if let Some(x) = f.per_xact {
        println!(
            "                      {x:.2} per committed transaction of the database (all kinds: fetches, acks, claims, transitions, starts)"
        );
    }
}

/// User + system CPU of this process, from /proc/self/stat (clock ticks of 10 ms).
pub(crate) fn process_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: state is 0, utime is 11, stime is 12.
    (ticks(11) + ticks(12)) * 10.0
}
