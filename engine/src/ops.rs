//! Operations for operators, shared by the CLI and the admin HTTP API: list and show runs,
//! retry a failed run from its failed step, cancel a run, queue depths, re-queue dead tasks.

use serde::Serialize;
use serde_json::Value;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::queue::QueueDepth;
use crate::runs::{COMPENSATE, Held, RunRow, RunStatus, queue_name};
use crate::time::rfc3339;
use crate::transitions::{Move, move_to, to_compensation};
use crate::{on_db, on_tx};

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub subject: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    pub status: RunStatus,
    pub step: String,
    /// Attempt number of the current step.
    pub attempts: i64,
    pub subject: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    pub seq: i64,
    pub step: String,
    pub attempt: i64,
    pub worker: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    pub step: String,
    pub attempt: i64,
    pub outcome: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub worker: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WaitInfo {
    pub provider: String,
    pub external_id: String,
    pub deadline_at: Option<String>,
    pub next_poll_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    pub state: Value,
    pub idempotency_key: Option<String>,
    pub parent_run_id: Option<String>,
    pub failed_step: Option<String>,
    pub held: Option<Held>,
    pub waiting_on: Option<WaitInfo>,
    /// What the workflow's progress hook last reported while the run was parked (its own
    /// JSON shape), and when; kept after the wait ends.
    pub progress: Option<Value>,
    pub progress_at: Option<String>,
    pub finished_at: Option<String>,
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunCount {
    pub workflow: String,
    pub status: RunStatus,
    pub count: i64,
}

fn summary(r: &RunRow) -> RunSummary {
    RunSummary {
        id: r.id.clone(),
        workflow: r.workflow.clone(),
        status: r.status,
        step: r.step.clone(),
        attempts: r.attempt,
        subject: r.subject.clone(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        error: r.error.clone(),
    }
}

impl Engine {
    pub async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunSummary>> {
        let limit = f.limit.unwrap_or(100).clamp(1, 10_000);
        let rows: Vec<RunRow> = on_db!(&self.inner.db, p => sqlx::query_as(
            "SELECT * FROM workflow_runs WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR workflow = $2) \
             AND ($3 IS NULL OR subject = $3) ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(f.status)
        .bind(f.workflow.as_deref())
        .bind(f.subject.as_deref())
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.iter().map(summary).collect())
    }

    async fn get_run(&self, id: &str) -> Result<RunRow> {
        let row: Option<RunRow> = on_db!(&self.inner.db, p => sqlx::query_as("SELECT * FROM workflow_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.ok_or_else(|| EngineError::UnknownRun(id.to_string()))
    }

    pub async fn show_run(&self, id: &str) -> Result<RunDetail> {
        let r = self.get_run(id).await?;
        let attempts: Vec<AttemptRow> = on_db!(&self.inner.db, p => sqlx::query_as(
            "SELECT seq, step, attempt, worker, started_at, finished_at, outcome, error FROM step_attempts \
             WHERE run_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(p)
        .await)?;
        let mut timeline: Vec<TimelineEntry> = attempts
            .into_iter()
            .map(|a| TimelineEntry {
                step: a.step,
                attempt: a.attempt,
                outcome: a.outcome.unwrap_or_else(|| "running".into()),
                started_at: rfc3339(a.started_at),
                finished_at: a.finished_at.map(rfc3339),
                duration_ms: a.finished_at.map(|f| f - a.started_at),
                worker: a.worker,
                error: a.error,
            })
            .collect();
        if r.status == RunStatus::Running {
            timeline.push(TimelineEntry {
                step: r.step.clone(),
                attempt: r.attempt,
                outcome: "running".into(),
                started_at: rfc3339(r.updated_at),
                finished_at: None,
                duration_ms: None,
                worker: r.lease_id.clone(),
                error: None,
            });
        }
        let waiting_on = (r.status == RunStatus::Waiting).then(|| WaitInfo {
            provider: r.wait_provider.clone().unwrap_or_default(),
            external_id: r.wait_external_id.clone().unwrap_or_default(),
            deadline_at: r.deadline_at.map(rfc3339),
            next_poll_at: r.wake_at.map(rfc3339),
        });
        Ok(RunDetail {
            run: summary(&r),
            state: serde_json::from_str(&r.state).unwrap_or(Value::Null),
            idempotency_key: r.idempotency_key.clone(),
            parent_run_id: r.parent_run_id.clone(),
            failed_step: r.failed_step.clone(),
            held: r.held.clone(),
            waiting_on,
            progress: r
                .progress
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            progress_at: r.progress_at.map(rfc3339),
            finished_at: r.finished_at.map(rfc3339),
            timeline,
        })
    }

    /// Runs a failed run again from the step that failed, with the state it had there.
    pub async fn retry_run(&self, id: &str) -> Result<RunSummary> {
        let e = &self.inner;
        let r = self.get_run(id).await?;
        if r.status != RunStatus::Failed {
            return Err(EngineError::WrongStatus {
                run: id.into(),
                status: r.status.to_string(),
                action: "retry",
                expected: RunStatus::Failed.as_str(),
            });
        }
        let step = r.failed_step.clone().unwrap_or_else(|| r.step.clone());
        let mut tx = e.queue.begin(&e.db).await?;
        let moved = move_to(
            e,
            &mut tx,
            &r,
            RunStatus::Failed,
            Move {
                step: &step,
                attempt: 1,
                state: None,
                error: None,
                callback_payload: r.callback_payload.as_deref(),
                delay_ms: 0,
            },
        )
        .await?;
        if moved {
            on_tx!(tx.conn(), c => sqlx::query(
                "UPDATE workflow_runs SET final_status = NULL, failed_step = NULL, finished_at = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            e.queue.commit(tx).await?;
        }
        tracing::info!(run_id = id, %step, "operator retried the run");
        Ok(summary(&self.get_run(id).await?))
    }

    /// Cancels a run that has not ended; its compensation runs, then it is `cancelled`.
    pub async fn cancel_run(&self, id: &str) -> Result<RunSummary> {
        let e = &self.inner;
        for _ in 0..5 {
            let r = self.get_run(id).await?;
            if r.status.is_terminal() || r.step == COMPENSATE {
                return Err(EngineError::WrongStatus {
                    run: id.into(),
                    status: r.status.to_string(),
                    action: "cancel",
                    expected: "pending, running or waiting",
                });
            }
            let mut tx = e.queue.begin(&e.db).await?;
            if to_compensation(
                e,
                &mut tx,
                &r,
                r.status,
                RunStatus::Cancelled,
                "cancelled by operator",
            )
            .await?
            {
                e.queue.commit(tx).await?;
                tracing::info!(run_id = id, "operator cancelled the run");
                return Ok(summary(&self.get_run(id).await?));
            }
        }
        Err(EngineError::WrongStatus {
            run: id.into(),
            status: "moving".into(),
            action: "cancel",
            expected: "a run that stays still long enough",
        })
    }

    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        let mut out = Vec::new();
        for q in self.queue_names() {
            out.push(self.inner.queue.depth(&q).await?);
        }
        Ok(out)
    }

    /// Re-queues dead tasks of `queue` (a full name or a workflow name).
    pub async fn requeue_dead(&self, queue: &str) -> Result<u64> {
        let q = if self.inner.workflows.contains_key(queue) {
            queue_name(&self.inner.config.namespace, queue)
        } else {
            queue.to_string()
        };
        if !self.queue_names().contains(&q) {
            return Err(EngineError::Config(format!(
                "unknown queue `{queue}`; queues: {}",
                self.queue_names().join(", ")
            )));
        }
        self.inner.queue.requeue_dead(&q).await
    }

    pub async fn run_counts(&self) -> Result<Vec<RunCount>> {
        let rows: Vec<(String, RunStatus, i64)> = on_db!(&self.inner.db, p => sqlx::query_as(
            "SELECT workflow, status, count(*) FROM workflow_runs GROUP BY workflow, status",
        )
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(workflow, status, count)| RunCount {
                workflow,
                status,
                count,
            })
            .collect())
    }

    /// Parked runs per provider.
    pub async fn callbacks_waiting(&self) -> Result<Vec<(String, i64)>> {
        Ok(on_db!(&self.inner.db, p => sqlx::query_as(
            "SELECT wait_provider, count(*) FROM workflow_runs WHERE status = 'waiting' \
             AND wait_provider IS NOT NULL GROUP BY wait_provider",
        )
        .fetch_all(p)
        .await)?)
    }
}
