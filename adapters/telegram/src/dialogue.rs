//! What the bot is asking a chat for: explicit dialogue states, kept in our database (so a
//! restarted bot carries on where the user was).

use std::collections::BTreeMap;

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};
use aisha_workflows::avatar::Preset;
use aisha_workflows::blob::BlobKey;
use aisha_workflows::provider::Aspect;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    #[default]
    Idle,
    /// Create avatar: waiting for its name.
    AvatarName,
    /// … for the training preset.
    AvatarPreset { name: String },
    /// … for 10–20 photos.
    AvatarPhotos {
        name: String,
        preset: Preset,
        /// Names this upload: the idempotency key of the training it starts.
        upload: String,
        photos: Vec<Uploaded>,
    },
    /// A training refused some photos: waiting for replacements of `slots`.
    Replacing {
        run_id: String,
        round: u32,
        slots: Vec<usize>,
        filled: BTreeMap<usize, BlobKey>,
    },
    /// Generate: waiting for a free-text prompt.
    Prompt { avatar_id: String },
    /// Generate: the order so far.
    Order {
        avatar_id: String,
        style: Option<String>,
        prompt: Option<String>,
        aspect: Option<Aspect>,
    },
}

/// A photo the user sent, stored as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    pub key: BlobKey,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct Dialogues {
    db: Db,
}

impl Dialogues {
    pub fn new(db: Db) -> Dialogues {
        Dialogues { db }
    }

    /// The chat's state; `Idle` when there is none (or it no longer parses).
    pub async fn get(&self, chat_id: i64) -> Result<State, sqlx::Error> {
        let raw: Option<String> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT state FROM tg_dialogues WHERE chat_id = $1",
        )
        .bind(chat_id)
        .fetch_optional(p)
        .await)?;
        Ok(raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }

    pub async fn set(&self, chat_id: i64, state: &State) -> Result<(), sqlx::Error> {
        if *state == State::Idle {
            return on_db!(&self.db, p => sqlx::query("DELETE FROM tg_dialogues WHERE chat_id = $1")
                .bind(chat_id)
                .execute(p)
                .await
                .map(|_| ()));
        }
        // A state that cannot be written is an error for the handler, never an empty row
        // that would read back as `Idle` and silently drop the user's place in the dialogue.
        let raw = serde_json::to_string(state).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO tg_dialogues (chat_id, state, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(chat_id)
        .bind(raw)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
    }
}
