//! The credits ledger. A balance is the sum of an append-only ledger of grants, purchases,
//! reservations, captures and refunds; the account row is that sum kept current in the same
//! transaction, and a CHECK keeps it from going negative. Every entry has an idempotency key
//! (`run:kind:reason` for a run's entries), so a retried step or a replayed payment applies
//! once.

use std::fmt;

use aisha_engine::db::DbTx;
use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_tx};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CreditsError {
    #[error("not enough credits: {needed} needed, {balance} available")]
    Insufficient { needed: i64, balance: i64 },
    #[error(
        "a refund of {asked} for run {run_id} is more than its {left} reserved and not yet refunded"
    )]
    RefundTooLarge {
        run_id: String,
        asked: i64,
        left: i64,
    },
    #[error("a credit amount must be positive, got {0}")]
    NotPositive(i64),
    #[error("credits ledger: {0}")]
    Db(#[from] sqlx::Error),
    #[error("credits ledger: {0}")]
    Engine(#[from] aisha_engine::EngineError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Grant,
    Purchase,
    Reservation,
    Capture,
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Grant => "grant",
            Kind::Purchase => "purchase",
            Kind::Reservation => "reservation",
            Kind::Capture => "capture",
            Kind::Refund => "refund",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an entry changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    New,
    /// The same idempotency key was applied before: nothing changed.
    Already,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
}

/// One entry to write.
struct Entry<'a> {
    user_id: &'a str,
    kind: Kind,
    amount: i64,
    run_id: Option<&'a str>,
    reason: &'a str,
    key: String,
}

impl Ledger {
    pub fn new(db: Db) -> Ledger {
        Ledger { db }
    }

    /// Credits given (by an operator, a promotion) or bought; `key` makes it apply once
    /// (e.g. the payment's charge id).
    pub async fn add(
        &self,
        user_id: &str,
        kind: Kind,
        amount: i64,
        reason: &str,
        key: &str,
    ) -> Result<Applied, CreditsError> {
        positive(amount)?;
        let entry = Entry {
            user_id,
            kind,
            amount,
            run_id: None,
            reason,
            key: format!("{kind}:{key}"),
        };
        self.write(entry, None).await
    }

    /// Takes `amount` from the balance for `run_id`, or fails with `Insufficient` and
    /// changes nothing.
    pub async fn reserve(
        &self,
        user_id: &str,
        run_id: &str,
        reason: &str,
        amount: i64,
    ) -> Result<Applied, CreditsError> {
        positive(amount)?;
        let entry = Entry {
            user_id,
            kind: Kind::Reservation,
            amount: -amount,
            run_id: Some(run_id),
            reason,
            key: run_key(run_id, Kind::Reservation, reason),
        };
        self.write(entry, None).await
    }

    /// The run delivered: its reservation is final. A zero-amount entry, one per run and reason.
    pub async fn capture(
        &self,
        user_id: &str,
        run_id: &str,
        reason: &str,
    ) -> Result<Applied, CreditsError> {
        let entry = Entry {
            user_id,
            kind: Kind::Capture,
            amount: 0,
            run_id: Some(run_id),
            reason,
            key: run_key(run_id, Kind::Capture, reason),
        };
        self.write(entry, None).await
    }

    /// Gives back up to what `run_id` reserved and was not refunded yet.
    pub async fn refund(
        &self,
        user_id: &str,
        run_id: &str,
        reason: &str,
        amount: i64,
    ) -> Result<Applied, CreditsError> {
        positive(amount)?;
        let entry = Entry {
            user_id,
            kind: Kind::Refund,
            amount,
            run_id: Some(run_id),
            reason,
            key: run_key(run_id, Kind::Refund, reason),
        };
        self.write(entry, Some(run_id)).await
    }

    pub async fn balance(&self, user_id: &str) -> Result<i64, CreditsError> {
        let b: Option<i64> = aisha_engine::on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT balance FROM credit_accounts WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(p)
        .await)?;
        Ok(b.unwrap_or(0))
    }

    /// What a run has reserved and not had refunded.
    pub async fn held_by_run(&self, run_id: &str) -> Result<i64, CreditsError> {
        let mut tx = self.db.begin().await?;
        let held = held_by_run(&mut tx, run_id).await?;
        tx.commit().await?;
        Ok(held)
    }

    async fn write(&self, e: Entry<'_>, refund_of: Option<&str>) -> Result<Applied, CreditsError> {
        let mut tx = self.db.begin().await?;
        if let Some(run_id) = refund_of {
            // Two refunds of one run must not both see the same amount left. SQLite's
            // transactions already hold the write lock (BEGIN IMMEDIATE).
            if let DbTx::Postgres(t) = &mut tx {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('credits:' || $1))")
                    .bind(run_id)
                    .execute(&mut **t)
                    .await?;
            }
            let left = held_by_run(&mut tx, run_id).await?;
            if e.amount > left && !exists(&mut tx, &e.key).await? {
                return Err(CreditsError::RefundTooLarge {
                    run_id: run_id.to_string(),
                    asked: e.amount,
                    left,
                });
            }
        }
        let now = now_ms();
        let inserted = on_tx!(&mut tx, c => sqlx::query(
            "INSERT INTO credit_ledger (id, user_id, kind, amount, run_id, reason, idempotency_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(e.user_id)
        .bind(e.kind.as_str())
        .bind(e.amount)
        .bind(e.run_id)
        .bind(e.reason)
        .bind(&e.key)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Ok(Applied::Already);
        }
        if e.amount < 0 {
            let taken = on_tx!(&mut tx, c => sqlx::query(
                "UPDATE credit_accounts SET balance = balance + $2, updated_at = $3 \
                 WHERE user_id = $1 AND balance + $2 >= 0",
            )
            .bind(e.user_id)
            .bind(e.amount)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if taken == 0 {
                let balance: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar(
                    "SELECT balance FROM credit_accounts WHERE user_id = $1",
                )
                .bind(e.user_id)
                .fetch_optional(c)
                .await)?;
                return Err(CreditsError::Insufficient {
                    needed: -e.amount,
                    balance: balance.unwrap_or(0),
                });
            }
        } else if e.amount > 0 {
            on_tx!(&mut tx, c => sqlx::query(
                "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET balance = credit_accounts.balance + excluded.balance, \
                 updated_at = excluded.updated_at",
            )
            .bind(e.user_id)
            .bind(e.amount)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(Applied::New)
    }
}

fn positive(amount: i64) -> Result<(), CreditsError> {
    if amount > 0 {
        Ok(())
    } else {
        Err(CreditsError::NotPositive(amount))
    }
}

fn run_key(run_id: &str, kind: Kind, reason: &str) -> String {
    format!("{run_id}:{kind}:{reason}")
}

async fn held_by_run(tx: &mut DbTx, run_id: &str) -> Result<i64, CreditsError> {
    let held: Option<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM credit_ledger \
         WHERE run_id = $1 AND kind IN ('reservation', 'refund')",
    )
    .bind(run_id)
    .fetch_one(c)
    .await)?;
    Ok(held.unwrap_or(0))
}

async fn exists(tx: &mut DbTx, key: &str) -> Result<bool, CreditsError> {
    let found: Option<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT 1 FROM credit_ledger WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(c)
    .await)?;
    Ok(found.is_some())
}

/// One ledger entry as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EntryView {
    pub kind: String,
    pub amount: i64,
    pub reason: String,
    pub created_at: i64,
}

impl Ledger {
    /// The user's latest entries, newest first.
    pub async fn entries(&self, user_id: &str, limit: i64) -> Result<Vec<EntryView>, CreditsError> {
        Ok(aisha_engine::on_db!(&self.db, p => sqlx::query_as(
            "SELECT kind, amount, reason, created_at FROM credit_ledger WHERE user_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }

    /// Takes back `amount` credits of a refunded purchase (once per `key`); fails with
    /// `Insufficient` and changes nothing when the user has spent them.
    pub async fn take_back_purchase(
        &self,
        user_id: &str,
        amount: i64,
        reason: &str,
        key: &str,
    ) -> Result<Applied, CreditsError> {
        positive(amount)?;
        let entry = Entry {
            user_id,
            kind: Kind::Purchase,
            amount: -amount,
            run_id: None,
            reason,
            key: format!("purchase-refund:{key}"),
        };
        self.write(entry, None).await
    }
}

/// What must hold at all times; tests check it after every scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invariants {
    /// Users whose account balance is not the sum of their ledger.
    pub balance_mismatches: Vec<String>,
    /// Runs with more than one capture for the same reason, or refunded more than reserved.
    pub bad_runs: Vec<String>,
}

impl Ledger {
    /// Credits so far by kind: granted, purchased, refunded, and captured (what runs with a
    /// capture reserved, less what they got back). Each only grows.
    pub async fn totals(&self) -> Result<Vec<(&'static str, i64)>, CreditsError> {
        let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = aisha_engine::on_db!(&self.db, p => sqlx::query_as(
            "SELECT \
               CAST(SUM(CASE WHEN kind = 'grant' THEN amount ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN kind = 'purchase' AND amount > 0 THEN amount ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END) AS BIGINT), \
               CAST(-SUM(CASE WHEN kind IN ('reservation', 'refund') AND run_id IN \
                   (SELECT run_id FROM credit_ledger WHERE kind = 'capture') THEN amount ELSE 0 END) AS BIGINT) \
             FROM credit_ledger",
        )
        .fetch_one(p)
        .await)?;
        Ok(vec![
            ("granted", row.0.unwrap_or(0)),
            ("purchased", row.1.unwrap_or(0)),
            ("refunded", row.2.unwrap_or(0)),
            ("captured", row.3.unwrap_or(0)),
        ])
    }

    pub async fn check(&self) -> Result<Invariants, CreditsError> {
        let balance_mismatches: Vec<String> = aisha_engine::on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT u.user_id FROM (SELECT user_id, SUM(amount) AS total FROM credit_ledger GROUP BY user_id) u \
             LEFT JOIN credit_accounts a ON a.user_id = u.user_id \
             WHERE COALESCE(a.balance, 0) <> u.total \
             UNION SELECT a.user_id FROM credit_accounts a \
             WHERE a.balance <> 0 AND NOT EXISTS (SELECT 1 FROM credit_ledger l WHERE l.user_id = a.user_id)",
        )
        .fetch_all(p)
        .await)?;
        let bad_runs: Vec<String> = aisha_engine::on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT run_id FROM credit_ledger WHERE run_id IS NOT NULL GROUP BY run_id \
             HAVING SUM(CASE WHEN kind IN ('reservation', 'refund') THEN amount ELSE 0 END) > 0",
        )
        .fetch_all(p)
        .await)?;
        Ok(Invariants {
            balance_mismatches,
            bad_runs,
        })
    }
}
