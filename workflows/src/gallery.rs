//! The `gallery` table and its only owner: the portraits we generated and kept, one row per
//! image of a run, written by the portrait workflow, paged through and deleted by the bot.
//! Every read and delete is scoped to one user: nobody sees or deletes another's portraits.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, StepError, on_db};

use crate::blob::{BadKey, BlobKey};

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("gallery: {0}")]
    Db(#[from] sqlx::Error),
}

/// The database is worth a step's retries.
impl From<GalleryError> for StepError {
    fn from(e: GalleryError) -> Self {
        StepError::retryable(e)
    }
}

/// One image of a run, stored in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortrait<'a> {
    pub user_id: &'a str,
    pub avatar_id: &'a str,
    pub run_id: &'a str,
    /// Its place among the run's images.
    pub idx: usize,
    pub key: &'a BlobKey,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub content_type: &'a str,
    pub bytes: usize,
    pub prompt: &'a str,
}

/// A portrait as the gallery shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Portrait {
    pub id: String,
    pub blob_key: String,
}

impl Portrait {
    pub fn key(&self) -> Result<BlobKey, BadKey> {
        BlobKey::try_from(self.blob_key.clone())
    }
}

#[derive(Debug, Clone)]
pub struct Gallery {
    db: Db,
}

impl Gallery {
    pub fn new(db: Db) -> Gallery {
        Gallery { db }
    }

    /// Keeps one image. Once per (run, image): a retried step adds nothing, and gets false.
    pub async fn add(&self, p: &NewPortrait<'_>) -> Result<bool, GalleryError> {
        let added = on_db!(&self.db, d => sqlx::query(
            "INSERT INTO gallery (id, user_id, avatar_id, run_id, idx, blob_key, width, height, content_type, bytes, prompt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (run_id, idx) DO NOTHING",
        )
        .bind(ulid::Ulid::generate().to_string())
        .bind(p.user_id)
        .bind(p.avatar_id)
        .bind(p.run_id)
        .bind(p.idx as i64)
        .bind(p.key.as_str())
        .bind(p.width.map(i64::from))
        .bind(p.height.map(i64::from))
        .bind(p.content_type)
        .bind(p.bytes as i64)
        .bind(p.prompt)
        .bind(now_ms())
        .execute(d)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(added > 0)
    }

    /// The user's portraits, newest first: `limit` of them after the first `offset`.
    pub async fn page(
        &self,
        user_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Portrait>, GalleryError> {
        Ok(on_db!(&self.db, d => sqlx::query_as(
            "SELECT id, blob_key FROM gallery WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(d)
        .await)?)
    }

    /// Deletes the user's portrait `id`; returns its blob's key (the caller deletes the
    /// blob), or None when the user has no such portrait.
    pub async fn delete(&self, user_id: &str, id: &str) -> Result<Option<String>, GalleryError> {
        Ok(on_db!(&self.db, d => sqlx::query_scalar(
            "DELETE FROM gallery WHERE id = $1 AND user_id = $2 RETURNING blob_key",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(d)
        .await)?)
    }

    /// How many portraits run `run_id` kept.
    pub async fn count_of_run(&self, run_id: &str) -> Result<i64, GalleryError> {
        Ok(on_db!(&self.db, d => sqlx::query_scalar(
            "SELECT COUNT(*) FROM gallery WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(d)
        .await)?)
    }
}
