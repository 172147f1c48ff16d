//! The queue: apalis backends that carry `StepTask`s ("run R, dispatch S").
//!
//! The queue never holds state of record. On Postgres and SQLite a task is inserted into
//! apalis's own table inside the same transaction as the run transition that calls for it;
//! on Redis it is pushed right after the commit (a crash in between is what the reconciler
//! is for). Only immediate tasks are queued: delays (retry backoff) are kept in the run row
//! and dispatched by the scheduler, which side-steps apalis's whole-second `run_at`, its
//! NOTIFY that ignores future tasks, and apalis-redis's failure with thousands of due
//! scheduled tasks.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, SqlitePool};

use crate::db::{Db, DbTx};
use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Postgres,
    Redis,
    Sqlite,
}

impl FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Ok(QueueKind::Postgres),
            "redis" => Ok(QueueKind::Redis),
            "sqlite" => Ok(QueueKind::Sqlite),
            other => Err(format!("one of postgres, redis, sqlite (got `{other}`)")),
        }
    }
}

impl QueueKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueKind::Postgres => "postgres",
            QueueKind::Redis => "redis",
            QueueKind::Sqlite => "sqlite",
        }
    }
}

/// What travels through the queue. `seq` is the run's dispatch generation: a task whose
/// `seq` is not the run's current one is acknowledged and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTask {
    pub run_id: String,
    pub seq: i64,
    pub step: String,
    pub attempt: i64,
}

/// A database transaction plus the tasks it will release when it commits.
pub struct Txn {
    pub(crate) db: DbTx,
    after_commit: Vec<Released>,
}

/// A task that exists once its transaction commits.
pub(crate) struct Released {
    pub queue: String,
    pub job_id: String,
    pub task: StepTask,
}

impl Txn {
    pub(crate) fn conn(&mut self) -> &mut DbTx {
        &mut self.db
    }
}

pub type Wakers = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>;

#[derive(Clone)]
pub enum QueueBackend {
    Postgres {
        pool: PgPool,
        wakers: Wakers,
    },
    Sqlite {
        pool: SqlitePool,
        wakers: Wakers,
    },
    Redis {
        conn: ConnectionManager,
        wakers: Wakers,
    },
}

/// Count of a queue's tasks by status.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueDepth {
    pub queue: String,
    pub pending: i64,
    pub running: i64,
    pub failed: i64,
    pub dead: i64,
    pub done: i64,
    /// Age of the oldest task waiting to be picked up, in seconds.
    pub oldest_pending_seconds: f64,
}

impl QueueBackend {
    /// Opens the queue of kind `kind` next to `db` and installs its tables.
    pub async fn open(kind: QueueKind, db: &Db, redis_url: Option<&str>) -> Result<QueueBackend> {
        match (kind, db) {
            (QueueKind::Postgres, Db::Postgres(pool)) => {
                apalis_postgres::PostgresStorage::setup(pool)
                    .await
                    .map_err(|e| EngineError::queue("postgres", e))?;
                // A queue table churns: every task is inserted, updated twice and deleted.
                // Vacuum it eagerly so the fetch index does not fill with dead entries.
                sqlx::raw_sql(
                    "ALTER TABLE apalis.jobs SET (autovacuum_vacuum_scale_factor = 0.0, \
                     autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0, \
                     autovacuum_analyze_scale_factor = 0.05, fillfactor = 80)",
                )
                .execute(pool)
                .await?;
                // apalis's insert trigger NOTIFYs inside every enqueuing transaction, and
                // Postgres serialises committing NOTIFY transactions on one lock held across
                // the WAL flush: it capped throughput at ~500 steps/s here. We announce new
                // tasks ourselves instead (see `announce`).
                sqlx::raw_sql("DROP TRIGGER IF EXISTS notify_workers ON apalis.jobs")
                    .execute(pool)
                    .await?;
                // Tasks are inserted by our transactions (durable); apalis's own fetches
                // and acks go through a relaxed pool: losing one in a crash only re-runs or
                // re-fetches a task, which the run's seq guard drops.
                match db.relaxed().await? {
                    Db::Postgres(relaxed) => Ok(QueueBackend::Postgres {
                        pool: relaxed,
                        wakers: Arc::default(),
                    }),
                    Db::Sqlite(_) => Err(EngineError::Config(
                        "queue and database do not match".into(),
                    )),
                }
            }
            (QueueKind::Sqlite, Db::Sqlite(pool)) => {
                // Not `SqliteStorage::setup`: it would switch the connection to synchronous=OFF.
                apalis_sqlite::SqliteStorage::<()>::migrations()
                    .run(pool)
                    .await?;
                Ok(QueueBackend::Sqlite {
                    pool: pool.clone(),
                    wakers: Arc::default(),
                })
            }
            (QueueKind::Redis, _) => {
                let url = redis_url.ok_or_else(|| {
                    EngineError::Config("QUEUE_BACKEND=redis needs REDIS_URL".into())
                })?;
                let client =
                    redis::Client::open(url).map_err(|e| EngineError::queue("redis", e))?;
                let conn = ConnectionManager::new(client)
                    .await
                    .map_err(|e| EngineError::queue("redis", e))?;
                Ok(QueueBackend::Redis {
                    conn,
                    wakers: Arc::default(),
                })
            }
            (kind, db) => Err(EngineError::Config(format!(
                "QUEUE_BACKEND={} needs a {} DATABASE_URL (the queue shares its database), got {}",
                kind.as_str(),
                kind.as_str(),
                db.kind()
            ))),
        }
    }

    pub fn kind(&self) -> QueueKind {
        match self {
            QueueBackend::Postgres { .. } => QueueKind::Postgres,
            QueueBackend::Sqlite { .. } => QueueKind::Sqlite,
            QueueBackend::Redis { .. } => QueueKind::Redis,
        }
    }

    /// Where step leases are written: the queue's relaxed pool on Postgres, else `db`.
    pub(crate) fn lease_db(&self, db: &Db) -> Db {
        match self {
            QueueBackend::Postgres { pool, .. } => Db::Postgres(pool.clone()),
            _ => db.clone(),
        }
    }

    pub(crate) async fn begin(&self, db: &Db) -> Result<Txn> {
        Ok(Txn {
            db: db.begin().await?,
            after_commit: Vec::new(),
        })
    }

    /// Queues `task` on `queue` as part of `tx`.
    pub(crate) async fn stage(&self, tx: &mut Txn, queue: &str, task: StepTask) -> Result<()> {
        let job = serde_json::to_vec(&task).map_err(|e| EngineError::queue("codec", e))?;
        let id = ulid::Ulid::generate().to_string();
        match (self, &mut tx.db) {
            (QueueBackend::Postgres { .. }, DbTx::Postgres(t)) => {
                sqlx::query(
                    "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
                     VALUES ($1, $2, $3, 'Pending', 0, 1, now(), 0)",
                )
                .bind(&id)
                .bind(queue)
                .bind(job)
                .execute(&mut **t)
                .await?;
                tx.after_commit.push(Released {
                    queue: queue.to_string(),
                    job_id: id,
                    task,
                });
            }
            (QueueBackend::Sqlite { .. }, DbTx::Sqlite(t)) => {
                sqlx::query(
                    "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, metadata) \
                     VALUES ($1, $2, $3, 'Pending', 0, 1, strftime('%s','now'), 0, '{}')",
                )
                .bind(job)
                .bind(&id)
                .bind(queue)
                .execute(&mut **t)
                .await?;
                tx.after_commit.push(Released {
                    queue: queue.to_string(),
                    job_id: id,
                    task,
                });
            }
            (QueueBackend::Redis { .. }, _) => tx.after_commit.push(Released {
                queue: queue.to_string(),
                job_id: id,
                task,
            }),
            _ => {
                return Err(EngineError::Config(
                    "queue and database do not match".into(),
                ));
            }
        }
        Ok(())
    }

    /// Commits `tx`, then releases what only exists after the commit (Redis pushes) and
    /// announces the new tasks.
    pub(crate) async fn commit(&self, tx: Txn) -> Result<()> {
        tx.db.commit().await?;
        if let QueueBackend::Redis { conn, .. } = self
            && !tx.after_commit.is_empty()
        {
            push_redis(conn, &tx.after_commit).await?;
        }
        self.announce(&tx.after_commit).await;
        Ok(())
    }

    /// Wakes the workers of the queues that just got tasks: this process's own worker through
    /// its channel; on Postgres, when this process runs no worker for the queue (the bot,
    /// the webhook API, the CLI), the others with one NOTIFY outside any write transaction.
    pub(crate) async fn announce(&self, released: &[Released]) {
        let (QueueBackend::Postgres { wakers, .. }
        | QueueBackend::Sqlite { wakers, .. }
        | QueueBackend::Redis { wakers, .. }) = self;
        let mut remote: Vec<&Released> = Vec::new();
        if let Ok(w) = wakers.lock() {
            for r in released {
                match w.get(&r.queue) {
                    Some(s) => {
                        let _ = s.unbounded_send(());
                    }
                    None => remote.push(r),
                }
            }
        }
        if let QueueBackend::Postgres { pool, .. } = self {
            let mut seen = std::collections::HashSet::new();
            for r in remote.into_iter().filter(|r| seen.insert(r.queue.as_str())) {
                let payload = serde_json::json!({"job_type": r.queue, "id": r.job_id}).to_string();
                if let Err(e) = sqlx::query("SELECT pg_notify('apalis::job::insert', $1)")
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    // Only a wake-up: the workers' interval poll finds the task anyway.
                    tracing::debug!(error = %e, "notify failed");
                }
            }
        }
    }

    /// Registers a wake-up channel for this process's worker of `queue` (SQLite and Redis have
    /// no cross-process notification that apalis listens to; other processes poll).
    pub(crate) fn local_waker(&self, queue: &str) -> Option<mpsc::UnboundedReceiver<()>> {
        match self {
            QueueBackend::Postgres { wakers, .. }
            | QueueBackend::Sqlite { wakers, .. }
            | QueueBackend::Redis { wakers, .. } => {
                let (tx, rx) = mpsc::unbounded();
                wakers.lock().ok()?.insert(queue.to_string(), tx);
                Some(rx)
            }
        }
    }

    /// Task counts of `queue` by status.
    pub async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let mut d = QueueDepth {
            queue: queue.to_string(),
            ..QueueDepth::default()
        };
        match self {
            QueueBackend::Postgres { pool, .. } => {
                let rows: Vec<(String, i64, f64)> = sqlx::query_as(
                    "SELECT CASE WHEN status IN ('Pending','Queued') THEN 'pending' \
                                 WHEN status = 'Running' THEN 'running' \
                                 WHEN status = 'Done' THEN 'done' \
                                 WHEN status = 'Failed' AND attempts < max_attempts THEN 'failed' \
                                 ELSE 'dead' END AS s, \
                            count(*)::BIGINT, \
                            COALESCE(EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE status = 'Pending')), 0)::FLOAT8 \
                     FROM apalis.jobs WHERE job_type = $1 GROUP BY 1",
                )
                .bind(queue)
                .fetch_all(pool)
                .await?;
                for (s, n, age) in rows {
                    fill(&mut d, &s, n, age);
                }
            }
            QueueBackend::Sqlite { pool, .. } => {
                let rows: Vec<(String, i64, f64)> = sqlx::query_as(
                    "SELECT CASE WHEN status IN ('Pending','Queued') THEN 'pending' \
                                 WHEN status = 'Running' THEN 'running' \
                                 WHEN status = 'Done' THEN 'done' \
                                 WHEN status = 'Failed' AND attempts < max_attempts THEN 'failed' \
                                 ELSE 'dead' END AS s, \
                            count(*), \
                            CAST(COALESCE(strftime('%s','now') - min(CASE WHEN status = 'Pending' THEN run_at END), 0) AS REAL) \
                     FROM Jobs WHERE job_type = $1 GROUP BY 1",
                )
                .bind(queue)
                .fetch_all(pool)
                .await?;
                for (s, n, age) in rows {
                    fill(&mut d, &s, n, age);
                }
            }
            QueueBackend::Redis { conn, .. } => {
                let mut c = conn.clone();
                let cfg = apalis_redis::Config::default().queue(queue);
                let (pending, dead, failed, done, workers): (i64, i64, i64, i64, Vec<String>) =
                    redis::pipe()
                        .cmd("LLEN")
                        .arg(cfg.active_jobs_list())
                        .cmd("SCARD")
                        .arg(cfg.dead_jobs_set())
                        // apalis-redis parks failed tasks in the scheduled set until their retry
                        .cmd("ZCARD")
                        .arg(cfg.scheduled_jobs_set())
                        .cmd("SCARD")
                        .arg(cfg.done_jobs_set())
                        .cmd("ZRANGE")
                        .arg(cfg.workers_set())
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                        .map_err(|e| EngineError::queue("redis", e))?;
                let mut running = 0i64;
                for w in workers {
                    let n: i64 = redis::cmd("SCARD")
                        .arg(w)
                        .query_async(&mut c)
                        .await
                        .map_err(|e| EngineError::queue("redis", e))?;
                    running += n;
                }
                d.pending = pending;
                d.running = running;
                d.dead = dead;
                d.failed = failed;
                d.done = done;
            }
        }
        Ok(d)
    }

    /// Puts dead tasks of `queue` (killed, or failed with no attempts left) back to pending.
    pub async fn requeue_dead(&self, queue: &str) -> Result<u64> {
        Ok(match self {
            QueueBackend::Postgres { pool, .. } => sqlx::query(
                "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, \
                        lock_at = NULL, done_at = NULL \
                 WHERE job_type = $1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))",
            )
            .bind(queue)
            .execute(pool)
            .await?
            .rows_affected(),
            QueueBackend::Sqlite { pool, .. } => sqlx::query(
                "UPDATE Jobs SET status = 'Pending', attempts = 0, run_at = strftime('%s','now'), lock_by = NULL, \
                        lock_at = NULL, done_at = NULL \
                 WHERE job_type = $1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))",
            )
            .bind(queue)
            .execute(pool)
            .await?
            .rows_affected(),
            QueueBackend::Redis { conn, .. } => {
                let mut c = conn.clone();
                let cfg = apalis_redis::Config::default().queue(queue);
                let ids: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(cfg.dead_jobs_set())
                    .query_async(&mut c)
                    .await
                    .map_err(|e| EngineError::queue("redis", e))?;
                if ids.is_empty() {
                    0
                } else {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for id in &ids {
                        pipe.cmd("SREM").arg(cfg.dead_jobs_set()).arg(id).ignore();
                        pipe.cmd("HSET")
                            .arg(format!("{}:{}", cfg.job_meta_hash(), id))
                            .arg("status")
                            .arg("Pending")
                            .arg("attempts")
                            .arg(0)
                            .ignore();
                        pipe.cmd("RPUSH").arg(cfg.active_jobs_list()).arg(id).ignore();
                    }
                    pipe.cmd("LPUSH").arg(cfg.signal_list()).arg(1).ignore();
                    pipe.query_async::<()>(&mut c)
                        .await
                        .map_err(|e| EngineError::queue("redis", e))?;
                    ids.len() as u64
                }
            }
        })
    }

    /// Deletes finished queue rows older than `keep` (apalis never does).
    pub async fn prune(&self, queue: &str, keep: Duration) -> Result<u64> {
        let keep_s = keep.as_secs() as i64;
        Ok(match self {
            QueueBackend::Postgres { pool, .. } => sqlx::query(
                "DELETE FROM apalis.jobs WHERE id IN (SELECT id FROM apalis.jobs WHERE job_type = $1 \
                   AND status = 'Done' AND done_at < now() - make_interval(secs => $2) LIMIT 10000)",
            )
            .bind(queue)
            .bind(keep_s as f64)
            .execute(pool)
            .await?
            .rows_affected(),
            QueueBackend::Sqlite { pool, .. } => sqlx::query(
                "DELETE FROM Jobs WHERE ROWID IN (SELECT ROWID FROM Jobs WHERE job_type = $1 \
                   AND status = 'Done' AND done_at < strftime('%s','now') - $2 LIMIT 10000)",
            )
            .bind(queue)
            .bind(keep_s)
            .execute(pool)
            .await?
            .rows_affected(),
            QueueBackend::Redis { conn, .. } => {
                let mut c = conn.clone();
                let cfg = apalis_redis::Config::default().queue(queue);
                let cutoff = crate::time::now_ms() / 1000 - keep_s;
                let (_, members): (u64, Vec<String>) = redis::cmd("SSCAN")
                    .arg(cfg.done_jobs_set())
                    .arg(0)
                    .arg("COUNT")
                    .arg(10_000)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| EngineError::queue("redis", e))?;
                let mut ids = Vec::new();
                for id in members {
                    let done_at: Option<String> = redis::cmd("HGET")
                        .arg(format!("{}:{}", cfg.job_meta_hash(), id))
                        .arg("done_at")
                        .query_async(&mut c)
                        .await
                        .map_err(|e| EngineError::queue("redis", e))?;
                    // apalis-redis stamps done_at in seconds or milliseconds depending on the path
                    let at = done_at.and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
                    let at = if at > 100_000_000_000 { at / 1000 } else { at };
                    if at <= cutoff {
                        ids.push(id);
                    }
                }
                if !ids.is_empty() {
                    let mut pipe = redis::pipe();
                    for id in &ids {
                        pipe.cmd("SREM").arg(cfg.done_jobs_set()).arg(id).ignore();
                        pipe.cmd("HDEL").arg(cfg.job_data_hash()).arg(id).ignore();
                        pipe.cmd("HDEL")
                            .arg(format!("{}:result", cfg.job_meta_hash()))
                            .arg(id)
                            .ignore();
                        pipe.cmd("DEL")
                            .arg(format!("{}:{}", cfg.job_meta_hash(), id))
                            .ignore();
                    }
                    pipe.query_async::<()>(&mut c)
                        .await
                        .map_err(|e| EngineError::queue("redis", e))?;
                }
                ids.len() as u64
            }
        })
    }
}

/// Puts tasks straight on apalis-redis's active list, as its own push script does for an
/// immediate task. Its push never does that: it gives every task a run time of "now" and puts
/// it in the scheduled set, which its fetch then promotes with one Lua `unpack` — the call
/// that fails once a few thousand tasks are due at once.
async fn push_redis(conn: &ConnectionManager, released: &[Released]) -> Result<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for r in released {
        let cfg = apalis_redis::Config::default().queue(&r.queue);
        let job = serde_json::to_vec(&r.task).map_err(|e| EngineError::queue("codec", e))?;
        pipe.cmd("HSETNX")
            .arg(cfg.job_data_hash())
            .arg(&r.job_id)
            .arg(job)
            .ignore();
        pipe.cmd("HSET")
            .arg(format!("{}:{}", cfg.job_meta_hash(), r.job_id))
            .arg("attempts")
            .arg(0)
            .arg("max_attempts")
            .arg(1)
            .arg("status")
            .arg("Pending")
            .arg("idempotency_key")
            .arg("")
            .ignore();
        pipe.cmd("RPUSH")
            .arg(cfg.active_jobs_list())
            .arg(&r.job_id)
            .ignore();
    }
    pipe.query_async::<()>(&mut conn.clone())
        .await
        .map_err(|e| EngineError::queue("redis", e))
}

fn fill(d: &mut QueueDepth, status: &str, n: i64, age: f64) {
    match status {
        "pending" => {
            d.pending = n;
            d.oldest_pending_seconds = age.max(0.0);
        }
        "running" => d.running = n,
        "done" => d.done = n,
        "failed" => d.failed = n,
        _ => d.dead += n,
    }
}

pub(crate) fn redis_storage(
    conn: ConnectionManager,
    queue: &str,
) -> apalis_redis::RedisStorage<StepTask, ConnectionManager> {
    apalis_redis::RedisStorage::new(conn).with_config(apalis_redis::Config::default().queue(queue))
}
