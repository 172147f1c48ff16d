//! Executing a step: claim the run, run the step with its timeout, and apply the outcome as
//! one transition.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::callbacks;
use crate::error::{EngineError, Result};
use crate::inner::Inner;
use crate::on_db;
use crate::on_tx;
use crate::queue::StepTask;
use crate::runs::{COMPENSATE, Held, RunRow, RunStatus, record_attempt};
use crate::step_writes::{Claim, StepOk};
use crate::time::{ms, now_ms};
use crate::transitions::{Ending, Move, finish, move_to, retry_or_fail};
use crate::workflow::{DynWorkflow, ErasedNext, FailureInfo, StepError, StepInfo};

/// Runs the task's step if the run is still where the task says.
pub(crate) async fn execute(e: &Arc<Inner>, workflow: &'static str, task: StepTask) -> Result<()> {
    let wf = e
        .workflows
        .get(workflow)
        .cloned()
        .ok_or_else(|| EngineError::UnknownWorkflow(workflow.to_string()))?;
    let started = now_ms();
    let timeout = wf.policy(&task.step).timeout;
    let lease_until = started + ms(timeout) + ms(e.config.lease_grace);
    let claimed: Option<RunRow> = e
        .claims
        .submit(Claim {
            run_id: task.run_id.clone(),
            seq: task.seq,
            lease_until,
            at: started,
        })
        .await?;
    let Some(run) = claimed else {
        debug!(run_id = %task.run_id, seq = task.seq, step = %task.step, "task is stale, dropped");
        return Ok(());
    };
    let span =
        info_span!("step", run_id = %run.id, workflow, step = %run.step, attempt = run.attempt);
    let guard = LeaseGuard {
        e: e.clone(),
        run_id: run.id.clone(),
        seq: run.seq,
        armed: true,
    };
    let result = async move {
        if run.step == COMPENSATE {
            return compensate(e, wf.as_ref(), run, started, timeout).await;
        }
        if let Some(provider) = wf.permit_for(&run.step).map(str::to_string)
            && run.permit.is_none()
            && !take_permit_or_hold(e, &run, &provider).await?
        {
            return Ok(());
        }
        let outcome = run_step(wf.as_ref(), &run, timeout).await;
        apply(e, wf.as_ref(), &run, outcome, started).await
    }
    .instrument(span)
    .await;
    // An error (the database went away mid-transition) hands the step back too.
    if result.is_ok() {
        guard.disarm();
    }
    result
}

/// Gives a claimed step back when its execution is dropped half-way (the queue worker it ran
/// in stopped: Redis or Postgres failed it) or could not record its outcome: its lease is made to run out now, so the
/// reconciler's next pass retries the step instead of waiting out the step's timeout.
struct LeaseGuard {
    e: Arc<Inner>,
    run_id: String,
    seq: i64,
    armed: bool,
}

impl LeaseGuard {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (e, run_id, seq) = (self.e.clone(), std::mem::take(&mut self.run_id), self.seq);
        rt.spawn(async move {
            let r = on_db!(&e.lease_db, p => sqlx::query(
                "UPDATE workflow_runs SET lease_until = 0 WHERE id = $1 AND seq = $2 \
                 AND status = 'running' AND lease_id = $3",
            )
            .bind(&run_id)
            .bind(seq)
            .bind(&e.instance)
            .execute(p)
            .await.map(|r| r.rows_affected()));
            match r {
                Ok(_) => debug!(%run_id, "interrupted step handed back to the reconciler"),
                Err(err) => debug!(%run_id, error = %err, "interrupted step keeps its lease"),
            }
        });
    }
}

async fn take_permit_or_hold(e: &Arc<Inner>, run: &RunRow, provider: &str) -> Result<bool> {
    let mut tx = e.queue.begin(&e.db).await?;
    if crate::limits::acquire_permit(e, &mut tx, provider, &run.id, run.seq).await? {
        e.queue.commit(tx).await?;
        return Ok(true);
    }
    let reason = Held::Provider(provider.to_string());
    on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE workflow_runs SET status = $5, held = $3, seq = seq + 1, lease_id = NULL, \
            lease_until = NULL, due_at = $4, updated_at = $4 WHERE id = $1 AND seq = $2 AND status = 'running'",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(&reason)
    .bind(now_ms())
    .bind(RunStatus::Pending)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    e.queue.commit(tx).await?;
    debug!(%provider, "no free permit: run held");
    Ok(false)
}

async fn run_step(
    wf: &dyn DynWorkflow,
    run: &RunRow,
    timeout: Duration,
) -> Result<ErasedNext, StepError> {
    let state: Value = serde_json::from_str(&run.state)
        .map_err(|e| StepError::permanent(format!("stored state is not JSON: {e}")))?;
    let callback = match run.callback_payload.as_deref() {
        Some(s) => Some(
            serde_json::from_str(s)
                .map_err(|e| StepError::permanent(format!("stored callback is not JSON: {e}")))?,
        ),
        None => None,
    };
    let info = StepInfo {
        run_id: run.id.clone(),
        step: run.step.clone(),
        attempt: run.attempt,
        subject: run.subject.clone(),
        parent_run_id: run.parent_run_id.clone(),
        callback,
    };
    let fut = AssertUnwindSafe(wf.run_step(state, info)).catch_unwind();
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(StepError::Retryable(format!(
            "step timed out after {timeout:?}"
        ))),
        Ok(Err(panic)) => Err(StepError::Retryable(format!(
            "step panicked: {}",
            panic_message(&panic)
        ))),
        Ok(Ok(r)) => r,
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

async fn apply(
    e: &Arc<Inner>,
    wf: &dyn DynWorkflow,
    run: &RunRow,
    outcome: Result<ErasedNext, StepError>,
    started: i64,
) -> Result<()> {
    let fast = match &outcome {
        Ok(ErasedNext::Goto { step, state }) if wf.has_step(step) => {
            step_ok(e, wf, run, Some(step), state.to_string(), started).await?
        }
        Ok(ErasedNext::Done { state }) => {
            step_ok(e, wf, run, None, state.to_string(), started).await?
        }
        _ => None,
    };
    if let Some(applied) = fast {
        if applied {
            after_commit(
                e,
                run,
                "ok",
                None,
                started,
                matches!(outcome, Ok(ErasedNext::Done { .. })),
            );
        } else {
            debug!("run moved on while the step ran; outcome discarded");
        }
        return Ok(());
    }
    let mut outcome = outcome;
    // One retry of the whole transition covers a wait whose key turns out to be taken.
    for _ in 0..2 {
        let mut tx = e.queue.begin(&e.db).await?;
        let (applied, label, error): (bool, &str, Option<String>) = match &outcome {
            Ok(ErasedNext::Goto { step, state }) if wf.has_step(step) => {
                let state = state.to_string();
                let m = Move {
                    step,
                    attempt: 1,
                    state: Some(&state),
                    error: None,
                    callback_payload: None,
                    delay_ms: 0,
                };
                (
                    move_to(e, &mut tx, run, RunStatus::Running, m).await?,
                    "ok",
                    None,
                )
            }
            Ok(ErasedNext::Goto { step, .. }) => {
                let msg = format!("step `{}` went to unknown step `{step}`", run.step);
                fail_label(e, &mut tx, run, &msg, true).await?
            }
            Ok(ErasedNext::Done { state }) => {
                let state = state.to_string();
                let ok = finish(
                    e,
                    &mut tx,
                    run,
                    RunStatus::Running,
                    Ending {
                        status: RunStatus::Succeeded,
                        step: &run.step,
                        state: Some(&state),
                        error: None,
                    },
                )
                .await?;
                (ok, "ok", None)
            }
            Ok(ErasedNext::Wait { then, .. }) if !wf.has_step(then) => {
                let msg = format!(
                    "step `{}` waits to continue at unknown step `{then}`",
                    run.step
                );
                fail_label(e, &mut tx, run, &msg, true).await?
            }
            Ok(ErasedNext::Wait {
                provider,
                external_id,
                then,
                state,
                deadline_ms,
                poll_every_ms,
                progress_every_ms,
            }) => {
                let state = state.to_string();
                let now = now_ms();
                let deadline_at = now + deadline_ms;
                let wake_at = (now + poll_every_ms).min(deadline_at);
                // A new wait starts with no progress; its hook is first asked right away.
                let n = on_tx!(tx.conn(), c => sqlx::query(
                    "UPDATE workflow_runs SET status = $11, step = $3, attempt = 1, seq = seq + 1, \
                        state = $4, wait_provider = $5, wait_external_id = $6, deadline_at = $7, \
                        poll_every_ms = $8, wake_at = $9, callback_payload = NULL, error = NULL, \
                        lease_id = NULL, lease_until = NULL, updated_at = $10, progress = NULL, \
                        progress_at = NULL, progress_every_ms = $12, \
                        progress_due = CASE WHEN $12 IS NULL THEN NULL ELSE $10 END \
                     WHERE id = $1 AND seq = $2 AND status = 'running'",
                )
                .bind(&run.id)
                .bind(run.seq)
                .bind(then)
                .bind(&state)
                .bind(provider)
                .bind(external_id)
                .bind(deadline_at)
                .bind(poll_every_ms)
                .bind(wake_at)
                .bind(now)
                .bind(RunStatus::Waiting)
                .bind(progress_every_ms)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
                if n == 1 {
                    let parked = RunRow {
                        status: RunStatus::Waiting,
                        step: then.clone(),
                        attempt: 1,
                        seq: run.seq + 1,
                        deadline_at: Some(deadline_at),
                        ..run.clone()
                    };
                    match callbacks::park(e, &mut tx, &parked, provider, external_id).await {
                        Ok(()) => {}
                        Err(err @ EngineError::CallbackTaken { .. }) => {
                            drop(tx);
                            outcome = Err(StepError::Permanent(err.to_string()));
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
                (n == 1, "waiting", None)
            }
            Err(err) => fail_label(e, &mut tx, run, err.message(), err.is_permanent()).await?,
        };
        if !applied {
            debug!("run moved on while the step ran; outcome discarded");
            return Ok(());
        }
        record_attempt(&mut tx, run, &e.instance, started, label, error.as_deref()).await?;
        e.queue.commit(tx).await?;
        after_commit(
            e,
            run,
            label,
            error.as_deref(),
            started,
            matches!(outcome, Ok(ErasedNext::Done { .. })),
        );
        return Ok(());
    }
    Ok(())
}

/// The hot path — a step succeeded and the run goes on to `next` (or ends) — through the
/// group commit of transitions. Runs that hold a permit or whose workflow limits subjects
/// have more to do and take the general path (None).
async fn step_ok(
    e: &Arc<Inner>,
    wf: &dyn DynWorkflow,
    run: &RunRow,
    next: Option<&str>,
    state: String,
    started: i64,
) -> Result<Option<bool>> {
    if run.permit.is_some() || wf.subject_limit().is_some() {
        return Ok(None);
    }
    let applied = e
        .step_ok
        .submit(StepOk {
            run_id: run.id.clone(),
            seq: run.seq,
            workflow: run.workflow.clone(),
            step: run.step.clone(),
            attempt: run.attempt,
            next: next.map(str::to_string),
            state,
            started,
        })
        .await?;
    Ok(Some(applied))
}

fn after_commit(
    e: &Inner,
    run: &RunRow,
    label: &str,
    error: Option<&str>,
    started: i64,
    done: bool,
) {
    let took = Duration::from_millis((now_ms() - started).max(0) as u64);
    e.observer
        .step_finished(&run.workflow, &run.step, label, took);
    match label {
        "retry" => {
            e.observer.step_retried(&run.workflow, &run.step);
            info!(error = error.unwrap_or(""), "step failed, will retry");
        }
        "failed" => warn!(error = error.unwrap_or(""), "step failed for good"),
        _ => {}
    }
    if done {
        e.observer
            .run_finished(&run.id, &run.workflow, RunStatus::Succeeded.as_str());
    }
}

async fn fail_label(
    e: &Inner,
    tx: &mut crate::queue::Txn,
    run: &RunRow,
    msg: &str,
    permanent: bool,
) -> Result<(bool, &'static str, Option<String>)> {
    let label = retry_or_fail(e, tx, run, RunStatus::Running, msg, permanent).await?;
    Ok((
        label.is_some(),
        label.unwrap_or("failed"),
        Some(msg.to_string()),
    ))
}

async fn compensate(
    e: &Arc<Inner>,
    wf: &dyn DynWorkflow,
    run: RunRow,
    started: i64,
    timeout: Duration,
) -> Result<()> {
    let final_status = run.final_status.unwrap_or(RunStatus::Failed);
    let failed_step = run.failed_step.clone().unwrap_or_else(|| run.step.clone());
    let result = match serde_json::from_str::<Value>(&run.state) {
        Err(err) => Err(StepError::permanent(format!(
            "stored state is not JSON: {err}"
        ))),
        Ok(state) => {
            let info = FailureInfo {
                run_id: run.id.clone(),
                subject: run.subject.clone(),
                failed_step: failed_step.clone(),
                error: run.error.clone().unwrap_or_default(),
                cancelled: final_status == RunStatus::Cancelled,
                attempt: run.attempt,
            };
            let fut = AssertUnwindSafe(wf.compensate(state, info)).catch_unwind();
            match tokio::time::timeout(timeout, fut).await {
                Err(_) => Err(StepError::Retryable(format!(
                    "compensation timed out after {timeout:?}"
                ))),
                Ok(Err(p)) => Err(StepError::Retryable(format!(
                    "compensation panicked: {}",
                    panic_message(&p)
                ))),
                Ok(Ok(r)) => r,
            }
        }
    };
    let mut tx = e.queue.begin(&e.db).await?;
    let (applied, label, error, finished) = match &result {
        Ok(()) => {
            let ok = finish(
                e,
                &mut tx,
                &run,
                RunStatus::Running,
                Ending {
                    status: final_status,
                    step: &failed_step,
                    state: None,
                    error: None,
                },
            )
            .await?;
            (ok, "ok", None, ok)
        }
        Err(err) => {
            let label = retry_or_fail(
                e,
                &mut tx,
                &run,
                RunStatus::Running,
                err.message(),
                err.is_permanent(),
            )
            .await?;
            (
                label.is_some(),
                label.unwrap_or("failed"),
                Some(err.message().to_string()),
                label == Some("failed"),
            )
        }
    };
    if !applied {
        return Ok(());
    }
    record_attempt(&mut tx, &run, &e.instance, started, label, error.as_deref()).await?;
    e.queue.commit(tx).await?;
    if finished {
        e.observer
            .run_finished(&run.id, &run.workflow, final_status.as_str());
        info!(status = %final_status, "run ended after compensation");
    }
    Ok(())
}
