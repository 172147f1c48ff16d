//! The update inbox: every update is committed here before Telegram is told we have it, and
//! marked handled after its handler ran. A crash in between leaves it unhandled: it is
//! handled after the restart. Telegram's redeliveries of one update id change nothing.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};
use teloxide::types::{Update, UpdateKind};

/// Stops trying an update that failed this many times (a poison message).
pub const MAX_ATTEMPTS: i64 = 5;

#[derive(Debug, Clone)]
pub struct Updates {
    db: Db,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredUpdate {
    pub update_id: i64,
    pub chat_id: i64,
    pub payload: String,
    pub attempts: i64,
}

/// What an update is, for metrics and the inbox.
pub fn kind(u: &Update) -> &'static str {
    match &u.kind {
        UpdateKind::Message(m) if m.successful_payment().is_some() => "payment",
        UpdateKind::Message(m) if m.photo().is_some() || m.document().is_some() => "file",
        UpdateKind::Message(_) => "message",
        UpdateKind::CallbackQuery(_) => "callback",
        UpdateKind::PreCheckoutQuery(_) => "pre_checkout",
        _ => "other",
    }
}

/// The chat an update belongs to (its handling order is per chat); the sender for updates
/// without a chat.
pub fn chat_of(u: &Update) -> i64 {
    u.chat()
        .map(|c| c.id.0)
        .or_else(|| u.from().map(|f| f.id.0 as i64))
        .unwrap_or(0)
}

impl Updates {
    pub fn new(db: Db) -> Updates {
        Updates { db }
    }

    /// Stores `updates` (raw JSON each, as Telegram sent it); returns how many were new.
    pub async fn store(&self, updates: &[(Update, String)]) -> Result<u64, sqlx::Error> {
        if updates.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut sql = String::from(
            "INSERT INTO tg_updates (update_id, chat_id, kind, payload, received_at) VALUES ",
        );
        sql.push_str(&aisha_engine::db::values_placeholders(updates.len(), 5));
        sql.push_str(" ON CONFLICT (update_id) DO NOTHING");
        on_db!(&self.db, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (u, raw) in updates {
                q = q
                    .bind(u.id.0 as i64)
                    .bind(chat_of(u))
                    .bind(kind(u))
                    .bind(raw)
                    .bind(now);
            }
            q.execute(p).await.map(|r| r.rows_affected())
        })
    }

    /// The highest update id stored, so polling resumes after it.
    pub async fn last_id(&self) -> Result<Option<i64>, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query_scalar("SELECT MAX(update_id) FROM tg_updates")
            .fetch_one(p)
            .await)
    }

    /// Unhandled updates above `after`, oldest first.
    pub async fn unhandled(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredUpdate>, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query_as(
            "SELECT update_id, chat_id, payload, attempts FROM tg_updates \
             WHERE handled_at IS NULL AND update_id > $1 ORDER BY update_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)
    }

    pub async fn handled(&self, update_id: i64) -> Result<(), sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE tg_updates SET handled_at = $2, attempts = attempts + 1 WHERE update_id = $1",
        )
        .bind(update_id)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
    }

    /// A failed attempt; after [`MAX_ATTEMPTS`] the update is given up (marked handled with
    /// its error kept).
    pub async fn failed(&self, update_id: i64, error: &str) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let gave_up: Option<i64> = on_db!(&self.db, p => sqlx::query_scalar(
            "UPDATE tg_updates SET attempts = attempts + 1, error = $2, \
             handled_at = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE NULL END \
             WHERE update_id = $1 RETURNING handled_at",
        )
        .bind(update_id)
        .bind(error)
        .bind(MAX_ATTEMPTS)
        .bind(now)
        .fetch_optional(p)
        .await)?
        .flatten();
        Ok(gave_up.is_some())
    }

    /// Forgets handled updates older than `age_ms`.
    pub async fn prune(&self, age_ms: i64) -> Result<u64, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(
            "DELETE FROM tg_updates WHERE handled_at IS NOT NULL AND handled_at < $1",
        )
        .bind(now_ms() - age_ms)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    }
}
