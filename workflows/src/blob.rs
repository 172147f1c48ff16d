//! Where files live: the `BlobStore` port. Keys are built only from ids we generate — never
//! from user text — so a key is always a safe path and a safe S3 key.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// A blob's key: `/`-joined parts of `[A-Za-z0-9._-]`, none empty, none `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blob key: `{0}` (parts of A-Z a-z 0-9 . _ - joined by /)")]
pub struct BadKey(pub String);

impl BlobKey {
    pub fn new(parts: &[&str]) -> Result<BlobKey, BadKey> {
        BlobKey::try_from(parts.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlobKey {
    type Error = BadKey;

    fn try_from(s: String) -> Result<BlobKey, BadKey> {
        let ok = !s.is_empty()
            && s.len() <= 512
            && s.split('/').all(|p| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            });
        if ok { Ok(BlobKey(s)) } else { Err(BadKey(s)) }
    }
}

impl From<BlobKey> for String {
    fn from(k: BlobKey) -> String {
        k.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key a step builds from its run's ids, or reads from its own tables, is as bad on every
/// attempt: the step fails for good.
impl From<BadKey> for aisha_engine::StepError {
    fn from(e: BadKey) -> Self {
        aisha_engine::StepError::permanent(e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob {0}")]
    NotFound(BlobKey),
    /// The store did not answer or failed: worth retrying.
    #[error("blob store: {0}")]
    Unavailable(String),
}

/// A missing blob will not appear by trying again (its key comes from a run's own state), so
/// it fails the step for good; a store that does not answer is worth the step's retries.
impl From<BlobError> for aisha_engine::StepError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound(_) => aisha_engine::StepError::permanent(e),
            BlobError::Unavailable(_) => aisha_engine::StepError::retryable(e),
        }
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError>;
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError>;
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    /// Keys under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>, BlobError>;
    /// A URL an outside service can GET for `ttl`. It is a credential: never log it.
    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_ids_only() {
        assert!(BlobKey::new(&["avatars", "01J", "photo-1.jpg"]).is_ok());
        for bad in [
            "",
            "a//b",
            "../etc/passwd",
            "a/./b",
            "a b",
            "фото",
            "a?b",
            "/abs",
        ] {
            assert!(BlobKey::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_blob_fails_the_step_for_good_an_unavailable_store_is_retried() {
        use aisha_engine::StepError;
        let missing = BlobKey::new(&["avatars", "01J", "photo-1.jpg"]).unwrap();
        assert!(matches!(
            StepError::from(BlobError::NotFound(missing)),
            StepError::Permanent(m) if m.contains("avatars/01J/photo-1.jpg")
        ));
        assert!(matches!(
            StepError::from(BlobError::Unavailable("timeout".into())),
            StepError::Retryable(_)
        ));
    }
}
