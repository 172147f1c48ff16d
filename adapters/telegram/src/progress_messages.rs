//! The `tg_progress_messages` table and its only owner: the message that accepted an order
//! or a training, remembered against its run with the text it shows and its buttons, so
//! [`crate::progress`] can edit it in place.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};
use teloxide::types::InlineKeyboardMarkup;

/// The accepted message of one run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProgressMessage {
    pub chat_id: i64,
    pub message_id: i64,
    /// What it shows now.
    pub text: String,
    /// Its buttons, as Telegram's JSON.
    pub keyboard: Option<String>,
    pub closed_at: Option<i64>,
}

impl ProgressMessage {
    pub(crate) fn keyboard(&self) -> Option<InlineKeyboardMarkup> {
        self.keyboard
            .as_deref()
            .and_then(|k| serde_json::from_str(k).ok())
    }
}

/// The `tg_progress_messages` table's store.
#[derive(Debug, Clone)]
pub struct ProgressMessages {
    db: Db,
}

impl ProgressMessages {
    pub fn new(db: Db) -> ProgressMessages {
        ProgressMessages { db }
    }

    /// Message `message_id` in `chat_id`, showing `text` over `keyboard`, accepted run
    /// `run_id`.
    pub async fn remember(
        &self,
        run_id: &str,
        chat_id: i64,
        message_id: i64,
        text: &str,
        keyboard: Option<&InlineKeyboardMarkup>,
    ) -> Result<(), sqlx::Error> {
        let keyboard = keyboard.and_then(|k| serde_json::to_string(k).ok());
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO tg_progress_messages (run_id, chat_id, message_id, text, keyboard, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(chat_id)
        .bind(message_id)
        .bind(text)
        .bind(&keyboard)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
    }

    pub async fn get(&self, run_id: &str) -> Result<Option<ProgressMessage>, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query_as(
            "SELECT chat_id, message_id, text, keyboard, closed_at FROM tg_progress_messages \
             WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(p)
        .await)
    }

    /// The message now shows `text`; `close`: for good.
    pub(crate) async fn shown(
        &self,
        run_id: &str,
        text: &str,
        close: bool,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE tg_progress_messages SET text = $2, \
             closed_at = CASE WHEN $3 THEN $4 ELSE closed_at END WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(text)
        .bind(close)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
    }
}
