//! Progress hooks of parked runs: while a run waits on a wait declared with
//! `Wait::progress_every`, the scheduler asks its workflow's hook how far the outside work
//! is, records the answer on the run and hands a changed one to the workflow. A hook only
//! reports: it never resolves or fails the wait.
//!
//! Bounded for thousands of parked runs: each pass takes at most [`BATCH`] due runs, pushes
//! each one's next due time forward *before* asking (so a slow hook or a second scheduler
//! never asks twice at once), and runs the hooks on the permits the poll hooks use
//! (`EngineConfig.poll_concurrency`); when none is free the pass stops and the rest stay due
//! for the next tick. No worker slot is taken: the hooks run in the scheduler.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, info_span, warn};

use crate::error::Result;
use crate::inner::Inner;
use crate::on_db;
use crate::runs::RunRow;
use crate::time::now_ms;
use crate::workflow::ProgressInfo;

/// Due runs taken per scheduler tick.
const BATCH: i64 = 200;
/// A hook that has not answered by then is given up (its run is asked again when next due).
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the progress hooks of parked runs whose progress is due.
pub(crate) async fn ask_due(e: &Arc<Inner>, permits: &Arc<Semaphore>) -> Result<()> {
    let now = now_ms();
    let runs: Vec<RunRow> = on_db!(&e.db, p => sqlx::query_as(
        "SELECT * FROM workflow_runs WHERE status = 'waiting' AND progress_due <= $1 \
         ORDER BY progress_due LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(p)
    .await)?;
    for run in runs {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!("every hook permit is taken; the rest of the due progress waits a tick");
            return Ok(());
        };
        let every = run.progress_every_ms.unwrap_or(60_000).max(1);
        let claimed = on_db!(&e.db, p => sqlx::query(
            "UPDATE workflow_runs SET progress_due = $3 \
             WHERE id = $1 AND seq = $2 AND status = 'waiting' AND progress_due <= $4",
        )
        .bind(&run.id)
        .bind(run.seq)
        .bind(now.saturating_add(every))
        .bind(now)
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        if claimed == 0 {
            continue;
        }
        let e = e.clone();
        let span =
            info_span!("progress", run_id = %run.id, workflow = %run.workflow, step = %run.step);
        tokio::spawn(
            async move {
                if let Err(err) = ask_one(&e, run).await {
                    warn!(error = %err, "recording progress failed; it is asked again when due");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    Ok(())
}

fn info(run: &RunRow) -> ProgressInfo {
    ProgressInfo {
        run_id: run.id.clone(),
        subject: run.subject.clone(),
        provider: run.wait_provider.clone().unwrap_or_default(),
        external_id: run.wait_external_id.clone().unwrap_or_default(),
    }
}

async fn ask_one(e: &Arc<Inner>, run: RunRow) -> Result<()> {
    let Some(wf) = e.workflows.get(run.workflow.as_str()).cloned() else {
        return Ok(());
    };
    let state: Value = serde_json::from_str(&run.state).unwrap_or(Value::Null);
    let asked =
        tokio::time::timeout(HOOK_TIMEOUT, wf.ask_progress(state.clone(), info(&run))).await;
    let Ok(Some(progress)) = asked else {
        return Ok(());
    };
    let text = progress.to_string();
    // Only while the run is still parked on the same wait (`seq`): a progress that arrives
    // after the callback resumed the run is dropped. An unchanged progress is not news.
    let recorded = on_db!(&e.db, p => sqlx::query(
        "UPDATE workflow_runs SET progress = $3, progress_at = $4 \
         WHERE id = $1 AND seq = $2 AND status = 'waiting' \
         AND (progress IS NULL OR progress <> $3)",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(&text)
    .bind(now_ms())
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    if recorded == 1 {
        e.observer.progress(&run.workflow);
        wf.tell_progress(state, progress, info(&run)).await;
    }
    Ok(())
}
