//! Looking into the queue and keeping it tidy: depths by status, re-queueing dead tasks,
//! pruning finished rows (apalis never deletes them).

use std::time::Duration;

use serde::Serialize;

use super::QueueBackend;
use crate::error::{EngineError, Result};

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
    /// Task counts of `queue` by status.
    pub async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let mut d = QueueDepth {
            queue: queue.to_string(),
            ..QueueDepth::default()
        };
        let rows: Vec<(String, i64, f64)> = match self {
            QueueBackend::Postgres { pool, .. } => {
                sqlx::query_as(
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
                .await?
            }
            QueueBackend::Sqlite { pool, .. } => {
                sqlx::query_as(
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
                .await?
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
                return Ok(d);
            }
        };
        for (s, n, age) in rows {
            fill(&mut d, &s, n, age);
        }
        Ok(d)
    }

    /// Whether the queue answers (readiness): one round trip, no counting.
    pub async fn ping(&self) -> Result<()> {
        match self {
            QueueBackend::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            QueueBackend::Sqlite { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            QueueBackend::Redis { conn, .. } => {
                redis::cmd("PING")
                    .query_async::<String>(&mut conn.clone())
                    .await
                    .map_err(|e| EngineError::queue("redis", e))?;
            }
        }
        Ok(())
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
