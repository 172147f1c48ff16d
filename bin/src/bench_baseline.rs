//! `aisha bench engine --baseline`: the bare step loop that every figure of the engine is
//! compared with, run on the same database with the same driver (sqlx) just before noop3.
//!
//! It is the pgbench script of `shared/bench/pg/step.sql`: `C` clients each claim the oldest
//! pending job with `SKIP LOCKED` in one transaction, then mark it done and insert the job of
//! the next step (up to step 3) in a second one — two commits per step, nothing else. On
//! SQLite, which has neither `SKIP LOCKED` nor `now()`, the same two transactions take the
//! write lock up front (`BEGIN IMMEDIATE`) and time is unix milliseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_engine::{Db, on_db};
use anyhow::Context;

/// What one run of the bare loop measured.
pub struct Baseline {
    pub steps: u64,
    pub wall: Duration,
}

impl Baseline {
    pub fn steps_per_s(&self) -> f64 {
        self.steps as f64 / self.wall.as_secs_f64()
    }
}

const PG_SCHEMA: &str = "DROP TABLE IF EXISTS bench_jobs; \
    CREATE TABLE bench_jobs(id bigserial primary key, wf bigint not null, step int not null, \
      status text not null, attempts int not null default 0, payload jsonb, result jsonb, \
      run_at timestamptz not null default now(), lock_at timestamptz, done_at timestamptz); \
    CREATE INDEX bench_jobs_pending ON bench_jobs(run_at, id) WHERE status='pending'";

const SQLITE_SCHEMA: &str = "DROP TABLE IF EXISTS bench_jobs; \
    CREATE TABLE bench_jobs(id INTEGER PRIMARY KEY, wf INTEGER NOT NULL, step INTEGER NOT NULL, \
      status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, payload TEXT, result TEXT, \
      run_at INTEGER NOT NULL DEFAULT (unixepoch('subsec') * 1000), lock_at INTEGER, done_at INTEGER); \
    CREATE INDEX bench_jobs_pending ON bench_jobs(run_at, id) WHERE status='pending'";

/// Seeds `workflows` jobs at step 1, runs `concurrency` clients until none is left, and drops
/// the table again (so that noop3 runs on the database as it found it).
pub async fn run(db: &Db, workflows: usize, concurrency: usize) -> anyhow::Result<Baseline> {
    let n = workflows as i64;
    match db {
        Db::Postgres(p) => {
            sqlx::raw_sql(PG_SCHEMA).execute(p).await?;
            sqlx::query(
                "INSERT INTO bench_jobs(wf, step, status, payload) \
                 SELECT g, 1, 'pending', '{\"prompt\":\"portrait of a cat\",\"user\":42}' \
                 FROM generate_series(1, $1) g",
            )
            .bind(n)
            .execute(p)
            .await?;
            sqlx::raw_sql("VACUUM ANALYZE bench_jobs")
                .execute(p)
                .await?;
        }
        Db::Sqlite(p) => {
            sqlx::raw_sql(SQLITE_SCHEMA).execute(p).await?;
            sqlx::query(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < $1) \
                 INSERT INTO bench_jobs(wf, step, status, payload) \
                 SELECT x, 1, 'pending', '{\"prompt\":\"portrait of a cat\",\"user\":42}' FROM g",
            )
            .bind(n)
            .execute(p)
            .await?;
        }
    }
    let db = Arc::new(db.clone());
    let t0 = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(client(db.clone())))
        .collect();
    let mut steps = 0;
    for c in clients {
        steps += c.await.context("a baseline client panicked")??;
    }
    let wall = t0.elapsed();
    on_db!(db.as_ref(), p => sqlx::raw_sql("DROP TABLE bench_jobs").execute(p).await.map(|_| ()))?;
    Ok(Baseline { steps, wall })
}

/// One client of the loop: steps until no pending job is left.
async fn client(db: Arc<Db>) -> anyhow::Result<u64> {
    let mut steps = 0;
    loop {
        let claimed = match db.as_ref() {
            Db::Postgres(p) => step_pg(p).await?,
            Db::Sqlite(p) => step_sqlite(p).await?,
        };
        if !claimed {
            return Ok(steps);
        }
        steps += 1;
    }
}

/// The second transaction of a step, either driver: the job is done, the next step's job is
/// queued (up to step 3), commit.
macro_rules! complete_and_enqueue {
    ($tx:ident, $done:expr, $id:expr, $wf:expr, $step:expr) => {
        sqlx::query($done).bind($id).execute(&mut *$tx).await?;
        sqlx::query(
            "INSERT INTO bench_jobs(wf, step, status, payload) SELECT $1, $2 + 1, 'pending', '{\"x\":1}' WHERE $2 < 3",
        )
        .bind($wf)
        .bind($step)
        .execute(&mut *$tx)
        .await?;
        $tx.commit().await?;
    };
}

async fn step_pg(p: &sqlx::PgPool) -> anyhow::Result<bool> {
    let mut tx = p.begin().await?;
    let job: Option<(i64, i32, i64)> = sqlx::query_as(
        "WITH j AS (SELECT id FROM bench_jobs WHERE status='pending' AND run_at<=now() \
           ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE bench_jobs SET status='running', attempts=attempts+1, lock_at=now() FROM j \
         WHERE bench_jobs.id=j.id RETURNING bench_jobs.id, bench_jobs.step, bench_jobs.wf",
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some((id, step, wf)) = job else {
        return Ok(false);
    };
    let mut tx = p.begin().await?;
    complete_and_enqueue!(
        tx,
        "UPDATE bench_jobs SET status='done', done_at=now(), result='{\"ok\":true}' WHERE id=$1",
        id,
        wf,
        step
    );
    Ok(true)
}

async fn step_sqlite(p: &sqlx::SqlitePool) -> anyhow::Result<bool> {
    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
    let job: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE bench_jobs SET status='running', attempts=attempts+1, lock_at=unixepoch('subsec') * 1000 \
         WHERE id = (SELECT id FROM bench_jobs WHERE status='pending' AND run_at <= unixepoch('subsec') * 1000 \
           ORDER BY run_at, id LIMIT 1) RETURNING id, step, wf",
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some((id, step, wf)) = job else {
        return Ok(false);
    };
    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
    complete_and_enqueue!(
        tx,
        "UPDATE bench_jobs SET status='done', done_at=unixepoch('subsec') * 1000, result='{\"ok\":true}' WHERE id=$1",
        id,
        wf,
        step
    );
    Ok(true)
}
