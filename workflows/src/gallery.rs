//! The `gallery` table and its only owner: the portraits we generated and kept, one row per
//! image of a run, written by the portrait workflow (and its enlarged version beside it by
//! the upscale workflow), paged through and deleted by the bot.
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
    pub run_id: String,
    pub idx: i64,
    pub blob_key: String,
    /// Its enlarged version, once an upscale of it succeeded.
    pub upscaled_key: Option<String>,
}

impl Portrait {
    pub fn key(&self) -> Result<BlobKey, BadKey> {
        BlobKey::try_from(self.blob_key.clone())
    }

    pub fn upscaled(&self) -> Option<BlobKey> {
        self.upscaled_key
            .clone()
            .and_then(|k| BlobKey::try_from(k).ok())
    }
}

/// A portrait's enlarged version, stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upscaled<'a> {
    pub key: &'a BlobKey,
    pub width: u32,
    pub height: u32,
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
            "SELECT id, run_id, idx, blob_key, upscaled_key FROM gallery WHERE user_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(d)
        .await)?)
    }

    /// Image `idx` of run `run_id`, if it is the user's.
    pub async fn of_run(
        &self,
        user_id: &str,
        run_id: &str,
        idx: i64,
    ) -> Result<Option<Portrait>, GalleryError> {
        Ok(on_db!(&self.db, d => sqlx::query_as(
            "SELECT id, run_id, idx, blob_key, upscaled_key FROM gallery \
             WHERE user_id = $1 AND run_id = $2 AND idx = $3",
        )
        .bind(user_id)
        .bind(run_id)
        .bind(idx)
        .fetch_optional(d)
        .await)?)
    }

    /// Keeps the enlarged version of the user's portrait `id` beside it; false when the user
    /// has no such portrait (deleted meanwhile). Setting it again replaces it.
    pub async fn set_upscaled(
        &self,
        user_id: &str,
        id: &str,
        up: &Upscaled<'_>,
    ) -> Result<bool, GalleryError> {
        let set = on_db!(&self.db, d => sqlx::query(
            "UPDATE gallery SET upscaled_key = $1, upscaled_width = $2, upscaled_height = $3 \
             WHERE id = $4 AND user_id = $5",
        )
        .bind(up.key.as_str())
        .bind(i64::from(up.width))
        .bind(i64::from(up.height))
        .bind(id)
        .bind(user_id)
        .execute(d)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(set > 0)
    }

    /// Deletes the user's portrait `id`; returns its blobs' keys, the original's and the
    /// enlarged one's (the caller deletes the blobs), or None when the user has no such
    /// portrait.
    pub async fn delete(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<(String, Option<String>)>, GalleryError> {
        Ok(on_db!(&self.db, d => sqlx::query_as(
            "DELETE FROM gallery WHERE id = $1 AND user_id = $2 RETURNING blob_key, upscaled_key",
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
