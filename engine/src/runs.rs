//! The run row and the transitions that move it. Every transition is one conditional update
//! guarded by the run's dispatch generation (`seq`), so a stale or duplicated task, a worker
//! that lost its lease, or a concurrent operator action can never apply twice.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use sqlx::decode::Decode;
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::{ColumnIndex, Database, FromRow, Row, Type};

use crate::error::Result;
use crate::on_tx;
use crate::queue::{QueueBackend, StepTask, Txn};
use crate::time::now_ms;

/// The step name a run takes while its compensation runs.
pub const COMPENSATE: &str = "$compensate";

/// Where a run is. Stored as its lowercase name in `workflow_runs.status` (TEXT) and printed
/// the same way by the admin API and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    fn from_stored(s: &str) -> Result<RunStatus, UnknownValue> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownValue::Status(s.to_string()))
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error is what the value should have been, for a "expected …" message.
impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunStatus::from_stored(s).map_err(|_| {
            format!("one of pending, running, waiting, succeeded, failed, cancelled (got `{s}`)")
        })
    }
}

/// Compares with a status's stored name (`run.status == "waiting"`).
impl PartialEq<str> for RunStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a pending run has no task in the queue. Stored in `workflow_runs.held` (TEXT, NULL when
/// the run is not held) as `delay`, `subject` or `provider:<name>`, and printed that way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Held {
    /// Waiting for its retry backoff to pass (the scheduler dispatches it).
    Delay,
    /// Over its subject's concurrency limit (admitted when a sibling run ends).
    Subject,
    /// Waiting for a permit of this provider (admitted when one is given back).
    Provider(String),
}

impl Held {
    const PROVIDER_PREFIX: &'static str = "provider:";

    /// The stored text.
    pub fn as_text(&self) -> Cow<'static, str> {
        match self {
            Held::Delay => Cow::Borrowed("delay"),
            Held::Subject => Cow::Borrowed("subject"),
            Held::Provider(p) => Cow::Owned(format!("{}{p}", Self::PROVIDER_PREFIX)),
        }
    }

    fn from_stored(s: &str) -> Result<Held, UnknownValue> {
        match s {
            "delay" => Ok(Held::Delay),
            "subject" => Ok(Held::Subject),
            _ => s
                .strip_prefix(Self::PROVIDER_PREFIX)
                .map(|p| Held::Provider(p.to_string()))
                .ok_or_else(|| UnknownValue::Held(s.to_string())),
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl FromStr for Held {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Held::from_stored(s)
    }
}

/// As its stored text, like the column it comes from.
impl Serialize for Held {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A stored value that no variant names: reading it is an error, never a guess.
#[derive(Debug, thiserror::Error)]
pub enum UnknownValue {
    #[error(
        "unknown run status `{0}` (one of pending, running, waiting, succeeded, failed, cancelled)"
    )]
    Status(String),
    #[error("unknown hold `{0}` (one of delay, subject, provider:<name>)")]
    Held(String),
}

/// A row of `workflow_runs` that does not decode, with the run it belongs to.
#[derive(Debug, thiserror::Error)]
#[error("run {run}: {source}")]
pub struct BadRunRow {
    pub run: String,
    pub source: UnknownValue,
}

/// Both enums are TEXT on both databases: they take the type and decoding of `str` and
/// convert at the edge, so a query binds and reads them like any string.
macro_rules! text_type {
    ($t:ty) => {
        impl<DB: Database> Type<DB> for $t
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $t
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&'r str as Decode<'r, DB>>::decode(value)?;
                Ok(<$t>::from_stored(text)?)
            }
        }
    };
}

text_type!(RunStatus);
text_type!(Held);

impl<'q, DB: Database> Encode<'q, DB> for RunStatus
where
    &'static str: Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <&'static str as Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Held
where
    &'static str: Encode<'q, DB>,
    String: Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        match self.as_text() {
            Cow::Borrowed(s) => <&'static str as Encode<'q, DB>>::encode(s, buf),
            Cow::Owned(s) => <String as Encode<'q, DB>>::encode(s, buf),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub id: String,
    pub workflow: String,
    pub status: RunStatus,
    pub step: String,
    pub attempt: i64,
    pub seq: i64,
    pub state: String,
    pub subject: Option<String>,
    pub idempotency_key: Option<String>,
    pub parent_run_id: Option<String>,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    /// The status the run ends in once its compensation has run (failed or cancelled).
    pub final_status: Option<RunStatus>,
    pub callback_payload: Option<String>,
    pub wait_provider: Option<String>,
    pub wait_external_id: Option<String>,
    pub wake_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub poll_every_ms: Option<i64>,
    /// The last progress the workflow's hook reported while parked (JSON).
    pub progress: Option<String>,
    pub progress_at: Option<i64>,
    pub progress_every_ms: Option<i64>,
    pub lease_id: Option<String>,
    pub held: Option<Held>,
    pub permit: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// By hand rather than derived, so that a status or hold no variant names fails with the run
/// it belongs to and the text it has.
impl<'r, R> FromRow<'r, R> for RunRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let id: String = row.try_get("id")?;
        let bad = |column: &str, source: UnknownValue| sqlx::Error::ColumnDecode {
            index: format!("{column:?}"),
            source: Box::new(BadRunRow {
                run: id.clone(),
                source,
            }),
        };
        let status: String = row.try_get("status")?;
        let status = RunStatus::from_stored(&status).map_err(|e| bad("status", e))?;
        let final_status = row
            .try_get::<Option<String>, _>("final_status")?
            .map(|s| RunStatus::from_stored(&s))
            .transpose()
            .map_err(|e| bad("final_status", e))?;
        let held = row
            .try_get::<Option<String>, _>("held")?
            .map(|s| Held::from_stored(&s))
            .transpose()
            .map_err(|e| bad("held", e))?;
        Ok(RunRow {
            workflow: row.try_get("workflow")?,
            status,
            step: row.try_get("step")?,
            attempt: row.try_get("attempt")?,
            seq: row.try_get("seq")?,
            state: row.try_get("state")?,
            subject: row.try_get("subject")?,
            idempotency_key: row.try_get("idempotency_key")?,
            parent_run_id: row.try_get("parent_run_id")?,
            error: row.try_get("error")?,
            failed_step: row.try_get("failed_step")?,
            final_status,
            callback_payload: row.try_get("callback_payload")?,
            wait_provider: row.try_get("wait_provider")?,
            wait_external_id: row.try_get("wait_external_id")?,
            wake_at: row.try_get("wake_at")?,
            deadline_at: row.try_get("deadline_at")?,
            poll_every_ms: row.try_get("poll_every_ms")?,
            progress: row.try_get("progress")?,
            progress_at: row.try_get("progress_at")?,
            progress_every_ms: row.try_get("progress_every_ms")?,
            lease_id: row.try_get("lease_id")?,
            held,
            permit: row.try_get("permit")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
            id,
        })
    }
}

pub(crate) fn queue_name(namespace: &str, workflow: &str) -> String {
    format!("{namespace}.{workflow}")
}

pub(crate) async fn fetch_run(tx: &mut Txn, id: &str) -> Result<Option<RunRow>> {
    Ok(
        on_tx!(tx.conn(), c => sqlx::query_as::<_, RunRow>("SELECT * FROM workflow_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?,
    )
}

/// Records the end of the run's current attempt in the step timeline (first write wins).
pub(crate) async fn record_attempt(
    tx: &mut Txn,
    run: &RunRow,
    worker: &str,
    started_at: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    on_tx!(tx.conn(), c => sqlx::query(
        "INSERT INTO step_attempts (run_id, seq, step, attempt, worker, started_at, finished_at, outcome, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (run_id, seq) DO NOTHING",
    )
    .bind(&run.id)
    .bind(run.seq)
    .bind(&run.step)
    .bind(run.attempt)
    .bind(worker)
    .bind(started_at)
    .bind(now_ms())
    .bind(outcome)
    .bind(error)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves a run (that the caller has already moved to `seq`) to pending on `step` and queues
/// its task, or — with a delay — leaves it held for the scheduler.
pub(crate) async fn dispatch(
    queue: &QueueBackend,
    tx: &mut Txn,
    namespace: &str,
    workflow: &str,
    task: StepTask,
    delay_ms: i64,
) -> Result<()> {
    if delay_ms > 0 {
        let due = now_ms() + delay_ms;
        on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE workflow_runs SET held = $2, due_at = $3 WHERE id = $1",
        )
        .bind(&task.run_id)
        .bind(Held::Delay)
        .bind(due)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        return Ok(());
    }
    queue
        .stage(tx, &queue_name(namespace, workflow), task)
        .await
}

/// A pending run that should have a task in the queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Dispatchable {
    pub workflow: String,
    pub id: String,
    pub seq: i64,
    pub step: String,
    pub attempt: i64,
}

/// Queues a task for each run that is still pending at its `seq` and held for `held` (`None`:
/// not held), clearing the hold. Returns how many were queued.
pub(crate) async fn release(
    queue: &QueueBackend,
    namespace: &str,
    tx: &mut Txn,
    runs: Vec<Dispatchable>,
    held: Option<&Held>,
) -> Result<u64> {
    let mut n = 0;
    for r in runs {
        let changed = on_tx!(tx.conn(), c => sqlx::query(
            "UPDATE workflow_runs SET held = NULL, due_at = $3, updated_at = $3 \
             WHERE id = $1 AND seq = $2 AND status = 'pending' AND held IS NOT DISTINCT FROM $4",
        )
        .bind(&r.id)
        .bind(r.seq)
        .bind(now_ms())
        .bind(held)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if changed == 1 {
            let name = queue_name(namespace, &r.workflow);
            let task = StepTask {
                run_id: r.id,
                seq: r.seq,
                step: r.step,
                attempt: r.attempt,
            };
            queue.stage(tx, &name, task).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_they_are_written() {
        for st in RunStatus::ALL {
            assert_eq!(RunStatus::from_stored(st.as_str()).unwrap(), st);
            assert_eq!(st.as_str().parse::<RunStatus>().unwrap(), st);
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
            assert_eq!(st, st.as_str());
        }
        assert!(RunStatus::from_stored("Pending").is_err());
        assert!(
            "paused"
                .parse::<RunStatus>()
                .unwrap_err()
                .contains("`paused`")
        );
    }

    /// The schema's CHECK keeps unknown statuses out; a row that has one anyway (written by
    /// a newer version, or by hand) fails to read with its run and its text.
    #[tokio::test]
    async fn an_unknown_status_is_an_error_with_its_run() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        crate::db::Db::Sqlite(pool.clone()).migrate().await.unwrap();
        sqlx::raw_sql(
            "PRAGMA ignore_check_constraints = ON; \
             INSERT INTO workflow_runs (id, workflow, status, step, state, created_at, updated_at) \
             VALUES ('run-1', 'w', 'paused', 'one', '{}', 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let err = sqlx::query_as::<_, RunRow>("SELECT * FROM workflow_runs")
            .fetch_one(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run run-1") && err.contains("`paused`"),
            "{err}"
        );
        let err = sqlx::query_scalar::<_, RunStatus>("SELECT status FROM workflow_runs")
            .fetch_one(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown run status `paused`"), "{err}");
    }

    #[test]
    fn holds_read_back_as_they_are_written() {
        let all = [Held::Delay, Held::Subject, Held::Provider("fal".into())];
        for (h, text) in all.into_iter().zip(["delay", "subject", "provider:fal"]) {
            assert_eq!(h.as_text(), text);
            assert_eq!(h.to_string(), text);
            assert_eq!(serde_json::to_value(&h).unwrap(), text);
            assert_eq!(text.parse::<Held>().unwrap(), h);
        }
        for bad in ["", "Delay", "vacation", "provider"] {
            assert!(bad.parse::<Held>().is_err(), "{bad}");
        }
    }
}
