//! Telling the user: the `Notifier` port, and the outbox it writes to. One row per
//! (run, step, kind), so a retried step never sends twice; a delivery worker (the Telegram
//! adapter) sends the rows and marks them sent.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, StepError, on_db};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::blob::BlobKey;

/// What the user is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub user_id: String,
    /// What it is about, e.g. `avatar_ready`, `portraits`, `photos_rejected`.
    pub kind: String,
    pub text_ru: String,
    pub text_en: String,
    /// Images to send with it.
    #[serde(default)]
    pub images: Vec<BlobKey>,
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, run_id: &str, step: &str, notice: &Notice) -> Result<(), StepError>;
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub run_id: String,
    pub step: String,
    pub kind: String,
    pub user_id: String,
    pub payload: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    pub fn new(db: Db) -> Outbox {
        Outbox { db }
    }

    /// Rows for `user_id` (or everyone), newest first.
    pub async fn list(
        &self,
        user_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query_as(
            "SELECT id, run_id, step, kind, user_id, payload, created_at, sent_at FROM outbox \
             WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(p)
        .await)
    }
}

#[async_trait]
impl Notifier for Outbox {
    async fn notify(&self, run_id: &str, step: &str, notice: &Notice) -> Result<(), StepError> {
        let payload = serde_json::to_string(notice).map_err(StepError::permanent)?;
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO outbox (id, run_id, step, kind, user_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, step, kind) DO NOTHING",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(run_id)
        .bind(step)
        .bind(&notice.kind)
        .bind(&notice.user_id)
        .bind(payload)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StepError::retryable)?;
        Ok(())
    }
}
