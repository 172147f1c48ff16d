//! The credits ledger. A balance is the sum of an append-only ledger of grants, purchases,
//! reservations, captures and refunds; the account row is that sum kept current in the same
//! transaction, and a CHECK keeps it from going negative. Every entry has an idempotency key
//! (`run:kind:reason` for a run's entries), so a retried step or a replayed payment applies
//! once.
//!
//! Amounts are bounded: one grant or purchase by [`CreditLimits::max_grant`], a balance by
//! [`CreditLimits::max_balance`], and every balance by [`BALANCE_CEILING`] (a CHECK on the
//! account row), so no sum the ledger or `/metrics` computes can overflow.

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
    #[error("a grant of {amount} is over MAX_GRANT ({max})")]
    OverMaxGrant { amount: i64, max: i64 },
    #[error("{amount} more would take the balance of {balance} over MAX_BALANCE ({max})")]
    OverMaxBalance { amount: i64, balance: i64, max: i64 },
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

impl CreditsError {
    /// The caller asked for an amount out of bounds (a 400, not an outage).
    pub fn is_out_of_bounds(&self) -> bool {
        matches!(
            self,
            CreditsError::NotPositive(_)
                | CreditsError::OverMaxGrant { .. }
                | CreditsError::OverMaxBalance { .. }
        )
    }
}

/// A step that meets the ledger: a short balance, an amount out of bounds or a refund beyond
/// the reservation is the same on every attempt, so it fails the step for good; only the
/// database is worth the step's retries.
impl From<CreditsError> for aisha_engine::StepError {
    fn from(e: CreditsError) -> Self {
        match e {
            CreditsError::Db(_) | CreditsError::Engine(_) => aisha_engine::StepError::retryable(e),
            _ => aisha_engine::StepError::permanent(e),
        }
    }
}

/// The largest balance any account may hold, whatever the configuration: the CHECK on
/// `credit_accounts.balance` (migration `…_credit_bounds`). Far below `i64::MAX`, so even
/// millions of accounts at the ceiling sum exactly in Postgres' NUMERIC.
pub const BALANCE_CEILING: i64 = 1_000_000_000_000_000;

/// The configured bounds (`MAX_GRANT`, `MAX_BALANCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditLimits {
    /// Most credits one grant or purchase adds.
    pub max_grant: i64,
    /// Most credits a grant or purchase may bring a balance to.
    pub max_balance: i64,
}

impl Default for CreditLimits {
    fn default() -> Self {
        CreditLimits {
            max_grant: 1_000_000,
            max_balance: 100_000_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
    limits: CreditLimits,
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
    /// A ledger with the default [`CreditLimits`].
    pub fn new(db: Db) -> Ledger {
        Ledger::with_limits(db, CreditLimits::default())
    }

    pub fn with_limits(db: Db, limits: CreditLimits) -> Ledger {
        Ledger { db, limits }
    }

    pub fn limits(&self) -> CreditLimits {
        self.limits
    }

    /// Credits given (by an operator, a promotion) or bought; `key` makes it apply once
    /// (e.g. the payment's charge id). At most `max_grant` at a time, and only while the
    /// balance stays within `max_balance`.
    pub async fn add(
        &self,
        user_id: &str,
        kind: Kind,
        amount: i64,
        reason: &str,
        key: &str,
    ) -> Result<Applied, CreditsError> {
        positive(amount)?;
        if amount > self.limits.max_grant {
            return Err(CreditsError::OverMaxGrant {
                amount,
                max: self.limits.max_grant,
            });
        }
        let entry = Entry {
            user_id,
            kind,
            amount,
            run_id: None,
            reason,
            key: format!("{kind}:{key}"),
        };
        self.write(entry, None, self.limits.max_balance).await
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
        self.write(entry, None, self.limits.max_balance).await
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
        self.write(entry, None, self.limits.max_balance).await
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
        // A refund gives back what the run took from the balance, so the configured cap
        // does not apply (a compensation must not fail); the ceiling still does.
        self.write(entry, Some(run_id), BALANCE_CEILING).await
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

    /// Writes one entry and moves the balance, or changes nothing: a debit never takes the
    /// balance below 0, a credit never above `cap`.
    async fn write(
        &self,
        e: Entry<'_>,
        refund_of: Option<&str>,
        cap: i64,
    ) -> Result<Applied, CreditsError> {
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
                return Err(CreditsError::Insufficient {
                    needed: -e.amount,
                    balance: account_balance(&mut tx, e.user_id).await?,
                });
            }
        } else if e.amount > 0 {
            // `balance <= cap - amount` rather than `balance + amount <= cap`: the sum could
            // overflow (SQLite would turn it into a REAL), the difference cannot.
            let added = if e.amount > cap {
                0
            } else {
                on_tx!(&mut tx, c => sqlx::query(
                    "INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET balance = credit_accounts.balance + excluded.balance, \
                     updated_at = excluded.updated_at WHERE credit_accounts.balance <= $4 - excluded.balance",
                )
                .bind(e.user_id)
                .bind(e.amount)
                .bind(now)
                .bind(cap)
                .execute(c)
                .await.map(|r| r.rows_affected()))?
            };
            if added == 0 {
                let balance = account_balance(&mut tx, e.user_id).await?;
                return Err(CreditsError::OverMaxBalance {
                    amount: e.amount,
                    balance,
                    max: cap,
                });
            }
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

async fn account_balance(tx: &mut DbTx, user_id: &str) -> Result<i64, CreditsError> {
    let balance: Option<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT balance FROM credit_accounts WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(c)
    .await)?;
    Ok(balance.unwrap_or(0))
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
        self.write(entry, None, self.limits.max_balance).await
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
    ///
    /// Summed so that no data can make it fail: Postgres adds BIGINTs in NUMERIC (exact,
    /// no overflow), SQLite's TOTAL() in floating point (its SUM() raises on overflow);
    /// either way the figure is handed over as the f64 a gauge holds.
    pub async fn totals(&self) -> Result<Vec<(&'static str, f64)>, CreditsError> {
        let sum = |expr: &str| match &self.db {
            Db::Postgres(_) => format!("COALESCE(CAST(SUM({expr}) AS DOUBLE PRECISION), 0)"),
            Db::Sqlite(_) => format!("TOTAL({expr})"),
        };
        let sql = format!(
            "SELECT {}, {}, {}, -{} FROM credit_ledger",
            sum("CASE WHEN kind = 'grant' THEN amount ELSE 0 END"),
            sum("CASE WHEN kind = 'purchase' AND amount > 0 THEN amount ELSE 0 END"),
            sum("CASE WHEN kind = 'refund' THEN amount ELSE 0 END"),
            sum("CASE WHEN kind IN ('reservation', 'refund') AND run_id IN \
                 (SELECT run_id FROM credit_ledger WHERE kind = 'capture') THEN amount ELSE 0 END"),
        );
        // Built from the literals above only.
        let row: (f64, f64, f64, f64) = aisha_engine::on_db!(&self.db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(p)
            .await)?;
        Ok(vec![
            ("granted", row.0),
            ("purchased", row.1),
            ("refunded", row.2),
            ("captured", row.3),
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
