//! Concurrency limits: active runs per subject (per workflow), and external calls in flight
//! per provider. A limited run waits as a held row, holding no task and no worker slot.

use crate::db::DbTx;
use crate::error::Result;
use crate::inner::Inner;
use crate::on_tx;
use crate::queue::Txn;
use crate::runs::{Dispatchable, Held, release};

/// Serialises starts and admissions of one (workflow, subject) on Postgres; SQLite's
/// `BEGIN IMMEDIATE` already serialises every writer.
pub(crate) async fn lock_subject(tx: &mut Txn, workflow: &str, subject: &str) -> Result<()> {
    if let DbTx::Postgres(t) = tx.conn() {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{workflow}\u{1f}{subject}"))
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Active (not held back by the limit) runs of `subject` in `workflow`.
pub(crate) async fn active_for_subject(tx: &mut Txn, workflow: &str, subject: &str) -> Result<i64> {
    let n: i64 = on_tx!(tx.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM workflow_runs WHERE workflow = $1 AND subject = $2 \
         AND status IN ('pending','running','waiting') AND (held IS NULL OR held <> $3)",
    )
    .bind(workflow)
    .bind(subject)
    .bind(Held::Subject)
    .fetch_one(c)
    .await)?;
    Ok(n)
}

/// Lets held runs of `subject` go while the subject is under its limit.
pub(crate) async fn admit_subject(
    e: &Inner,
    tx: &mut Txn,
    workflow: &str,
    subject: &str,
) -> Result<u64> {
    let Some((limit, _)) = e.workflows.get(workflow).and_then(|w| w.subject_limit()) else {
        return Ok(0);
    };
    lock_subject(tx, workflow, subject).await?;
    let active = active_for_subject(tx, workflow, subject).await?;
    let free = (limit - active).max(0);
    if free == 0 {
        return Ok(0);
    }
    let rows: Vec<Dispatchable> = on_tx!(tx.conn(), c => sqlx::query_as(
        "SELECT workflow, id, seq, step, attempt FROM workflow_runs WHERE workflow = $1 AND subject = $2 \
         AND status = 'pending' AND held = $3 ORDER BY created_at, id LIMIT $4",
    )
    .bind(workflow)
    .bind(subject)
    .bind(Held::Subject)
    .bind(free)
    .fetch_all(c)
    .await)?;
    release(
        &e.queue,
        &e.config.namespace,
        tx,
        rows,
        Some(&Held::Subject),
    )
    .await
}

/// Writes the configured capacities (a provider absent from the configuration is unlimited).
pub(crate) async fn sync_capacities(e: &Inner) -> Result<()> {
    for (provider, cap) in &e.config.provider_capacity {
        crate::on_db!(&e.db, p => sqlx::query(
            "INSERT INTO provider_permits (provider, capacity, in_use) VALUES ($1, $2, 0) \
             ON CONFLICT (provider) DO UPDATE SET capacity = excluded.capacity",
        )
        .bind(provider)
        .bind(cap)
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Takes one permit of `provider` for run `run_id` (at `seq`). `false`: none is free.
pub(crate) async fn acquire_permit(
    e: &Inner,
    tx: &mut Txn,
    provider: &str,
    run_id: &str,
    seq: i64,
) -> Result<bool> {
    if !e.config.provider_capacity.contains_key(provider) {
        return Ok(true);
    }
    let n = on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE provider_permits SET in_use = in_use + 1 WHERE provider = $1 AND in_use < capacity",
    )
    .bind(provider)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Ok(false);
    }
    on_tx!(tx.conn(), c => sqlx::query("UPDATE workflow_runs SET permit = $3 WHERE id = $1 AND seq = $2")
        .bind(run_id)
        .bind(seq)
        .bind(provider)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(true)
}

/// Gives back the run's permit, if it holds one, and lets the next held run of that
/// provider go.
pub(crate) async fn release_permit(e: &Inner, tx: &mut Txn, run_id: &str) -> Result<()> {
    let provider: Option<String> = on_tx!(tx.conn(), c => sqlx::query_scalar(
        "SELECT permit FROM workflow_runs WHERE id = $1",
    )
    .bind(run_id)
    .fetch_optional(c)
    .await)?
    .flatten();
    let Some(p) = provider else { return Ok(()) };
    let n = on_tx!(tx.conn(), c => sqlx::query(
        "UPDATE workflow_runs SET permit = NULL WHERE id = $1 AND permit = $2",
    )
    .bind(run_id)
    .bind(&p)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    let provider = (n == 1).then_some(p);
    if let Some(p) = provider {
        on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE provider_permits SET in_use = in_use - 1 WHERE provider = $1 AND in_use > 0",
        )
        .bind(&p)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        admit_provider(e, tx, &p, 1).await?;
    }
    Ok(())
}

/// Lets up to `n` runs held for `provider` go (they take their permit when their step runs).
pub(crate) async fn admit_provider(e: &Inner, tx: &mut Txn, provider: &str, n: i64) -> Result<u64> {
    let reason = Held::Provider(provider.to_string());
    let rows: Vec<Dispatchable> = on_tx!(tx.conn(), c => sqlx::query_as(
        "SELECT workflow, id, seq, step, attempt FROM workflow_runs WHERE status = 'pending' AND held = $1 \
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(&reason)
    .bind(n)
    .fetch_all(c)
    .await)?;
    release(&e.queue, &e.config.namespace, tx, rows, Some(&reason)).await
}

/// Free permits of `provider` right now (None: unlimited).
pub(crate) async fn free_permits(e: &Inner, provider: &str) -> Result<Option<i64>> {
    if !e.config.provider_capacity.contains_key(provider) {
        return Ok(None);
    }
    let free: Option<i64> = crate::on_db!(&e.db, p => sqlx::query_scalar(
        "SELECT capacity - in_use FROM provider_permits WHERE provider = $1",
    )
    .bind(provider)
    .fetch_optional(p)
    .await)?;
    Ok(free)
}
