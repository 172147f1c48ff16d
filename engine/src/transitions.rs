//! The transitions shared by workers, the scheduler, the reconciler and operators. Each one
//! is a conditional update on `(id, seq, status)` that bumps `seq`, so it applies at most
//! once; `Ok(false)` means the run had already moved on and nothing was changed.

use crate::error::Result;
use crate::inner::Inner;
use crate::limits;
use crate::on_tx;
use crate::queue::{StepTask, Txn};
use crate::runs::{COMPENSATE, RunRow, RunStatus, dispatch};
use crate::time::now_ms;

/// Where a run goes next, from status `from`.
pub(crate) struct Move<'a> {
    pub step: &'a str,
    pub attempt: i64,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub callback_payload: Option<&'a str>,
    pub delay_ms: i64,
}

/// Pending on `m.step` (next step, retry, or continuation after a wait), task queued.
pub(crate) async fn move_to(
    e: &Inner,
    tx: &mut Txn,
    run: &RunRow,
    from: RunStatus,
    m: Move<'_>,
) -> Result<bool> {
    let now = now_ms();
    let n = on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE workflow_runs SET status = $10, step = $3, attempt = $4, seq = seq + 1, \
            state = COALESCE($5, state), error = $6, callback_payload = $7, lease_id = NULL, \
            lease_until = NULL, wake_at = NULL, deadline_at = NULL, poll_every_ms = NULL, \
            wait_provider = NULL, wait_external_id = NULL, held = NULL, due_at = $8, updated_at = $8 \
         WHERE id = $1 AND seq = $2 AND status = $9",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(m.step)
    .bind(m.attempt)
    .bind(m.state)
    .bind(m.error)
    .bind(m.callback_payload)
    .bind(now)
    .bind(from)
    .bind(RunStatus::Pending)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Ok(false);
    }
    let task = StepTask {
        run_id: run.id.clone(),
        seq: run.seq + 1,
        step: m.step.to_string(),
        attempt: m.attempt,
    };
    dispatch(
        &e.queue,
        tx,
        &e.config.namespace,
        &run.workflow,
        task,
        m.delay_ms,
    )
    .await?;
    Ok(true)
}

/// The run failed for good (or is cancelled): its compensation is queued as the run's next
/// step; the terminal status (`final_status`) is set once compensation has run.
pub(crate) async fn to_compensation(
    e: &Inner,
    tx: &mut Txn,
    run: &RunRow,
    from: RunStatus,
    final_status: RunStatus,
    error: &str,
) -> Result<bool> {
    let now = now_ms();
    let n = on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE workflow_runs SET status = $9, step = $3, failed_step = $4, final_status = $5, \
            error = $6, attempt = 1, seq = seq + 1, lease_id = NULL, lease_until = NULL, wake_at = NULL, \
            deadline_at = NULL, poll_every_ms = NULL, held = NULL, due_at = $7, updated_at = $7 \
         WHERE id = $1 AND seq = $2 AND status = $8",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(COMPENSATE)
    .bind(&run.step)
    .bind(final_status)
    .bind(error)
    .bind(now)
    .bind(from)
    .bind(RunStatus::Pending)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Ok(false);
    }
    limits::release_permit(e, tx, &run.id).await?;
    let task = StepTask {
        run_id: run.id.clone(),
        seq: run.seq + 1,
        step: COMPENSATE.to_string(),
        attempt: 1,
    };
    dispatch(&e.queue, tx, &e.config.namespace, &run.workflow, task, 0).await?;
    Ok(true)
}

/// How a run ends: its terminal status, the step it rests on, its last state and error.
pub(crate) struct Ending<'a> {
    pub status: RunStatus,
    pub step: &'a str,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The run ends, from status `from`.
pub(crate) async fn finish(
    e: &Inner,
    tx: &mut Txn,
    run: &RunRow,
    from: RunStatus,
    end: Ending<'_>,
) -> Result<bool> {
    let Ending {
        status,
        step,
        state,
        error,
    } = end;
    let now = now_ms();
    let n = on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE workflow_runs SET status = $3, step = $4, state = COALESCE($5, state), \
            error = COALESCE($6, error), seq = seq + 1, lease_id = NULL, lease_until = NULL, \
            wake_at = NULL, deadline_at = NULL, poll_every_ms = NULL, held = NULL, \
            callback_payload = NULL, finished_at = $7, updated_at = $7 \
         WHERE id = $1 AND seq = $2 AND status = $8",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(status)
    .bind(step)
    .bind(state)
    .bind(error)
    .bind(now)
    .bind(from)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Ok(false);
    }
    limits::release_permit(e, tx, &run.id).await?;
    if let Some(subject) = &run.subject {
        limits::admit_subject(e, tx, &run.workflow, subject).await?;
    }
    Ok(true)
}

/// A retryable failure: another attempt after backoff, or compensation when none is left.
/// Returns the outcome recorded for the attempt (`retry` or `failed`).
pub(crate) async fn retry_or_fail(
    e: &Inner,
    tx: &mut Txn,
    run: &RunRow,
    from: RunStatus,
    error: &str,
    permanent: bool,
) -> Result<Option<&'static str>> {
    let Some(wf) = e.workflows.get(run.workflow.as_str()) else {
        return Ok(None);
    };
    let policy = wf.policy(&run.step);
    let compensating = run.step == COMPENSATE;
    if !permanent && !policy.exhausted(run.attempt) {
        let delay = crate::time::ms(policy.backoff_for(run.attempt + 1));
        let applied = move_to(
            e,
            tx,
            run,
            from,
            Move {
                step: &run.step,
                attempt: run.attempt + 1,
                state: None,
                error: Some(error),
                callback_payload: run.callback_payload.as_deref(),
                delay_ms: delay,
            },
        )
        .await?;
        return Ok(applied.then_some("retry"));
    }
    let applied = if compensating {
        // Compensation itself gave up: settle the run anyway, with both errors on record.
        let failed_step = run.failed_step.clone().unwrap_or_else(|| run.step.clone());
        let final_status = run.final_status.unwrap_or(RunStatus::Failed);
        let msg = format!(
            "{}; compensation failed: {error}",
            run.error.as_deref().unwrap_or("failed")
        );
        finish(
            e,
            tx,
            run,
            from,
            Ending {
                status: final_status,
                step: &failed_step,
                state: None,
                error: Some(&msg),
            },
        )
        .await?
    } else {
        to_compensation(e, tx, run, from, RunStatus::Failed, error).await?
    };
    Ok(applied.then_some("failed"))
}
