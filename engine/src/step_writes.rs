//! The two writes every step makes — its claim and, when it succeeded, its transition — as
//! group commits (see [`crate::group_commit`]): the claims and the transitions that are ready
//! at the same moment are each applied in one transaction.
//!
//! Every row keeps its own guard: a claim applies only to a run still `pending` at the task's
//! `seq`, a transition only to a run still `running` at the claimed `seq`; a row that fails
//! its guard fails alone and the others commit. On Postgres a batch is one statement over
//! arrays (`unnest`); on SQLite it is one `BEGIN IMMEDIATE` transaction on the process's one
//! writer connection, a statement per row (in-process statements are cheap; the commit is
//! what costs).

use std::collections::HashSet;

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::group_commit::Apply;
use crate::queue::{QueueBackend, Released, StepTask};
use crate::runs::{RunRow, queue_name};
use crate::time::now_ms;

/// A claim: run `run_id` at `seq` goes from pending to running, leased until `lease_until`.
pub(crate) struct Claim {
    pub run_id: String,
    pub seq: i64,
    pub lease_until: i64,
    pub at: i64,
}

/// Applies claims; each item gets the claimed run, or None when the task was stale.
pub(crate) struct ClaimWriter {
    /// The relaxed pool on Postgres (a lost claim only re-runs a step), the writer on SQLite.
    pub db: Db,
    pub instance: String,
}

impl Apply for ClaimWriter {
    type Item = Claim;
    type Out = Option<RunRow>;

    async fn apply(&self, batch: &[Claim]) -> Result<Vec<Option<RunRow>>> {
        match &self.db {
            Db::Postgres(pool) => {
                let rows: Vec<RunRow> = sqlx::query_as(
                    "UPDATE workflow_runs w SET status = 'running', lease_id = $1, \
                        lease_until = u.lease_until, updated_at = u.at \
                     FROM unnest($2::TEXT[], $3::INT8[], $4::INT8[], $5::INT8[]) AS u(id, seq, lease_until, at) \
                     WHERE w.id = u.id AND w.seq = u.seq AND w.status = 'pending' AND w.held IS NULL \
                     RETURNING w.*",
                )
                .bind(&self.instance)
                .bind(batch.iter().map(|c| c.run_id.clone()).collect::<Vec<_>>())
                .bind(batch.iter().map(|c| c.seq).collect::<Vec<_>>())
                .bind(batch.iter().map(|c| c.lease_until).collect::<Vec<_>>())
                .bind(batch.iter().map(|c| c.at).collect::<Vec<_>>())
                .fetch_all(pool)
                .await?;
                Ok(match_claims(batch, rows))
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let mut out = Vec::with_capacity(batch.len());
                for c in batch {
                    out.push(
                        sqlx::query_as(
                            "UPDATE workflow_runs SET status = 'running', lease_id = $3, \
                                lease_until = $4, updated_at = $5 \
                             WHERE id = $1 AND seq = $2 AND status = 'pending' AND held IS NULL \
                             RETURNING *",
                        )
                        .bind(&c.run_id)
                        .bind(c.seq)
                        .bind(&self.instance)
                        .bind(c.lease_until)
                        .bind(c.at)
                        .fetch_optional(&mut *tx)
                        .await?,
                    );
                }
                tx.commit().await?;
                Ok(out)
            }
        }
    }
}

/// Gives each claimed row to one claim of its run at its seq: two tasks for the same step (a
/// re-queued task next to the original) may sit in one batch, and only one of them may run.
fn match_claims(batch: &[Claim], rows: Vec<RunRow>) -> Vec<Option<RunRow>> {
    let mut rows: Vec<Option<RunRow>> = rows.into_iter().map(Some).collect();
    batch
        .iter()
        .map(|c| {
            rows.iter_mut()
                .find(|r| {
                    r.as_ref()
                        .is_some_and(|r| r.id == c.run_id && r.seq == c.seq)
                })
                .and_then(Option::take)
        })
        .collect()
}

/// The Postgres batch of step transitions, one statement: `u` the batch's rows, `r` the runs
/// whose guard held, `a` their timeline rows, then (`$jobs`) their next tasks.
macro_rules! pg_step_ok {
    ($jobs:expr) => {
        concat!(
            "WITH u AS ( \
                SELECT * FROM unnest($1::TEXT[], $2::INT8[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
                    $6::INT8[], $7::INT8[], $8::TEXT[], $9::TEXT[], $10::BYTEA[]) \
                    AS u(id, seq, next, state, step, attempt, started, job_id, queue, job)), \
             r AS ( \
                UPDATE workflow_runs w SET status = CASE WHEN u.next IS NULL THEN 'succeeded' ELSE 'pending' END, \
                    step = COALESCE(u.next, w.step), attempt = 1, seq = w.seq + 1, state = u.state, \
                    error = NULL, callback_payload = NULL, lease_id = NULL, lease_until = NULL, \
                    held = NULL, due_at = $11, updated_at = $11, \
                    finished_at = CASE WHEN u.next IS NULL THEN $11 END \
                FROM u WHERE w.id = u.id AND w.seq = u.seq AND w.status = 'running' AND w.permit IS NULL \
                RETURNING w.id), \
             a AS ( \
                INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome) \
                SELECT u.id, u.seq, u.step, u.attempt, $12, u.started, $11, 'ok' FROM u JOIN r ON r.id = u.id \
                ON CONFLICT (run_id, seq) DO NOTHING)",
            $jobs,
            " SELECT id FROM r"
        )
    };
}

/// With the next tasks inserted into apalis-postgres's table (the Postgres queue).
const PG_STEP_OK_WITH_JOBS: &str = pg_step_ok!(
    ", j AS ( \
        INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
        SELECT u.job_id, u.queue, u.job, 'Pending', 0, 1, now(), 0 FROM u JOIN r ON r.id = u.id \
        WHERE u.job IS NOT NULL)"
);

/// Without (the Redis queue: its tasks are pushed after the commit).
const PG_STEP_OK: &str = pg_step_ok!("");

/// A step succeeded: the run goes on to `next` (or ends, when None) with `state`. Only for
/// runs that hold no permit and whose workflow has no subject limit (those transitions have
/// more to do and take the general path).
pub(crate) struct StepOk {
    pub run_id: String,
    /// The seq the step was claimed at.
    pub seq: i64,
    pub workflow: String,
    pub step: String,
    pub attempt: i64,
    pub next: Option<String>,
    pub state: String,
    pub started: i64,
}

/// Applies step transitions: the conditional run update, the step_attempts row and (Postgres
/// and SQLite queues) the next task, all in one transaction; Redis tasks are pushed after it
/// commits. Each item learns whether its run was still where the step left it.
pub(crate) struct StepOkWriter {
    /// The state pool on Postgres, the writer connection on SQLite.
    pub db: Db,
    pub queue: QueueBackend,
    pub namespace: String,
    pub instance: String,
}

impl Apply for StepOkWriter {
    type Item = StepOk;
    type Out = bool;

    async fn apply(&self, batch: &[StepOk]) -> Result<Vec<bool>> {
        let tasks: Vec<Option<Released>> = batch
            .iter()
            .map(|s| {
                s.next.as_ref().map(|next| Released {
                    queue: queue_name(&self.namespace, &s.workflow),
                    job_id: ulid::Ulid::generate().to_string(),
                    task: StepTask {
                        run_id: s.run_id.clone(),
                        seq: s.seq + 1,
                        step: next.clone(),
                        attempt: 1,
                    },
                })
            })
            .collect();
        let applied = match &self.db {
            Db::Postgres(pool) => {
                let ids: HashSet<&str> = batch.iter().map(|s| s.run_id.as_str()).collect();
                if ids.len() == batch.len() {
                    self.postgres(pool, batch, &tasks).await?
                } else {
                    // The same run twice (a stale duplicate): one statement would join both
                    // rows to the one update. Rare; apply them one after the other.
                    let mut v = Vec::with_capacity(batch.len());
                    for (s, t) in batch.iter().zip(&tasks) {
                        v.extend(
                            self.postgres(pool, std::slice::from_ref(s), std::slice::from_ref(t))
                                .await?,
                        );
                    }
                    v
                }
            }
            Db::Sqlite(pool) => self.sqlite(pool, batch, &tasks).await?,
        };
        let released: Vec<Released> = tasks
            .into_iter()
            .zip(&applied)
            .filter_map(|(t, ok)| t.filter(|_| *ok))
            .collect();
        self.queue.committed(&released).await;
        Ok(applied)
    }
}

impl StepOkWriter {
    async fn postgres(
        &self,
        pool: &sqlx::PgPool,
        batch: &[StepOk],
        tasks: &[Option<Released>],
    ) -> Result<Vec<bool>> {
        let jobs = tasks
            .iter()
            .map(|t| t.as_ref().map(|t| serde_json::to_vec(&t.task)).transpose())
            .collect::<Result<Vec<Option<Vec<u8>>>, _>>()
            .map_err(|e| EngineError::queue("codec", e))?;
        let sql = if self.queue.tasks_in_db() {
            PG_STEP_OK_WITH_JOBS
        } else {
            PG_STEP_OK
        };
        let ids: Vec<String> = sqlx::query_scalar(sql)
            .bind(batch.iter().map(|s| s.run_id.clone()).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.seq).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.next.clone()).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.state.clone()).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.step.clone()).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.attempt).collect::<Vec<_>>())
            .bind(batch.iter().map(|s| s.started).collect::<Vec<_>>())
            .bind(
                tasks
                    .iter()
                    .map(|t| t.as_ref().map(|t| t.job_id.clone()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                tasks
                    .iter()
                    .map(|t| t.as_ref().map(|t| t.queue.clone()))
                    .collect::<Vec<_>>(),
            )
            .bind(jobs)
            .bind(now_ms())
            .bind(&self.instance)
            .fetch_all(pool)
            .await?;
        let ids: HashSet<String> = ids.into_iter().collect();
        Ok(batch.iter().map(|s| ids.contains(&s.run_id)).collect())
    }

    async fn sqlite(
        &self,
        pool: &sqlx::SqlitePool,
        batch: &[StepOk],
        tasks: &[Option<Released>],
    ) -> Result<Vec<bool>> {
        let now = now_ms();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut out = Vec::with_capacity(batch.len());
        for (s, t) in batch.iter().zip(tasks) {
            let n = sqlx::query(
                "UPDATE workflow_runs SET status = CASE WHEN $3 IS NULL THEN 'succeeded' ELSE 'pending' END, \
                    step = COALESCE($3, step), attempt = 1, seq = seq + 1, state = $4, error = NULL, \
                    callback_payload = NULL, lease_id = NULL, lease_until = NULL, held = NULL, due_at = $5, \
                    updated_at = $5, finished_at = CASE WHEN $3 IS NULL THEN $5 END \
                 WHERE id = $1 AND seq = $2 AND status = 'running' AND permit IS NULL",
            )
            .bind(&s.run_id)
            .bind(s.seq)
            .bind(&s.next)
            .bind(&s.state)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            out.push(n == 1);
            if n != 1 {
                continue;
            }
            sqlx::query(
                "INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'ok') ON CONFLICT (run_id, seq) DO NOTHING",
            )
            .bind(&s.run_id)
            .bind(s.seq)
            .bind(&s.step)
            .bind(s.attempt)
            .bind(&self.instance)
            .bind(s.started)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let (Some(t), true) = (t, self.queue.tasks_in_db()) {
                crate::queue::insert_sqlite_job(&mut tx, t).await?;
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}
