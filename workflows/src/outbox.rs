//! Telling the user: the `Notifier` port, and the outbox it writes to. One row per
//! (run, step, kind), so a retried step never sends twice; a delivery worker (the Telegram
//! adapter) claims the rows, sends them and records how it went through this store, the
//! table's only owner.

use std::time::Duration;

use aisha_engine::time::now_ms;
use aisha_engine::{Db, StepError, on_db};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::blob::BlobKey;
use crate::notice::Notice;

/// The step of a run's progress row: one per run, whichever step reports it.
pub const PROGRESS_STEP: &str = "progress";

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Tells `user_id` `notice`, once per (run, step, kind). A [`Notice::Progress`] is the
    /// exception: it replaces the run's previous progress (latest wins), and is sent again
    /// if it differs from what was sent.
    async fn notify(
        &self,
        run_id: &str,
        step: &str,
        user_id: &str,
        notice: &Notice,
    ) -> Result<(), StepError>;
}

/// A row's payload. Rows are written as a typed [`Notice`] (`{"notice": "avatar_ready", …}`)
/// for the bot to render in the user's language. Rows written before notices were typed
/// carry the workflow's own texts instead (`{"text_ru", "text_en", "images", …}`); an
/// upgrade can find some of them unsent (queued, or waiting to be retried), so they are
/// still read and delivered as written. The two forms share no field, so a payload is one
/// or the other by whether it has `notice`; the old form can go once no unsent row has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Notice(Notice),
    Rendered(Rendered),
}

/// A notice as a workflow rendered it before notices were typed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rendered {
    pub text_ru: String,
    pub text_en: String,
    #[serde(default)]
    pub images: Vec<BlobKey>,
}

impl Payload {
    pub fn decode(payload: &str) -> Result<Payload, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(payload)?;
        if v.get("notice").is_some() {
            serde_json::from_value(v).map(Payload::Notice)
        } else {
            serde_json::from_value(v).map(Payload::Rendered)
        }
    }
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

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox: {0}")]
    Db(#[from] sqlx::Error),
}

/// The database is worth a step's retries.
impl From<OutboxError> for StepError {
    fn from(e: OutboxError) -> Self {
        StepError::retryable(e)
    }
}

/// A row claimed by a delivery worker: no other worker takes it until the claim runs out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: String,
    pub run_id: String,
    pub kind: String,
    pub user_id: String,
    pub payload: String,
    /// How many parts of it were sent already (an album and its buttons are two).
    pub progress: i64,
    /// Claims so far, this one included.
    pub attempts: i64,
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
    ) -> Result<Vec<OutboxRow>, OutboxError> {
        Ok(on_db!(&self.db, p => sqlx::query_as(
            "SELECT id, run_id, step, kind, user_id, payload, created_at, sent_at FROM outbox \
             WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }

    /// When run `run_id` queued its notice of `kind`, if it did.
    pub async fn queued_at(&self, run_id: &str, kind: &str) -> Result<Option<i64>, OutboxError> {
        Ok(on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT MIN(created_at) FROM outbox WHERE run_id = $1 AND kind = $2",
        )
        .bind(run_id)
        .bind(kind)
        .fetch_one(p)
        .await)?)
    }

    /// Claims up to `limit` rows that are due (oldest first) for `hold`. Each is claimed
    /// with a conditional update, so two workers never both take one.
    pub async fn claim(&self, hold: Duration, limit: i64) -> Result<Vec<Claimed>, OutboxError> {
        let now = now_ms();
        let ids: Vec<String> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY created_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<Claimed> = on_db!(&self.db, p => sqlx::query_as(
                "UPDATE outbox SET claimed_until = $2, attempts = attempts + 1 \
                 WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < $3) \
                 RETURNING id, run_id, kind, user_id, payload, progress, attempts",
            )
            .bind(&id)
            .bind(now.saturating_add(millis(hold)))
            .bind(now)
            .fetch_optional(p)
            .await)?;
            rows.extend(row);
        }
        Ok(rows)
    }

    /// Every part of row `id`, as `payload`, was sent. A progress row whose payload was
    /// replaced meanwhile stays due, so the newer progress is sent too.
    pub async fn sent(&self, id: &str, payload: &str) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE outbox SET sent_at = CASE WHEN payload = $3 THEN $2 ELSE NULL END, \
             claimed_until = NULL, last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms())
        .bind(payload)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Row `id` will never be sent (undeliverable, unreadable, or out of attempts).
    pub async fn given_up(&self, id: &str, error: &str) -> Result<(), OutboxError> {
        self.end(id, Some(error)).await
    }

    async fn end(&self, id: &str, error: Option<&str>) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE outbox SET failed_at = $2, claimed_until = NULL, last_error = $3 WHERE id = $1",
        )
            .bind(id)
            .bind(now_ms())
            .bind(error)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Row `id` failed for `error`: released, and due again `after` from now.
    pub async fn retry_after(
        &self,
        id: &str,
        after: Duration,
        error: &str,
    ) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, next_at = $2, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms().saturating_add(millis(after)))
        .bind(error)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The first `progress` parts of row `id` were sent: a retry resumes after them.
    pub async fn advance(&self, id: &str, progress: i64) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query("UPDATE outbox SET progress = $2 WHERE id = $1")
            .bind(id)
            .bind(progress)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Notifier for Outbox {
    async fn notify(
        &self,
        run_id: &str,
        step: &str,
        user_id: &str,
        notice: &Notice,
    ) -> Result<(), StepError> {
        let payload = serde_json::to_string(notice).map_err(StepError::permanent)?;
        if matches!(notice, Notice::Progress { .. }) {
            self.replace(run_id, user_id, &payload).await?;
        } else {
            self.insert(run_id, step, user_id, &notice.kind(), &payload)
                .await?;
        }
        Ok(())
    }
}

impl Outbox {
    /// Once per (run, step, kind): a retried step adds nothing.
    async fn insert(
        &self,
        run_id: &str,
        step: &str,
        user_id: &str,
        kind: &str,
        payload: &str,
    ) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO outbox (id, run_id, step, kind, user_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, step, kind) DO NOTHING",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(run_id)
        .bind(step)
        .bind(kind)
        .bind(user_id)
        .bind(payload)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

impl Outbox {
    /// The run's one progress row, replaced by a newer progress and due again (a failed or
    /// given-up older one included); the same progress again changes nothing.
    async fn replace(&self, run_id: &str, user_id: &str, payload: &str) -> Result<(), OutboxError> {
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO outbox (id, run_id, step, kind, user_id, payload, created_at) \
             VALUES ($1, $2, $3, 'progress', $4, $5, $6) ON CONFLICT (run_id, step, kind) DO UPDATE \
             SET payload = excluded.payload, sent_at = NULL, failed_at = NULL, attempts = 0, \
             progress = 0, next_at = 0, last_error = NULL WHERE outbox.payload <> excluded.payload",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(run_id)
        .bind(PROGRESS_STEP)
        .bind(user_id)
        .bind(payload)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_either_form_is_read() {
        let typed = Notice::AvatarFailed {
            name: "Me".into(),
            refunded: 150,
        };
        let row = serde_json::to_string(&typed).unwrap();
        assert_eq!(Payload::decode(&row).unwrap(), Payload::Notice(typed));
        // As a workflow wrote it before notices were typed.
        let old = r#"{"user_id":"42","kind":"portraits","text_ru":"Готово: 1 портрет(а).",
            "text_en":"Done: 1 portrait(s).","images":["portraits/r1/0.jpg"]}"#;
        assert_eq!(
            Payload::decode(old).unwrap(),
            Payload::Rendered(Rendered {
                text_ru: "Готово: 1 портрет(а).".into(),
                text_en: "Done: 1 portrait(s).".into(),
                images: vec![BlobKey::new(&["portraits", "r1", "0.jpg"]).unwrap()],
            })
        );
        assert!(Payload::decode(r#"{"notice":"no_such_notice"}"#).is_err());
        assert!(Payload::decode("not json").is_err());
    }
}
