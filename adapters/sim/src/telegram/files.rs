//! Files the simulator knows: users' uploads and the bot's, addressable by file id (to
//! re-send or getFile) and by file path (to download).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::model::SentFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Photo,
    Document,
}

impl FileKind {
    /// As Telegram names the type in "can't use file of type X as Y".
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Photo => "Photo",
            FileKind::Document => "Document",
        }
    }
}

/// A file whose metadata is computed (hashing and reading the image header take a while on
/// big files, so this happens before the state lock is taken).
pub(crate) struct Prepared {
    kind: FileKind,
    bytes: Bytes,
    file_name: Option<String>,
    mime_type: Option<String>,
    sha256: String,
    dimensions: Option<(u32, u32)>,
    ext: String,
}

impl Prepared {
    pub fn new(
        kind: FileKind,
        bytes: Bytes,
        file_name: Option<String>,
        mime_type: Option<String>,
    ) -> Prepared {
        let format = image::guess_format(&bytes).ok();
        let dimensions = format.and_then(|_| dimensions(&bytes));
        let from_name = file_name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| {
                !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric())
            });
        let sniffed = format.and_then(|f| f.extensions_str().first().copied());
        let ext = match kind {
            FileKind::Photo => sniffed.unwrap_or("jpg").to_string(),
            FileKind::Document => from_name
                .or(sniffed.map(str::to_string))
                .unwrap_or_else(|| "bin".into()),
        };
        let mime_type = mime_type
            .filter(|m| !m.is_empty())
            .or_else(|| format.map(|f| f.to_mime_type().to_string()));
        Prepared {
            sha256: hex::encode(Sha256::digest(&bytes)),
            kind,
            bytes,
            file_name: file_name.filter(|n| !n.is_empty()),
            mime_type,
            dimensions,
            ext,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.dimensions
    }
}

/// Width and height from the image header, without decoding the pixels.
pub(crate) fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

#[derive(Debug)]
pub(crate) struct StoredFile {
    pub file_id: String,
    pub unique_id: String,
    pub path: String,
    pub kind: FileKind,
    pub bytes: Bytes,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: String,
    pub dimensions: Option<(u32, u32)>,
}

impl StoredFile {
    fn meta(&self) -> Value {
        json!({"file_id": self.file_id, "file_unique_id": self.unique_id, "file_size": self.bytes.len()})
    }

    /// The `photo` array of a message: one size, the original (0×0 if it is no image).
    pub fn photo_sizes(&self) -> Value {
        let (w, h) = self.dimensions.unwrap_or((0, 0));
        let mut size = self.meta();
        size["width"] = json!(w);
        size["height"] = json!(h);
        json!([size])
    }

    pub fn document(&self) -> Value {
        let mut doc = self.meta();
        if let Some(n) = &self.file_name {
            doc["file_name"] = json!(n);
        }
        if let Some(m) = &self.mime_type {
            doc["mime_type"] = json!(m);
        }
        doc
    }

    /// The `File` object of getFile.
    pub fn file(&self) -> Value {
        let mut f = self.meta();
        f["file_path"] = json!(self.path);
        f
    }

    pub fn sent(&self, field: impl Into<String>) -> SentFile {
        SentFile {
            field: field.into(),
            file_id: self.file_id.clone(),
            file_name: self.file_name.clone(),
            bytes: self.bytes.len(),
            sha256: self.sha256.clone(),
            content_type: self.mime_type.clone(),
            width: self.dimensions.map(|d| d.0),
            height: self.dimensions.map(|d| d.1),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct FileStore {
    by_id: HashMap<String, Arc<StoredFile>>,
    by_path: HashMap<String, Arc<StoredFile>>,
    count: u64,
}

impl FileStore {
    pub fn insert(&mut self, p: Prepared) -> Arc<StoredFile> {
        self.count += 1;
        let n = self.count;
        let (prefix, dir) = match p.kind {
            FileKind::Photo => ("AgAC", "photos"),
            FileKind::Document => ("BQAC", "documents"),
        };
        // Unique per upload like Telegram's ids; the unique id follows the content instead,
        // so the same bytes sent twice share it (duplicate detection relies on that).
        let file = Arc::new(StoredFile {
            file_id: format!("{prefix}{}{n}", ulid::Ulid::generate()),
            unique_id: p.sha256.chars().take(16).collect(),
            path: format!("{dir}/file_{n}.{}", p.ext),
            kind: p.kind,
            bytes: p.bytes,
            file_name: p.file_name,
            mime_type: p.mime_type,
            sha256: p.sha256,
            dimensions: p.dimensions,
        });
        self.by_id.insert(file.file_id.clone(), file.clone());
        self.by_path.insert(file.path.clone(), file.clone());
        file
    }

    pub fn get(&self, file_id: &str) -> Option<Arc<StoredFile>> {
        self.by_id.get(file_id).cloned()
    }

    pub fn at_path(&self, path: &str) -> Option<Arc<StoredFile>> {
        self.by_path.get(path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Bytes {
        let img = image::RgbImage::new(w, h);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        Bytes::from(out.into_inner())
    }

    #[test]
    fn same_bytes_share_the_unique_id_only() {
        let mut store = FileStore::default();
        let a = store.insert(Prepared::new(FileKind::Photo, png(3, 2), None, None));
        let b = store.insert(Prepared::new(FileKind::Photo, png(3, 2), None, None));
        assert_ne!(a.file_id, b.file_id);
        assert_eq!(a.unique_id, b.unique_id);
        assert_eq!(a.unique_id.len(), 16);
        assert_eq!(a.dimensions, Some((3, 2)));
        assert!(a.path.starts_with("photos/") && a.path.ends_with(".png"));
        assert_eq!(
            store.at_path(&b.path).map(|f| f.file_id.clone()),
            Some(b.file_id.clone())
        );
    }

    #[test]
    fn documents_keep_their_name_and_unknown_bytes_have_no_size() {
        let mut store = FileStore::default();
        let d = store.insert(Prepared::new(
            FileKind::Document,
            Bytes::from_static(b"not an image"),
            Some("notes.TXT".into()),
            None,
        ));
        assert!(d.path.ends_with(".txt"));
        assert_eq!(d.dimensions, None);
        assert_eq!(d.photo_sizes()[0]["width"], 0);
        assert_eq!(d.document()["file_name"], "notes.TXT");
    }
}
