//! The `avatars` table and its only owner: one row per training run (the avatar's id is its
//! run's id), written by the training workflow and read by the portrait workflow and the bot.

use std::time::Duration;

use aisha_engine::time::now_ms;
use aisha_engine::{Db, StepError, on_db};
use serde::{Deserialize, Serialize};

use crate::blob::BlobKey;

/// How many finished trainings a training's expected duration is the median of.
pub const RECENT_TRAININGS: i64 = 20;

/// How long (and so how well) an avatar is trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Fast,
    #[default]
    Balanced,
    Quality,
}

impl Preset {
    /// As stored and as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Fast => "fast",
            Preset::Balanced => "balanced",
            Preset::Quality => "quality",
        }
    }

    /// How long a training of this preset takes before any has finished here (FAL's trainer
    /// at its step count, plus its queue).
    pub fn expected(self) -> Duration {
        Duration::from_secs(match self {
            Preset::Fast => 5 * 60,
            Preset::Balanced => 10 * 60,
            Preset::Quality => 20 * 60,
        })
    }

    pub fn steps(self) -> u32 {
        match self {
            Preset::Fast => 1000,
            Preset::Balanced => 2500,
            Preset::Quality => 4000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AvatarsError {
    #[error("avatars: {0}")]
    Db(#[from] sqlx::Error),
    /// The table's CHECK allows three statuses; another one means the schema moved on.
    #[error("avatar {id} has an unknown status `{status}`")]
    UnknownStatus { id: String, status: String },
}

/// The database is worth a step's retries; a row the code cannot read is not.
impl From<AvatarsError> for StepError {
    fn from(e: AvatarsError) -> Self {
        match e {
            AvatarsError::Db(_) => StepError::retryable(e),
            AvatarsError::UnknownStatus { .. } => StepError::permanent(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AvatarStatus {
    Training,
    Ready,
    Failed,
}

impl AvatarStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AvatarStatus::Training => "training",
            AvatarStatus::Ready => "ready",
            AvatarStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<AvatarStatus> {
        match s {
            "training" => Some(AvatarStatus::Training),
            "ready" => Some(AvatarStatus::Ready),
            "failed" => Some(AvatarStatus::Failed),
            _ => None,
        }
    }
}

/// An avatar whose training has its photos checked and zipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAvatar<'a> {
    /// The training run's id.
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub trigger_phrase: &'a str,
    pub preset: Preset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Avatar {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub trigger_phrase: String,
    pub status: AvatarStatus,
    /// Where the trained LoRA is, once ready.
    pub lora_key: Option<String>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    name: String,
    trigger_phrase: String,
    status: String,
    lora_key: Option<String>,
    created_at: i64,
}

impl TryFrom<Row> for Avatar {
    type Error = AvatarsError;

    fn try_from(r: Row) -> Result<Avatar, AvatarsError> {
        let status = AvatarStatus::parse(&r.status).ok_or_else(|| AvatarsError::UnknownStatus {
            id: r.id.clone(),
            status: r.status.clone(),
        })?;
        Ok(Avatar {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            trigger_phrase: r.trigger_phrase,
            status,
            lora_key: r.lora_key,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Avatars {
    db: Db,
}

impl Avatars {
    pub fn new(db: Db) -> Avatars {
        Avatars { db }
    }

    /// Records an avatar in training. Once per id: a retried step changes nothing, and
    /// returns false.
    pub async fn create(&self, a: &NewAvatar<'_>) -> Result<bool, AvatarsError> {
        let now = now_ms();
        let added = on_db!(&self.db, d => sqlx::query(
            "INSERT INTO avatars (id, user_id, name, trigger_phrase, preset, steps, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'training', $7, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(a.id)
        .bind(a.user_id)
        .bind(a.name)
        .bind(a.trigger_phrase)
        .bind(a.preset.as_str())
        .bind(i64::from(a.preset.steps()))
        .bind(now)
        .execute(d)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(added > 0)
    }

    /// The training delivered `lora`.
    pub async fn ready(&self, id: &str, lora: &BlobKey) -> Result<(), AvatarsError> {
        on_db!(&self.db, d => sqlx::query(
            "UPDATE avatars SET status = 'ready', lora_key = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(lora.as_str())
        .bind(now_ms())
        .execute(d)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The training failed for `error`. Only an avatar still training: a ready one stays
    /// ready whatever a late compensation says.
    pub async fn failed(&self, id: &str, error: &str) -> Result<(), AvatarsError> {
        on_db!(&self.db, d => sqlx::query(
            "UPDATE avatars SET status = 'failed', error = $2, updated_at = $3 WHERE id = $1 AND status = 'training'",
        )
        .bind(id)
        .bind(error)
        .bind(now_ms())
        .execute(d)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Avatar>, AvatarsError> {
        let row: Option<Row> = on_db!(&self.db, d => sqlx::query_as(
            "SELECT id, user_id, name, trigger_phrase, status, lora_key, created_at \
             FROM avatars WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(d)
        .await)?;
        row.map(Avatar::try_from).transpose()
    }

    /// How long a training of `preset` takes: the median of the last [`RECENT_TRAININGS`]
    /// that finished (ready, from the avatar's creation to its LoRA), or the preset's
    /// expectation when none has.
    pub async fn typical_training(&self, preset: Preset) -> Result<Duration, AvatarsError> {
        let mut took: Vec<i64> = on_db!(&self.db, d => sqlx::query_scalar(
            "SELECT updated_at - created_at FROM avatars WHERE preset = $1 AND status = 'ready' \
             ORDER BY updated_at DESC LIMIT $2",
        )
        .bind(preset.as_str())
        .bind(RECENT_TRAININGS)
        .fetch_all(d)
        .await)?;
        took.sort_unstable();
        Ok(match took.get(took.len() / 2) {
            Some(ms) => Duration::from_millis(u64::try_from(*ms).unwrap_or_default()),
            None => preset.expected(),
        })
    }

    /// The user's latest `limit` avatars, newest first.
    pub async fn of_user(&self, user_id: &str, limit: i64) -> Result<Vec<Avatar>, AvatarsError> {
        let rows: Vec<Row> = on_db!(&self.db, d => sqlx::query_as(
            "SELECT id, user_id, name, trigger_phrase, status, lora_key, created_at \
             FROM avatars WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(d)
        .await)?;
        rows.into_iter().map(Avatar::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_is_stored_as_it_is_serialised() {
        for p in [Preset::Fast, Preset::Balanced, Preset::Quality] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
