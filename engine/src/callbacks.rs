//! Waiting for outside services. A run parks on `(provider, external_id)`; whoever comes
//! second — the callback or the park — completes the pairing, through one conditional update
//! on the callback row, so a callback is applied exactly once whatever the order and however
//! often it is delivered.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::inner::Inner;
use crate::limits;
use crate::on_tx;
use crate::queue::Txn;
use crate::runs::{RunRow, RunStatus, fetch_run};
use crate::time::now_ms;
use crate::transitions::{Move, move_to};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum ResolveOutcome {
    /// The waiting run was resumed.
    Resolved { run_id: String },
    /// Stored: no run waits on this key yet; the run picks it up when it parks.
    Early,
    /// Already applied (or already stored as early): nothing changed.
    Duplicate,
    /// The run it was for has moved on (cancelled, failed, timed out): stored, not applied.
    Late { run_id: String },
}

impl ResolveOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            ResolveOutcome::Resolved { .. } => "resolved",
            ResolveOutcome::Early => "early",
            ResolveOutcome::Duplicate => "duplicate",
            ResolveOutcome::Late { .. } => "late",
        }
    }
}

/// Binds the callback key to a run that has just gone to `waiting` at `run.seq`. If the
/// callback arrived first, the run resumes at once within the same transaction.
pub(crate) async fn park(
    e: &Inner,
    tx: &mut Txn,
    run: &RunRow,
    provider: &str,
    external_id: &str,
) -> Result<()> {
    let now = now_ms();
    let bound: Option<(Option<String>, Option<String>, i64)> = on_tx!(tx.conn(), c => sqlx::query_as(
        "INSERT INTO callbacks (provider, external_id, run_id, step, seq, deadline_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (provider, external_id) DO UPDATE SET run_id = excluded.run_id, step = excluded.step, \
            seq = excluded.seq, deadline_at = excluded.deadline_at, created_at = excluded.created_at \
         WHERE callbacks.run_id IS NULL OR (callbacks.run_id = excluded.run_id AND callbacks.resolved_at IS NULL) \
         RETURNING payload, run_id, created_at",
    )
    .bind(provider)
    .bind(external_id)
    .bind(&run.id)
    .bind(&run.step)
    .bind(run.seq)
    .bind(run.deadline_at)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let Some((payload, _, _)) = bound else {
        let owner: Option<String> = on_tx!(tx.conn(), c => sqlx::query_scalar(
            "SELECT run_id FROM callbacks WHERE provider = $1 AND external_id = $2",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(c)
        .await)?
        .flatten();
        return Err(EngineError::CallbackTaken {
            provider: provider.into(),
            external_id: external_id.into(),
            bound_to: owner.unwrap_or_default(),
        });
    };
    if let Some(payload) = payload {
        // The callback came before the park: resolve now.
        on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE callbacks SET resolved_at = $3 WHERE provider = $1 AND external_id = $2",
        )
        .bind(provider)
        .bind(external_id)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        limits::release_permit(e, tx, &run.id).await?;
        move_to(e, tx, run, RunStatus::Waiting, continuation(run, &payload)).await?;
        e.observer.callback(provider, "resolved");
    }
    Ok(())
}

fn continuation<'a>(run: &'a RunRow, payload: &'a str) -> Move<'a> {
    Move {
        step: &run.step,
        attempt: 1,
        state: None,
        error: None,
        callback_payload: Some(payload),
        delay_ms: 0,
    }
}

/// Applies a callback (from a webhook or a poll) exactly once.
pub(crate) async fn resolve(
    e: &Inner,
    provider: &str,
    external_id: &str,
    payload: &Value,
) -> Result<ResolveOutcome> {
    let body = payload.to_string();
    let mut tx = e.queue.begin(&e.db).await?;
    // Three tries cover the race with a concurrent park: our insert can conflict with a park
    // that was not yet committed when the first update looked.
    let mut outcome = ResolveOutcome::Duplicate;
    for _ in 0..3 {
        let now = now_ms();
        let claimed: Option<(String, i64, i64)> = on_tx!(tx.conn(), c => sqlx::query_as(
            "UPDATE callbacks SET payload = $3, received_at = COALESCE(received_at, $4), resolved_at = $4 \
             WHERE provider = $1 AND external_id = $2 AND run_id IS NOT NULL AND resolved_at IS NULL \
             RETURNING run_id, seq, created_at",
        )
        .bind(provider)
        .bind(external_id)
        .bind(&body)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        if let Some((run_id, seq, parked_at)) = claimed {
            let run = fetch_run(&mut tx, &run_id).await?;
            let applied = match &run {
                Some(r) if r.seq == seq && r.status == RunStatus::Waiting => {
                    limits::release_permit(e, &mut tx, &r.id).await?;
                    move_to(e, &mut tx, r, RunStatus::Waiting, continuation(r, &body)).await?
                }
                _ => false,
            };
            outcome = if applied {
                e.observer.callback_waited(
                    provider,
                    Duration::from_millis((now - parked_at).max(0) as u64),
                );
                ResolveOutcome::Resolved { run_id }
            } else {
                ResolveOutcome::Late { run_id }
            };
            break;
        }
        let inserted = on_tx!(tx.conn(), c => sqlx::query(
            "INSERT INTO callbacks (provider, external_id, payload, created_at, received_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (provider, external_id) DO NOTHING",
        )
        .bind(provider)
        .bind(external_id)
        .bind(&body)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if inserted == 1 {
            outcome = ResolveOutcome::Early;
            break;
        }
        let unresolved_bound: Option<i64> = on_tx!(tx.conn(), c => sqlx::query_scalar(
            "SELECT 1 FROM callbacks WHERE provider = $1 AND external_id = $2 \
             AND run_id IS NOT NULL AND resolved_at IS NULL",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(c)
        .await)?;
        if unresolved_bound.is_none() {
            on_tx!(tx.conn(), c => sqlx::query(
                "UPDATE callbacks SET duplicates = duplicates + 1 WHERE provider = $1 AND external_id = $2",
            )
            .bind(provider)
            .bind(external_id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            outcome = ResolveOutcome::Duplicate;
            break;
        }
    }
    e.queue.commit(tx).await?;
    e.observer.callback(provider, outcome.label());
    Ok(outcome)
}
