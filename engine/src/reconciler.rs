//! Repairs what crashes leave behind: steps whose worker died (lease expired), pending runs
//! whose task was lost (Redis after a restart, a crash between commit and push, a dead
//! queue row), held runs that missed their admission; and prunes finished queue rows.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::Result;
use crate::inner::Inner;
use crate::limits;
use crate::on_db;
use crate::runs::{Dispatchable, Held, RunRow, RunStatus, queue_name, record_attempt, release};
use crate::time::{ms, now_ms};
use crate::transitions::retry_or_fail;

/// Runs until `stop`; a failed pass ends this life of the loop (the supervisor restarts it
/// with backoff).
pub(crate) async fn run(e: Arc<Inner>, mut stop: watch::Receiver<bool>) -> Result<(), String> {
    let mut every = tokio::time::interval(e.config.reconcile_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        let r = reconcile_once(&e)
            .await
            .map_err(|err| format!("reconciler pass: {err}"))?;
        if r.total() > 0 {
            info!(
                lost_steps = r.lost_steps,
                requeued = r.requeued,
                admitted = r.admitted,
                "reconciler repaired runs"
            );
        }
        if last_prune.is_none_or(|t| {
            t.elapsed() >= e.config.retention.min(std::time::Duration::from_secs(60))
        }) {
            last_prune = Some(Instant::now());
            for wf in e.workflows.keys() {
                let q = queue_name(&e.config.namespace, wf);
                if let Err(err) = e.queue.prune(&q, e.config.retention).await {
                    warn!(queue = %q, error = %err, "pruning finished queue rows failed");
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repairs {
    pub lost_steps: u64,
    pub requeued: u64,
    pub admitted: u64,
}

impl Repairs {
    pub fn total(&self) -> u64 {
        self.lost_steps + self.requeued + self.admitted
    }
}

/// One pass of every repair.
pub(crate) async fn reconcile_once(e: &Inner) -> Result<Repairs> {
    let mut r = Repairs {
        lost_steps: expired_leases(e).await?,
        requeued: stale_pending(e).await?,
        ..Repairs::default()
    };
    r.admitted = admit_held(e).await?;
    Ok(r)
}

/// A running step whose lease ran out lost its worker: that attempt counts as failed.
async fn expired_leases(e: &Inner) -> Result<u64> {
    let now = now_ms();
    let runs: Vec<RunRow> = on_db!(&e.db, p => sqlx::query_as(
        "SELECT * FROM workflow_runs WHERE status = 'running' AND lease_until < $1 LIMIT 200",
    )
    .bind(now)
    .fetch_all(p)
    .await)?;
    let mut n = 0;
    for run in runs {
        let msg = format!(
            "worker {} lost (lease expired)",
            run.lease_id.as_deref().unwrap_or("?")
        );
        let mut tx = e.queue.begin(&e.db).await?;
        if retry_or_fail(e, &mut tx, &run, RunStatus::Running, &msg, false)
            .await?
            .is_some()
        {
            // The claim set updated_at to the step's start.
            let started = run.updated_at;
            let worker = run.lease_id.clone().unwrap_or_default();
            record_attempt(&mut tx, &run, &worker, started, "lost", Some(&msg)).await?;
            e.queue.commit(tx).await?;
            warn!(run_id = %run.id, step = %run.step, "{msg}; retrying");
            n += 1;
        }
    }
    Ok(n)
}

/// A pending run whose task has not started for `stale_after` gets a new task; if the old
/// one shows up after all, the claim lets only one of them run. When the queue may have lost
/// tasks (Redis failed a push, or came back empty), every run pending for more than
/// [`LOST_GRACE_MS`] gets one, as soon as the queue answers again.
async fn stale_pending(e: &Inner) -> Result<u64> {
    let now = now_ms();
    let mut cutoff = now - ms(e.config.stale_after);
    // Asking Redis also notices a restart that no push or worker tripped over.
    let suspected = match e.queue.check_lost_tasks().await? {
        Some(lost) => lost.take(),
        None => None,
    };
    if let Some(since) = suspected {
        cutoff = now - LOST_GRACE_MS;
        info!(
            suspected_for_ms = now - since,
            "the queue may have lost tasks: queueing every pending run again"
        );
    }
    let result = requeue_pending_before(e, cutoff).await;
    if let (Err(_), Some(since)) = (&result, suspected) {
        lost_restore(e, since);
    }
    result
}

/// Pending for this long with tasks suspected lost: queued again (a task that is merely
/// slow to be fetched then runs once; the claim drops the other).
const LOST_GRACE_MS: i64 = 1_000;

fn lost_restore(e: &Inner, since: i64) {
    if let Some(lost) = e.queue.lost_tasks() {
        lost.restore(since);
    }
}

async fn requeue_pending_before(e: &Inner, cutoff: i64) -> Result<u64> {
    let rows: Vec<Dispatchable> = on_db!(&e.db, p => sqlx::query_as(
        "SELECT workflow, id, seq, step, attempt FROM workflow_runs \
         WHERE status = 'pending' AND held IS NULL AND due_at < $1 ORDER BY due_at LIMIT 500",
    )
    .bind(cutoff)
    .fetch_all(p)
    .await)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = e.queue.begin(&e.db).await?;
    let n = release(&e.queue, &e.config.namespace, &mut tx, rows, None).await?;
    e.queue.commit(tx).await?;
    Ok(n)
}

/// Runs held by a subject limit or a provider's capacity that could go now.
async fn admit_held(e: &Inner) -> Result<u64> {
    let mut n = 0;
    for (name, wf) in &e.workflows {
        if wf.subject_limit().is_none() {
            continue;
        }
        let subjects: Vec<String> = on_db!(&e.db, p => sqlx::query_scalar(
            "SELECT DISTINCT subject FROM workflow_runs WHERE workflow = $1 AND status = 'pending' \
             AND held = $2 AND subject IS NOT NULL LIMIT 100",
        )
        .bind(name)
        .bind(Held::Subject)
        .fetch_all(p)
        .await)?;
        for subject in subjects {
            let mut tx = e.queue.begin(&e.db).await?;
            n += limits::admit_subject(e, &mut tx, name, &subject).await?;
            e.queue.commit(tx).await?;
        }
    }
    for provider in e.config.provider_capacity.keys() {
        if let Some(free) = limits::free_permits(e, provider).await?
            && free > 0
        {
            let mut tx = e.queue.begin(&e.db).await?;
            n += limits::admit_provider(e, &mut tx, provider, free).await?;
            e.queue.commit(tx).await?;
        }
    }
    Ok(n)
}
