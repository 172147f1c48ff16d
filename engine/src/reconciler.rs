//! Repairs what crashes leave behind: steps whose worker died (lease expired), pending runs
//! whose task was lost (Redis after a restart, a crash between commit and push, a dead
//! queue row), held runs that missed their admission; and prunes finished queue rows.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::Inner;
use crate::error::Result;
use crate::limits;
use crate::on_db;
use crate::runs::{Dispatchable, RunRow, held, queue_name, record_attempt, release};
use crate::time::{ms, now_ms};
use crate::transitions::retry_or_fail;

pub(crate) async fn run(e: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(e.config.reconcile_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        match reconcile_once(&e).await {
            Ok(r) if r.total() > 0 => info!(
                lost_steps = r.lost_steps,
                requeued = r.requeued,
                admitted = r.admitted,
                "reconciler repaired runs"
            ),
            Ok(_) => {}
            Err(err) => warn!(error = %err, "reconciler pass failed"),
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
pub struct Repairs {
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
        if retry_or_fail(e, &mut tx, &run, "running", &msg, false)
            .await?
            .is_some()
        {
            let timeout = e
                .workflows
                .get(run.workflow.as_str())
                .map(|w| ms(w.policy(&run.step).timeout))
                .unwrap_or(0);
            let started = run.lease_until.unwrap_or(now) - timeout - ms(e.config.lease_grace);
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
/// one shows up after all, the claim lets only one of them run.
async fn stale_pending(e: &Inner) -> Result<u64> {
    let now = now_ms();
    let cutoff = now - ms(e.config.stale_after);
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
    let n = release(e, &mut tx, rows, None).await?;
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
        .bind(held::SUBJECT)
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
