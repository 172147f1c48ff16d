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

use crate::db::{Db, DbTx, Pools};
use crate::error::{EngineError, Result};

mod inspect;
pub(crate) mod listener;
mod lost;
pub use inspect::QueueDepth;
pub use lost::LostTasks;

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

/// An immediate task in apalis-sqlite's table (`$1` job, `$2` id, `$3` queue).
const SQLITE_INSERT_JOB: &str = "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, metadata) \
     VALUES ($1, $2, $3, 'Pending', 0, 1, strftime('%s','now'), 0, '{}')";

/// Inserts `r` into apalis-sqlite's table on `c`, inside the caller's transaction.
pub(crate) async fn insert_sqlite_job(c: &mut sqlx::SqliteConnection, r: &Released) -> Result<()> {
    let job = serde_json::to_vec(&r.task).map_err(|e| EngineError::queue("codec", e))?;
    sqlx::query(SQLITE_INSERT_JOB)
        .bind(job)
        .bind(&r.job_id)
        .bind(&r.queue)
        .execute(c)
        .await?;
    Ok(())
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
        /// The engine's one writer connection ([`Pools::writer`]).
        writer: SqlitePool,
    },
    Redis {
        conn: ConnectionManager,
        wakers: Wakers,
        /// Step leases (the relaxed pool of the state database).
        leases: Db,
        lost: Arc<LostTasks>,
    },
}

impl QueueBackend {
    /// Opens the queue of kind `kind` next to the state database and installs its tables.
    pub async fn open(
        kind: QueueKind,
        pools: &Pools,
        redis_url: Option<&str>,
    ) -> Result<QueueBackend> {
        let db = &pools.db;
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
                // and acks go through the relaxed pool: losing one in a crash only re-runs or
                // re-fetches a task, which the run's seq guard drops.
                match &pools.relaxed {
                    Db::Postgres(relaxed) => Ok(QueueBackend::Postgres {
                        pool: relaxed.clone(),
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
                let writer = match &pools.writer {
                    Db::Sqlite(w) => w.clone(),
                    Db::Postgres(_) => pool.clone(),
                };
                Ok(QueueBackend::Sqlite {
                    pool: pool.clone(),
                    wakers: Arc::default(),
                    writer,
                })
            }
            (QueueKind::Redis, _) => {
                let url = redis_url.ok_or_else(|| {
                    EngineError::Config("QUEUE_BACKEND=redis needs REDIS_URL".into())
                })?;
                let client =
                    redis::Client::open(url).map_err(|e| EngineError::queue("redis", e))?;
                let conn = ConnectionManager::new_with_config(client, redis_connection())
                    .await
                    .map_err(|e| EngineError::queue("redis", e))?;
                Ok(QueueBackend::Redis {
                    conn,
                    wakers: Arc::default(),
                    leases: pools.relaxed.clone(),
                    lost: Arc::default(),
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

    /// Whether a task is inserted in the same transaction as the run's transition (apalis's
    /// table lives in the state database) or pushed after the commit (Redis).
    pub(crate) fn tasks_in_db(&self) -> bool {
        !matches!(self, QueueBackend::Redis { .. })
    }

    /// Where step leases are written: the relaxed pool (on SQLite, `db`).
    pub(crate) fn lease_db(&self, db: &Db) -> Db {
        match self {
            QueueBackend::Postgres { pool, .. } => Db::Postgres(pool.clone()),
            QueueBackend::Redis { leases, .. } => leases.clone(),
            QueueBackend::Sqlite { .. } => db.clone(),
        }
    }

    /// Where the engine's group commits write: SQLite's one writer connection, else `db`.
    pub(crate) fn writer_db(&self, db: &Db) -> Db {
        match self {
            QueueBackend::Sqlite { writer, .. } => Db::Sqlite(writer.clone()),
            _ => db.clone(),
        }
    }

    /// A write transaction of the engine. On SQLite, which takes one writer at a time, it is
    /// on the process's writer connection: starts, transitions and the group commits wait
    /// their turn in order there instead of sleeping in SQLite's busy handler.
    pub(crate) async fn begin(&self, db: &Db) -> Result<Txn> {
        Ok(Txn {
            db: self.writer_db(db).begin().await?,
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
                let r = Released {
                    queue: queue.to_string(),
                    job_id: id,
                    task,
                };
                insert_sqlite_job(t, &r).await?;
                tx.after_commit.push(r);
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
    ///
    /// Once the commit succeeded the transition has happened, whatever Redis says: a push
    /// that fails (Redis down or restarting) is logged and left to the reconciler, which
    /// `lost` tells to look for the run's task at its next pass instead of waiting
    /// `stale_after`.
    pub(crate) async fn commit(&self, tx: Txn) -> Result<()> {
        tx.db.commit().await?;
        self.committed(&tx.after_commit).await;
        Ok(())
    }

    /// After the commit that created `released`: pushes them to Redis (the other queues
    /// committed them with the transition) and announces them.
    pub(crate) async fn committed(&self, released: &[Released]) {
        if let QueueBackend::Redis { conn, lost, .. } = self
            && !released.is_empty()
        {
            // Redis just failed us: don't make every commit wait for it to fail again.
            if lost.failed_recently() {
                lost.suspect();
                return;
            }
            if let Err(e) = push_redis(conn, released).await {
                if lost.push_failed() {
                    tracing::warn!(error = %e, tasks = released.len(),
                        "committed, but Redis did not take the next tasks; the reconciler queues them again");
                } else {
                    tracing::debug!(error = %e, "Redis still does not take tasks");
                }
                return;
            }
        }
        self.announce(released).await;
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

    /// Where pushes that failed are marked (Redis only: the other queues commit their tasks
    /// with the transition).
    pub(crate) async fn check_lost_tasks(&self) -> Result<Option<&LostTasks>> {
        let QueueBackend::Redis { conn, lost, .. } = self else {
            return Ok(None);
        };
        lost.observe_run_id(redis_run_id(conn).await?);
        Ok(Some(lost))
    }

    pub(crate) fn lost_tasks(&self) -> Option<&LostTasks> {
        match self {
            QueueBackend::Redis { lost, .. } => Some(lost),
            _ => None,
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
}

/// Puts tasks straight on apalis-redis's active list, as its own push script does for an
/// immediate task. Its push never does that: it gives every task a run time of "now" and puts
/// it in the scheduled set, which its fetch then promotes with one Lua `unpack` — the call
/// that fails once a few thousand tasks are due at once.
/// How the one Redis connection of a process behaves when Redis goes away: a command fails
/// within about a second and a half instead of waiting out six reconnects (a run's start
/// would block that long), and the supervisor, not the connection, keeps trying.
fn redis_connection() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(5)))
}

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

/// The `run_id` of the Redis server behind `conn` (new at every server start).
pub(crate) async fn redis_run_id(conn: &ConnectionManager) -> Result<String> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn.clone())
        .await
        .map_err(|e| EngineError::queue("redis", e))?;
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|id| id.trim().to_string())
        .ok_or_else(|| EngineError::queue("redis", "INFO server has no run_id"))
}

pub(crate) fn redis_storage(
    conn: ConnectionManager,
    queue: &str,
) -> apalis_redis::RedisStorage<StepTask, ConnectionManager> {
    apalis_redis::RedisStorage::new(conn).with_config(apalis_redis::Config::default().queue(queue))
}
