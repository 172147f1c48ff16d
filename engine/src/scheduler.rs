//! Time-driven transitions: retries whose backoff has passed are queued, and parked runs
//! whose poll time or deadline has come are handed to their workflow's poll hook, and parked
//! runs whose progress is due are asked for it (`crate::progress`, on the same permits).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tracing::{Instrument, info_span, warn};

use crate::callbacks;
use crate::error::Result;
use crate::inner::Inner;
use crate::on_db;
use crate::progress;
use crate::runs::{Dispatchable, Held, RunRow, RunStatus, record_attempt, release};
use crate::time::now_ms;
use crate::transitions::to_compensation;
use crate::workflow::{PollInfo, PollOutcome};

/// How long a claimed poll keeps other schedulers away from the same run.
const POLL_LEASE_MS: i64 = 60_000;
const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `stop`; a failed pass ends this life of the loop (the supervisor restarts it
/// with backoff, so an outage is not retried every tick).
pub(crate) async fn run(e: Arc<Inner>, mut stop: watch::Receiver<bool>) -> Result<(), String> {
    let polls = Arc::new(Semaphore::new(e.config.poll_concurrency.max(1)));
    let mut every = tokio::time::interval(e.config.tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        dispatch_due(&e)
            .await
            .map_err(|err| format!("dispatching due retries: {err}"))?;
        wake_waiting(&e, &polls)
            .await
            .map_err(|err| format!("waking parked runs: {err}"))?;
        progress::ask_due(&e, &polls)
            .await
            .map_err(|err| format!("asking parked runs' progress: {err}"))?;
    }
}

/// Queues runs whose retry backoff has passed.
pub(crate) async fn dispatch_due(e: &Inner) -> Result<u64> {
    let due: Vec<Dispatchable> = on_db!(&e.db, p => sqlx::query_as(
        "SELECT workflow, id, seq, step, attempt FROM workflow_runs \
         WHERE status = 'pending' AND held = $1 AND due_at <= $2 ORDER BY due_at LIMIT 500",
    )
    .bind(Held::Delay)
    .bind(now_ms())
    .fetch_all(p)
    .await)?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = e.queue.begin(&e.db).await?;
    let n = release(
        &e.queue,
        &e.config.namespace,
        &mut tx,
        due,
        Some(&Held::Delay),
    )
    .await?;
    e.queue.commit(tx).await?;
    Ok(n)
}

async fn wake_waiting(e: &Arc<Inner>, polls: &Arc<Semaphore>) -> Result<()> {
    let now = now_ms();
    let runs: Vec<RunRow> = on_db!(&e.db, p => sqlx::query_as(
        "SELECT * FROM workflow_runs WHERE status = 'waiting' AND wake_at <= $1 ORDER BY wake_at LIMIT 100",
    )
    .bind(now)
    .fetch_all(p)
    .await)?;
    for run in runs {
        let claimed = on_db!(&e.db, p => sqlx::query(
            "UPDATE workflow_runs SET wake_at = $3 WHERE id = $1 AND seq = $2 AND status = 'waiting' AND wake_at <= $4",
        )
        .bind(&run.id)
        .bind(run.seq)
        .bind(now + POLL_LEASE_MS)
        .bind(now)
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        if claimed == 0 {
            continue;
        }
        let Ok(permit) = polls.clone().acquire_owned().await else {
            return Ok(());
        };
        let e = e.clone();
        let span = info_span!("poll", run_id = %run.id, workflow = %run.workflow, step = %run.step);
        tokio::spawn(
            async move {
                if let Err(err) = poll_one(&e, run).await {
                    warn!(error = %err, "poll failed; it is tried again at the next poll time");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    Ok(())
}

async fn poll_one(e: &Arc<Inner>, run: RunRow) -> Result<()> {
    let Some(wf) = e.workflows.get(run.workflow.as_str()).cloned() else {
        return Ok(());
    };
    let provider = run.wait_provider.clone().unwrap_or_default();
    let external_id = run.wait_external_id.clone().unwrap_or_default();
    let now = now_ms();
    let deadline_passed = run.deadline_at.is_some_and(|d| now >= d);
    let outcome = if wf.has_poll() {
        let state: Value = serde_json::from_str(&run.state).unwrap_or(Value::Null);
        let info = PollInfo {
            run_id: run.id.clone(),
            subject: run.subject.clone(),
            provider: provider.clone(),
            external_id: external_id.clone(),
            deadline_passed,
        };
        tokio::time::timeout(POLL_TIMEOUT, wf.poll(state, info))
            .await
            .unwrap_or(PollOutcome::Pending)
    } else {
        PollOutcome::Pending
    };
    match outcome {
        PollOutcome::Resolved(payload) => {
            callbacks::resolve(e, &provider, &external_id, &payload).await?;
        }
        PollOutcome::Pending if deadline_passed => {
            fail_waiting(
                e,
                &run,
                &format!("no answer from {provider} by the deadline"),
            )
            .await?;
        }
        PollOutcome::Pending => {
            let next = (now + run.poll_every_ms.unwrap_or(60_000))
                .min(run.deadline_at.unwrap_or(i64::MAX));
            on_db!(&e.db, p => sqlx::query(
                "UPDATE workflow_runs SET wake_at = $3 WHERE id = $1 AND seq = $2 AND status = 'waiting'",
            )
            .bind(&run.id)
            .bind(run.seq)
            .bind(next)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        }
        PollOutcome::Failed(msg) => fail_waiting(e, &run, &msg).await?,
    }
    Ok(())
}

async fn fail_waiting(e: &Arc<Inner>, run: &RunRow, msg: &str) -> Result<()> {
    let mut tx = e.queue.begin(&e.db).await?;
    if to_compensation(e, &mut tx, run, RunStatus::Waiting, RunStatus::Failed, msg).await? {
        record_attempt(
            &mut tx,
            run,
            &e.instance,
            run.updated_at,
            "failed",
            Some(msg),
        )
        .await?;
        e.queue.commit(tx).await?;
        warn!(error = msg, "wait failed");
    }
    Ok(())
}
