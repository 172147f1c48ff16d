//! The local-folder blob store of the embedded default. Presigned URLs point at our own
//! HTTP server (`GET /blobs/{key}?expires=…&sig=…`), signed with an HMAC so only URLs we
//! issued are served, and only until they expire.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aisha_workflows::blob::{BlobError, BlobKey, BlobMeta, BlobStore};
use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    public_url: String,
    keyed: HmacSha256,
}

impl std::fmt::Debug for LocalBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBlobStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io(op: &str, e: std::io::Error) -> BlobError {
    BlobError::Unavailable(format!("local blob store {op}: {e}"))
}

impl LocalBlobStore {
    /// Files under `root`; URLs under `public_url` (this process's HTTP address).
    pub fn new(root: &Path, public_url: &str, secret: &[u8]) -> Result<LocalBlobStore, BlobError> {
        std::fs::create_dir_all(root).map_err(|e| io("create", e))?;
        let keyed = HmacSha256::new_from_slice(secret)
            .map_err(|e| BlobError::Unavailable(format!("blob URL key: {e}")))?;
        Ok(LocalBlobStore {
            root: root.to_path_buf(),
            public_url: public_url.trim_end_matches('/').to_string(),
            keyed,
        })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Whether a `/blobs/…` request carries a signature we issued that has not expired.
    pub fn check_url(&self, key: &str, expires: i64, sig: &str, now: i64) -> bool {
        expires >= now
            && hex::decode(sig)
                .map(|raw| self.mac(key, expires).verify_slice(&raw).is_ok())
                .unwrap_or(false)
    }

    fn content_type_path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(format!("{}.content-type", key.as_str()))
    }

    /// The stored file, open for reading, to be streamed out (a LoRA can be large: it is
    /// never read into memory whole). `None` when there is no such blob.
    pub async fn open(&self, key: &BlobKey) -> Result<Option<OpenBlob>, BlobError> {
        let file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", e)),
        };
        let meta = file.metadata().await.map_err(|e| io("stat", e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let content_type = tokio::fs::read_to_string(self.content_type_path(key))
            .await
            .ok();
        Ok(Some(OpenBlob {
            file,
            size: meta.len(),
            content_type,
        }))
    }
}

/// A blob being read: its size is the file's as opened, so a rename over it (a new `put`)
/// does not change what this reader sends.
pub struct OpenBlob {
    pub file: tokio::fs::File,
    pub size: u64,
    pub content_type: Option<String>,
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("mkdir", e))?;
        }
        // Write aside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", ulid::Ulid::generate()));
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(|e| io("write", e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io("rename", e))?;
        tokio::fs::write(self.content_type_path(key), content_type)
            .await
            .map_err(|e| io("write", e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.clone()))
            }
            Err(e) => Err(io("read", e)),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(BlobMeta {
                size: m.len(),
                content_type: tokio::fs::read_to_string(self.content_type_path(key))
                    .await
                    .ok(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("stat", e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        for p in [self.path(key), self.content_type_path(key)] {
            match tokio::fs::remove_file(p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("delete", e)),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let keys = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    let Ok(rel) = p.strip_prefix(&root) else {
                        continue;
                    };
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    if rel.starts_with(&prefix)
                        && !rel.ends_with(".content-type")
                        && !rel.contains(".tmp-")
                        && let Ok(k) = BlobKey::try_from(rel)
                    {
                        out.push(k);
                    }
                }
            }
            out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            out
        })
        .await
        .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        Ok(keys)
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        let expires = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
        let sig = hex::encode(self.mac(key.as_str(), expires).finalize().into_bytes());
        Ok(format!(
            "{}/blobs/{}?expires={expires}&sig={sig}",
            self.public_url,
            key.as_str()
        ))
    }
}
