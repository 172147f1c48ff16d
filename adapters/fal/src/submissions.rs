//! The record of what we submitted to FAL. FAL's submit has no idempotency key, so the intent
//! is written before the POST and the request id right after it; a retried step finds its own
//! submission instead of paying twice. One open submission per (run, step); it is closed when
//! the step's wait is over, so an operator's retry of that step submits afresh.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};

use super::client::Submitted;

#[derive(Debug, thiserror::Error)]
#[error("FAL submissions table: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// One submission of one step of one run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Submission {
    pub id: String,
    pub run_id: String,
    pub step: String,
    pub app: String,
    pub request_id: Option<String>,
    pub status_url: Option<String>,
    pub response_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// `SELECT <every column> FROM fal_submissions <tail>`, as a static string.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, run_id, step, app, request_id, status_url, response_url, cancel_url \
             FROM fal_submissions ",
            $tail
        )
    };
}

#[derive(Debug, Clone)]
pub struct Submissions {
    db: Db,
}

impl Submissions {
    pub fn new(db: Db) -> Submissions {
        Submissions { db }
    }

    /// The open submission of (run, step), creating the intent if there is none.
    pub async fn intent(
        &self,
        run_id: &str,
        step: &str,
        app: &str,
    ) -> Result<Submission, StoreError> {
        let id = ulid::Ulid::generate().to_string();
        let now = now_ms();
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO fal_submissions (id, run_id, step, app, intent_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (run_id, step) WHERE closed_at IS NULL DO NOTHING",
        )
        .bind(&id)
        .bind(run_id)
        .bind(step)
        .bind(app)
        .bind(now)
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        Ok(
            on_db!(&self.db, p => sqlx::query_as(select!("WHERE run_id = $1 AND step = $2 AND closed_at IS NULL")).bind(run_id).bind(step).fetch_one(p).await)?,
        )
    }

    /// Right after FAL answered the submit.
    pub async fn record(&self, id: &str, s: &Submitted) -> Result<(), StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE fal_submissions SET request_id = $2, status_url = $3, response_url = $4, \
             cancel_url = $5, submitted_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&s.request_id)
        .bind(&s.status_url)
        .bind(&s.response_url)
        .bind(&s.cancel_url)
        .bind(now_ms())
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A callback for (run, step) arrived while the open submission has no request id yet
    /// (the submitting worker died between FAL's answer and `record`): adopt FAL's id, so the
    /// retried step waits for it instead of submitting again.
    pub async fn adopt(
        &self,
        run_id: &str,
        step: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        let n = on_db!(&self.db, p => sqlx::query(
            "UPDATE fal_submissions SET request_id = $3, submitted_at = $4 \
             WHERE run_id = $1 AND step = $2 AND closed_at IS NULL AND request_id IS NULL",
        )
        .bind(run_id)
        .bind(step)
        .bind(request_id)
        .bind(now_ms())
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The wait of (run, step) is over.
    pub async fn close(&self, run_id: &str, step: &str) -> Result<(), StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE fal_submissions SET closed_at = $3 WHERE run_id = $1 AND step = $2 AND closed_at IS NULL",
        )
        .bind(run_id)
        .bind(step)
        .bind(now_ms())
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn by_request(&self, request_id: &str) -> Result<Option<Submission>, StoreError> {
        Ok(
            on_db!(&self.db, p => sqlx::query_as(select!("WHERE request_id = $1")).bind(request_id).fetch_optional(p).await)?,
        )
    }

    /// Every submission of a run, oldest first.
    pub async fn of_run(&self, run_id: &str) -> Result<Vec<Submission>, StoreError> {
        Ok(
            on_db!(&self.db, p => sqlx::query_as(select!("WHERE run_id = $1 ORDER BY id")).bind(run_id).fetch_all(p).await)?,
        )
    }
}
