//! Photos, documents, albums and getFile, with Telegram's size and dimension limits.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::messages::{caption, reply_markup, reply_to};
use super::{Reply, message_id};
use crate::telegram::Shared;
use crate::telegram::error::ApiError;
use crate::telegram::files::{FileKind, Prepared, StoredFile};
use crate::telegram::params::{InputRef, Params};

const MB: usize = 1024 * 1024;
const MAX_PHOTO: usize = 10 * MB;
const MAX_PHOTO_BY_URL: usize = 5 * MB;
const MAX_UPLOAD: usize = 50 * MB;
const MAX_BY_URL: usize = 20 * MB;
/// getFile refuses bigger files.
const MAX_DOWNLOAD: usize = 20 * MB;

/// A file a call names: new bytes to register, or one the simulator already has.
enum Resolved {
    New(Prepared),
    Known(Arc<StoredFile>),
}

async fn prepare(
    kind: FileKind,
    bytes: Bytes,
    name: Option<String>,
    ctype: Option<String>,
) -> Result<Prepared, ApiError> {
    tokio::task::spawn_blocking(move || Prepared::new(kind, bytes, name, ctype))
        .await
        .map_err(|e| ApiError::bad(format!("can't process file: {e}")))
}

async fn fetch(s: &Shared, url: &str, max: usize) -> Result<(Bytes, Option<String>), ApiError> {
    let failed = || ApiError::bad("failed to get HTTP URL content");
    let resp = s.http.get(url).send().await.map_err(|_| failed())?;
    if !resp.status().is_success() {
        return Err(failed());
    }
    let bytes = resp.bytes().await.map_err(|_| failed())?;
    if bytes.len() > max {
        return Err(ApiError::bad("file is too big"));
    }
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Ok((bytes, name))
}

async fn resolve(s: &Shared, input: InputRef, kind: FileKind) -> Result<Resolved, ApiError> {
    let (max_upload, max_url, too_big) = match kind {
        FileKind::Photo => (
            MAX_PHOTO,
            MAX_PHOTO_BY_URL,
            ApiError::bad("file is too big"),
        ),
        FileKind::Document => (MAX_UPLOAD, MAX_BY_URL, ApiError::TooLarge),
    };
    match input {
        InputRef::Upload(u) => {
            if u.bytes.len() > max_upload {
                return Err(too_big);
            }
            Ok(Resolved::New(
                prepare(kind, u.bytes, u.file_name, u.content_type).await?,
            ))
        }
        InputRef::Url(url) => {
            let (bytes, name) = fetch(s, &url, max_url).await?;
            Ok(Resolved::New(prepare(kind, bytes, name, None).await?))
        }
        InputRef::FileId(id) => {
            let file = s
                .state()
                .files
                .get(&id)
                .ok_or_else(|| ApiError::bad("wrong file identifier/HTTP URL specified"))?;
            if file.kind != kind {
                return Err(ApiError::bad(format!(
                    "can't use file of type {} as {}",
                    file.kind.label(),
                    kind.label()
                )));
            }
            Ok(Resolved::Known(file))
        }
    }
}

/// Telegram re-encodes photos and refuses what it cannot: undecodable images, and sides
/// summing over 10000 or a ratio over 20.
fn check_photo(r: &Resolved) -> Result<(), ApiError> {
    let Resolved::New(p) = r else {
        return Ok(());
    };
    if p.len() == 0 {
        return Err(ApiError::bad("file must be non-empty"));
    }
    let (w, h) = p
        .dimensions()
        .ok_or_else(|| ApiError::bad("IMAGE_PROCESS_FAILED"))?;
    let (long, short) = (w.max(h), w.min(h).max(1));
    if w + h > 10_000 || long / short > 20 {
        return Err(ApiError::bad("PHOTO_INVALID_DIMENSIONS"));
    }
    Ok(())
}

fn register(s: &Shared, r: Resolved) -> Arc<StoredFile> {
    match r {
        Resolved::Known(f) => f,
        Resolved::New(p) => s.state().files.insert(p),
    }
}

fn media_content(file: &StoredFile, kind: FileKind, p: &Params) -> Map<String, Value> {
    let mut content = Map::new();
    match kind {
        FileKind::Photo => {
            content.insert("photo".into(), file.photo_sizes());
            if p.flag("has_spoiler") {
                content.insert("has_media_spoiler".into(), json!(true));
            }
        }
        FileKind::Document => {
            content.insert("document".into(), file.document());
        }
    }
    content
}

async fn send_one(s: &Shared, p: &Params, kind: FileKind, field: &str) -> Result<Reply, ApiError> {
    let chat_id = p.chat_id()?;
    let mut extra = Map::new();
    caption(p, &mut extra)?;
    let markup = reply_markup(p)?;
    let input = p
        .file(field)
        .ok_or_else(|| ApiError::bad(format!("there is no {field} in the request")))?;
    let resolved = resolve(s, input, kind).await?;
    if kind == FileKind::Photo {
        check_photo(&resolved)?;
    }
    let file = register(s, resolved);
    let mut content = media_content(&file, kind, p);
    content.extend(extra);
    if let Some(m) = markup {
        content.insert("reply_markup".into(), m);
    }
    let mut st = s.state();
    reply_to(&st, chat_id, p, &mut content)?;
    let msg = st.add_message(chat_id, s.bot_user(), true, content, None);
    Ok(Reply::message(chat_id, msg).with_files(vec![file.sent(field)]))
}

pub(super) async fn send_photo(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    send_one(s, p, FileKind::Photo, "photo").await
}

pub(super) async fn send_document(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    send_one(s, p, FileKind::Document, "document").await
}

pub(super) async fn send_media_group(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let chat_id = p.chat_id()?;
    let media = p
        .json("media")?
        .ok_or_else(|| ApiError::bad("parameter \"media\" is required"))?;
    let items = media
        .as_array()
        .ok_or_else(|| ApiError::bad("can't parse media JSON object"))?;
    if items.len() < 2 {
        return Err(ApiError::bad("too few media"));
    }
    if items.len() > 10 {
        return Err(ApiError::bad("Too much messages to send as an album"));
    }
    let kinds = items
        .iter()
        .map(|item| match item.get("type").and_then(Value::as_str) {
            Some("photo") => Ok(FileKind::Photo),
            Some("document") => Ok(FileKind::Document),
            _ => Err(ApiError::bad("unsupported media type in the album")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if kinds.contains(&FileKind::Document) && kinds.contains(&FileKind::Photo) {
        return Err(ApiError::bad(
            "document can't be mixed with other media types",
        ));
    }
    // Everything is checked before any message exists: an album is sent whole or not at all.
    let mut prepared = Vec::with_capacity(items.len());
    for (item, kind) in items.iter().zip(&kinds) {
        let name = item.get("media").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(ApiError::bad("wrong file identifier/HTTP URL specified"));
        }
        let resolved = resolve(s, p.input_ref(name), *kind).await?;
        if *kind == FileKind::Photo {
            check_photo(&resolved)?;
        }
        // Each item's caption is checked like a single message's.
        let mut item_params = Params::default();
        for k in [
            "caption",
            "parse_mode",
            "caption_entities",
            "show_caption_above_media",
        ] {
            if let Some(v) = item.get(k) {
                item_params.fields.insert(k.into(), v.clone());
            }
        }
        let mut extra = Map::new();
        caption(&item_params, &mut extra)?;
        prepared.push((resolved, *kind, extra, item_params));
    }
    let files: Vec<_> = prepared
        .into_iter()
        .map(|(r, kind, extra, ip)| (register(s, r), kind, extra, ip))
        .collect();
    let mut st = s.state();
    let group = st.next_id();
    let mut first = Map::new();
    reply_to(&st, chat_id, p, &mut first)?;
    let mut messages = Vec::new();
    let mut sent = Vec::new();
    for (i, (file, kind, extra, ip)) in files.into_iter().enumerate() {
        let mut content = media_content(&file, kind, &ip);
        content.extend(extra);
        content.insert("media_group_id".into(), json!(group));
        if i == 0 {
            content.extend(first.clone());
        }
        messages.push(st.add_message(chat_id, s.bot_user(), true, content, None));
        sent.push(file.sent(format!("media[{i}]")));
    }
    let ids = messages.iter().filter_map(message_id).collect();
    Ok(Reply {
        result: Value::Array(messages),
        chat_id: Some(chat_id),
        message_ids: ids,
        files: sent,
    })
}

pub(super) fn get_file(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let id = p.str("file_id").unwrap_or_default();
    let file = s
        .state()
        .files
        .get(&id)
        .ok_or_else(|| ApiError::bad("invalid file id"))?;
    if file.bytes.len() > MAX_DOWNLOAD {
        return Err(ApiError::bad("file is too big"));
    }
    Ok(Reply::value(file.file()))
}
