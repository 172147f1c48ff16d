//! Starting runs as a group commit (see [`crate::group_commit`]): the new runs and their first
//! tasks that are ready at the same moment are inserted in one transaction.
//!
//! Only plain starts take this path — no idempotency key (its lookup and its race with a
//! concurrent start under the same key need their own transaction) and no subject limit to
//! check; the others keep `Engine::start`'s general path. A start is answered only after its
//! batch committed, so a run id handed back always exists.

use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::group_commit::Apply;
use crate::queue::{QueueBackend, Released, StepTask};
use crate::runs::queue_name;
use crate::time::now_ms;

/// A new run of `workflow`, pending on its first step `step` with its input as `state`.
pub(crate) struct NewRun {
    pub id: String,
    pub workflow: String,
    pub step: String,
    pub state: String,
    pub subject: Option<String>,
    pub parent_run_id: Option<String>,
}

/// Inserts runs and (Postgres and SQLite queues) their first tasks; Redis tasks are pushed
/// after the commit.
pub(crate) struct StartWriter {
    /// The state pool on Postgres, the writer connection on SQLite.
    pub db: Db,
    pub queue: QueueBackend,
    pub namespace: String,
}

/// `u` the batch's rows, `r` the inserted runs, then (`$jobs`) their first tasks.
macro_rules! pg_start {
    ($jobs:expr) => {
        concat!(
            "WITH u AS ( \
                SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
                    $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BYTEA[]) \
                    AS u(id, workflow, step, state, subject, parent, job_id, queue, job)), \
             r AS ( \
                INSERT INTO workflow_runs (id, workflow, status, step, attempt, seq, state, subject, \
                    parent_run_id, due_at, created_at, updated_at) \
                SELECT id, workflow, 'pending', step, 1, 1, state, subject, parent, $10, $10, $10 FROM u \
                RETURNING id)",
            $jobs,
            " SELECT id FROM r"
        )
    };
}

const PG_START_WITH_JOBS: &str = pg_start!(
    ", j AS ( \
        INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
        SELECT u.job_id, u.queue, u.job, 'Pending', 0, 1, now(), 0 FROM u JOIN r ON r.id = u.id)"
);

const PG_START: &str = pg_start!("");

impl Apply for StartWriter {
    type Item = NewRun;
    type Out = ();

    async fn apply(&self, batch: &[NewRun]) -> Result<Vec<()>> {
        let tasks: Vec<Released> = batch
            .iter()
            .map(|r| Released {
                queue: queue_name(&self.namespace, &r.workflow),
                job_id: ulid::Ulid::generate().to_string(),
                task: StepTask {
                    run_id: r.id.clone(),
                    seq: 1,
                    step: r.step.clone(),
                    attempt: 1,
                },
            })
            .collect();
        let jobs_in_db = self.queue.tasks_in_db();
        let now = now_ms();
        match &self.db {
            Db::Postgres(pool) => {
                let jobs = tasks
                    .iter()
                    .map(|t| serde_json::to_vec(&t.task))
                    .collect::<Result<Vec<Vec<u8>>, _>>()
                    .map_err(|e| EngineError::queue("codec", e))?;
                let ids: Vec<String> = sqlx::query_scalar(if jobs_in_db {
                    PG_START_WITH_JOBS
                } else {
                    PG_START
                })
                .bind(batch.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
                .bind(batch.iter().map(|r| r.workflow.clone()).collect::<Vec<_>>())
                .bind(batch.iter().map(|r| r.step.clone()).collect::<Vec<_>>())
                .bind(batch.iter().map(|r| r.state.clone()).collect::<Vec<_>>())
                .bind(batch.iter().map(|r| r.subject.clone()).collect::<Vec<_>>())
                .bind(
                    batch
                        .iter()
                        .map(|r| r.parent_run_id.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(tasks.iter().map(|t| t.job_id.clone()).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| t.queue.clone()).collect::<Vec<_>>())
                .bind(jobs)
                .bind(now)
                .fetch_all(pool)
                .await?;
                if ids.len() != batch.len() {
                    return Err(EngineError::GroupCommit(format!(
                        "{} of {} runs inserted",
                        ids.len(),
                        batch.len()
                    )));
                }
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                for (r, t) in batch.iter().zip(&tasks) {
                    sqlx::query(
                        "INSERT INTO workflow_runs (id, workflow, status, step, attempt, seq, state, \
                            subject, parent_run_id, due_at, created_at, updated_at) \
                         VALUES ($1, $2, 'pending', $3, 1, 1, $4, $5, $6, $7, $7, $7)",
                    )
                    .bind(&r.id)
                    .bind(&r.workflow)
                    .bind(&r.step)
                    .bind(&r.state)
                    .bind(&r.subject)
                    .bind(&r.parent_run_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if jobs_in_db {
                        crate::queue::insert_sqlite_job(&mut tx, t).await?;
                    }
                }
                tx.commit().await?;
            }
        }
        self.queue.committed(&tasks).await;
        Ok(vec![(); batch.len()])
    }
}
