//! The state-of-record database: Postgres in production, SQLite embedded.
//!
//! Queries are written once in the SQL both dialects share (`$n` placeholders, integer unix-ms
//! timestamps, TEXT ids and JSON, `ON CONFLICT`, `RETURNING`) and run through [`on_tx!`] /
//! [`on_db!`], which expand the same expression for each driver.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::error::{EngineError, Result};

#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

pub enum DbTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$c` bound to the transaction's connection, whichever the driver.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::db::DbTx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::DbTx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Runs `$body` with `$p` bound to the pool, whichever the driver.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($p) => $body,
            $crate::db::Db::Sqlite($p) => $body,
        }
    };
}

/// One connection budget for a process (`DB_MAX_CONNECTIONS`), split over its pools.
///
/// On Postgres a quarter (at least 2) goes to the relaxed pool — apalis's fetches and acks,
/// step leases, the queue's one LISTEN connection, webhook book-keeping — and the rest to the
/// state pool (transitions, starts, product tables). On SQLite, which takes one writer at a
/// time, one connection (when the budget has two or more) is the engine's writer — the group
/// commits of claims and step transitions — and the rest are the shared pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub total: u32,
    pub state: u32,
    pub relaxed: u32,
    /// SQLite's dedicated writer connection (0: the writes share `state`).
    pub writer: u32,
}

impl Budget {
    /// The smallest budget on Postgres: two state connections, the LISTEN connection and one
    /// for fetches and leases.
    pub const MIN_POSTGRES: u32 = 4;

    pub fn postgres(total: u32) -> Result<Budget> {
        if total < Self::MIN_POSTGRES {
            return Err(EngineError::Config(format!(
                "DB_MAX_CONNECTIONS must be at least {} on Postgres, got {total}",
                Self::MIN_POSTGRES
            )));
        }
        let relaxed = (total / 4).max(2);
        Ok(Budget {
            total,
            state: total - relaxed,
            relaxed,
            writer: 0,
        })
    }

    pub fn sqlite(total: u32) -> Budget {
        let total = total.max(1);
        let writer = u32::from(total >= 2);
        Budget {
            total,
            state: total - writer,
            relaxed: 0,
            writer,
        }
    }
}

pub use crate::config::ACQUIRE_TIMEOUT;

/// Every connection a process opens to its database, within one [`Budget`].
#[derive(Debug, Clone)]
pub struct Pools {
    /// The state of record.
    pub db: Db,
    /// Same database, commits that do not wait for the WAL flush (see [`Pools::connect`]);
    /// on SQLite the same pool as `db`.
    pub relaxed: Db,
    /// Where the engine's group commits write: on SQLite its one writer connection (see
    /// [`Budget`]), on Postgres the same pool as `db`.
    pub writer: Db,
    pub budget: Budget,
}

impl Pools {
    /// Connects to `postgres://…` or `sqlite:…` (the file is created if missing) with at
    /// most `total` connections in all.
    ///
    /// The relaxed pool's commits do not wait for the WAL flush (`synchronous_commit=off`).
    /// It is for writes that are not state of record — queue bookkeeping and step leases —
    /// where a commit lost in a crash only means the reconciler or the seq guard redoes or
    /// drops a task. Transitions never use it. It also plans without sequential scans:
    /// apalis-postgres acknowledges tasks with a join on a JSON array that the planner takes
    /// for 100 rows, and so hash-joins the whole jobs table — an ack that costs 15 ms at
    /// 20,000 rows instead of 0.7 ms by primary key.
    pub async fn connect(url: &str, total: u32) -> Result<Pools> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let budget = Budget::postgres(total)?;
            let opts = PgConnectOptions::from_str(url)?;
            let relaxed_opts = opts
                .clone()
                .options([("synchronous_commit", "off"), ("enable_seqscan", "off")]);
            let db = pg_pool(opts, budget.state).await?;
            let relaxed = pg_pool(relaxed_opts, budget.relaxed).await?;
            Ok(Pools {
                writer: Db::Postgres(db.clone()),
                db: Db::Postgres(db),
                relaxed: Db::Postgres(relaxed),
                budget,
            })
        } else if url.starts_with("sqlite:") {
            let budget = Budget::sqlite(total);
            let db = Db::Sqlite(sqlite_pool(url, budget.state).await?);
            let writer = match budget.writer {
                0 => db.clone(),
                n => Db::Sqlite(sqlite_pool(url, n).await?),
            };
            Ok(Pools {
                relaxed: db.clone(),
                writer,
                db,
                budget,
            })
        } else {
            Err(EngineError::Config(format!(
                "DATABASE_URL must start with postgres:// or sqlite:, got `{}`",
                redact_url(url)
            )))
        }
    }

    pub async fn close(&self) {
        self.db.close().await;
        self.relaxed.close().await;
        self.writer.close().await;
    }
}

/// A Postgres pool of `size` connections that waits at most [`ACQUIRE_TIMEOUT`] for one.
async fn pg_pool(opts: PgConnectOptions, size: u32) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts)
        .await?)
}

/// Where applied migrations are recorded, for every owner.
const MIGRATIONS_TABLE: &str = "aisha_migrations";

/// One owner's migrations, for each backend: `|| sqlx::migrate!("…/postgres")` and the same
/// for SQLite (a function, because a `Migrator` is configured per run and is not `Clone`).
pub struct Migrations {
    pub postgres: fn() -> sqlx::migrate::Migrator,
    pub sqlite: fn() -> sqlx::migrate::Migrator,
}

/// The engine's tables: runs, step attempts, callbacks, provider permits.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: || sqlx::migrate!("../migrations/engine/postgres"),
    sqlite: || sqlx::migrate!("../migrations/engine/sqlite"),
};

impl Db {
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// Applies the engine's own migrations (`migrations/engine/`). Each crate that owns
    /// tables applies its own the same way ([`Db::apply`]); `aisha migrate` runs them all.
    pub async fn migrate(&self) -> Result<()> {
        self.apply(&MIGRATIONS).await
    }

    /// Applies one owner's migrations. All owners share one history table, so each set
    /// ignores the versions of the others (they are applied, not missing).
    pub async fn apply(&self, migrations: &Migrations) -> Result<()> {
        let mut m = match self {
            Db::Postgres(_) => (migrations.postgres)(),
            Db::Sqlite(_) => (migrations.sqlite)(),
        };
        m.dangerous_set_table_name(MIGRATIONS_TABLE);
        m.set_ignore_missing(true);
        match self {
            Db::Postgres(p) => m.run(p).await?,
            Db::Sqlite(p) => m.run(p).await?,
        }
        Ok(())
    }

    pub async fn begin(&self) -> Result<DbTx> {
        Ok(match self {
            Db::Postgres(p) => DbTx::Postgres(p.begin().await?),
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads and
            // then writes can fail with SQLITE_BUSY instead of waiting for the lock.
            Db::Sqlite(p) => DbTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }
}

impl DbTx {
    pub async fn commit(self) -> Result<()> {
        match self {
            DbTx::Postgres(t) => t.commit().await?,
            DbTx::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A durable SQLite pool: WAL with `synchronous=NORMAL` on every connection (apalis-sqlite's
/// own setup would switch it OFF), a busy timeout instead of immediate lock errors.
pub async fn sqlite_pool(url: &str, max_connections: u32) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(opts)
        .await?)
}

/// Hides the password of a connection URL for messages and logs.
/// The numbered placeholders of a multi-row `VALUES` list: `($1, $2), ($3, $4)` for 2 rows of
/// 2 columns. Only these are spliced into SQL; every value is bound.
pub fn values_placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, values_placeholders};

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(values_placeholders(1, 3), "($1, $2, $3)");
        assert_eq!(values_placeholders(2, 2), "($1, $2), ($3, $4)");
    }

    #[test]
    fn redacts_password_only() {
        assert_eq!(
            redact_url("postgres://aisha:s3cret@db:5432/aisha"),
            "postgres://aisha:***@db:5432/aisha"
        );
        assert_eq!(redact_url("sqlite:data/aisha.db"), "sqlite:data/aisha.db");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
