//! The run row and the transitions that move it. Every transition is one conditional update
//! guarded by the run's dispatch generation (`seq`), so a stale or duplicated task, a worker
//! that lost its lease, or a concurrent operator action can never apply twice.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Result;
use crate::on_tx;
use crate::queue::{QueueBackend, StepTask, Txn};
use crate::time::now_ms;

/// The step name a run takes while its compensation runs.
pub const COMPENSATE: &str = "$compensate";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "one of pending, running, waiting, succeeded, failed, cancelled (got `{s}`)"
                )
            })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub status: String,
    pub step: String,
    pub attempt: i64,
    pub seq: i64,
    pub state: String,
    pub subject: Option<String>,
    pub idempotency_key: Option<String>,
    pub parent_run_id: Option<String>,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub final_status: Option<String>,
    pub callback_payload: Option<String>,
    pub wait_provider: Option<String>,
    pub wait_external_id: Option<String>,
    pub wake_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub poll_every_ms: Option<i64>,
    pub lease_id: Option<String>,
    pub lease_until: Option<i64>,
    pub due_at: Option<i64>,
    pub held: Option<String>,
    pub permit: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl RunRow {
    pub fn status(&self) -> RunStatus {
        self.status.parse().unwrap_or(RunStatus::Failed)
    }
}

/// Why a run is pending without a task in the queue.
pub mod held {
    /// Waiting for its retry backoff to pass (the scheduler dispatches it).
    pub const DELAY: &str = "delay";
    /// Over its subject's concurrency limit (admitted when a sibling run ends).
    pub const SUBJECT: &str = "subject";
    /// Waiting for a provider permit (`provider:<name>`).
    pub const PROVIDER_PREFIX: &str = "provider:";
}

pub(crate) fn queue_name(namespace: &str, workflow: &str) -> String {
    format!("{namespace}.{workflow}")
}

pub(crate) async fn fetch_run(tx: &mut Txn, id: &str) -> Result<Option<RunRow>> {
    Ok(
        on_tx!(tx.conn(), c => sqlx::query_as::<_, RunRow>("SELECT * FROM workflow_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?,
    )
}

/// Records the end of the run's current attempt in the step timeline (first write wins).
pub(crate) async fn record_attempt(
    tx: &mut Txn,
    run: &RunRow,
    worker: &str,
    started_at: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    on_tx!(tx.conn(), c => sqlx::query(
        "INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (run_id, seq) DO NOTHING",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(&run.step)
    .bind(run.attempt)
    .bind(worker)
    .bind(started_at)
    .bind(now_ms())
    .bind(outcome)
    .bind(error)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves a run (that the caller has already moved to `seq`) to pending on `step` and queues
/// its task, or — with a delay — leaves it held for the scheduler.
pub(crate) async fn dispatch(
    queue: &QueueBackend,
    tx: &mut Txn,
    namespace: &str,
    workflow: &str,
    task: StepTask,
    delay_ms: i64,
) -> Result<()> {
    if delay_ms > 0 {
        let due = now_ms() + delay_ms;
        on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE workflow_runs SET held = $2, due_at = $3 WHERE id = $1",
        )
        .bind(&task.run_id)
        .bind(held::DELAY)
        .bind(due)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        return Ok(());
    }
    queue
        .stage(tx, &queue_name(namespace, workflow), task)
        .await
}

/// A pending run that should have a task in the queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Dispatchable {
    pub workflow: String,
    pub id: String,
    pub seq: i64,
    pub step: String,
    pub attempt: i64,
}

/// Queues a task for each run that is still pending at its `seq` and held for `held` (`None`:
/// not held), clearing the hold. Returns how many were queued.
pub(crate) async fn release(
    queue: &QueueBackend,
    namespace: &str,
    tx: &mut Txn,
    runs: Vec<Dispatchable>,
    held: Option<&str>,
) -> Result<u64> {
    let mut n = 0;
    for r in runs {
        let changed = on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE workflow_runs SET held = NULL, due_at = $3, updated_at = $3 \
             WHERE id = $1 AND seq = $2 AND status = 'pending' AND held IS NOT DISTINCT FROM $4",
        )
        .bind(&r.id)
        .bind(r.seq)
        .bind(now_ms())
        .bind(held)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if changed == 1 {
            let name = queue_name(namespace, &r.workflow);
            let task = StepTask {
                run_id: r.id,
                seq: r.seq,
                step: r.step,
                attempt: r.attempt,
            };
            queue.stage(tx, &name, task).await?;
            n += 1;
        }
    }
    Ok(n)
}
