//! A Bot API call's parameters, wherever they came from: the query string, a JSON body, a
//! urlencoded form, or multipart (teloxide's choice for uploads, where every non-file field
//! is a text part and structured ones such as `reply_markup` or `media` are JSON text).

use std::collections::HashMap;

use bytes::Bytes;
use salvo::http::ParseError;
use salvo::prelude::*;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Uploads are held in memory: a 10-photo album of 20 MB photos fits, 50 MB documents too.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Fields that are numbers or booleans in the Bot API; in forms they arrive as text.
const NUMERIC: &[&str] = &[
    "chat_id",
    "message_id",
    "user_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "message_thread_id",
    "reply_to_message_id",
    "max_connections",
    "from_chat_id",
    "max_tip_amount",
    "photo_size",
    "photo_width",
    "photo_height",
    "subscription_period",
];
const BOOLEAN: &[&str] = &[
    "ok",
    "show_alert",
    "disable_notification",
    "protect_content",
    "has_spoiler",
    "show_caption_above_media",
    "disable_content_type_detection",
    "drop_pending_updates",
    "allow_paid_broadcast",
    "allow_sending_without_reply",
    "is_flexible",
];

/// One uploaded file part.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// How a call names a file: a part of this request, a known file id, or a URL to fetch.
#[derive(Debug, Clone)]
pub(crate) enum InputRef {
    Upload(Upload),
    FileId(String),
    Url(String),
}

#[derive(Debug, Default)]
pub(crate) struct Params {
    pub fields: Map<String, Value>,
    pub uploads: HashMap<String, Upload>,
}

/// A form text value as the JSON the Bot API means by it.
fn coerce(key: &str, text: &str) -> Value {
    let t = text.trim();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(v) = serde_json::from_str::<Value>(t)
    {
        return v;
    }
    if NUMERIC.contains(&key)
        && let Ok(n) = t.parse::<i64>()
    {
        return Value::from(n);
    }
    if BOOLEAN.contains(&key) && (t == "true" || t == "false") {
        return Value::Bool(t == "true");
    }
    Value::String(text.to_string())
}

fn parse_error(e: ParseError) -> ApiError {
    match e {
        ParseError::PayloadTooLarge => ApiError::TooLarge,
        other => ApiError::bad(format!("can't parse request: {other}")),
    }
}

impl Params {
    pub async fn read(req: &mut Request) -> Result<Params, ApiError> {
        let mut p = Params::default();
        for (k, vs) in req.queries().iter_all() {
            if let Some(v) = vs.last() {
                p.fields.insert(k.clone(), coerce(k, v));
            }
        }
        let ctype = req.content_type();
        let is_form = ctype.as_ref().is_some_and(|m| {
            m.type_().as_str() == "multipart" || m.subtype().as_str() == "x-www-form-urlencoded"
        });
        if is_form {
            let form = req
                .form_data_max_size(MAX_BODY)
                .await
                .map_err(parse_error)?;
            for (k, vs) in form.fields.iter_all() {
                if let Some(v) = vs.last() {
                    p.fields.insert(k.clone(), coerce(k, v));
                }
            }
            let parts: Vec<(String, salvo::http::form::FilePart)> = form
                .files
                .iter_all()
                .flat_map(|(k, vs)| vs.iter().map(move |f| (k.clone(), f.clone())))
                .collect();
            for (name, part) in parts {
                let bytes = tokio::fs::read(part.path())
                    .await
                    .map_err(|e| ApiError::bad(format!("can't read uploaded file: {e}")))?;
                p.uploads.insert(
                    name,
                    Upload {
                        file_name: part.name().map(str::to_string).filter(|n| !n.is_empty()),
                        content_type: part.content_type().map(|m| m.to_string()),
                        bytes: Bytes::from(bytes),
                    },
                );
            }
            return Ok(p);
        }
        let body = req
            .payload_with_max_size(MAX_BODY)
            .await
            .map_err(parse_error)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(p);
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => p.fields.extend(m),
            _ => return Err(ApiError::bad("can't parse JSON object")),
        }
        Ok(p)
    }

    /// A present, non-null value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("{key} is invalid"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("{key} is invalid"))),
            Some(_) => Err(ApiError::bad(format!("{key} is invalid"))),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }

    /// A structured parameter, given as JSON or as JSON text (forms, query strings).
    pub fn json(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad(format!("can't parse {key} JSON object"))),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    /// The private chat a call is about. Only numeric ids exist in the simulator.
    pub fn chat_id(&self) -> Result<i64, ApiError> {
        match self.get("chat_id") {
            None => Err(ApiError::bad("chat_id is empty")),
            Some(_) => self
                .int("chat_id")
                .map_err(|_| ApiError::bad("chat not found"))?
                .ok_or_else(|| ApiError::bad("chat_id is empty")),
        }
    }

    /// Resolves a file parameter: `attach://<part>`, a part named like the field itself,
    /// a URL, or a file id. `None` when the call carries no such file at all.
    pub fn file(&self, key: &str) -> Option<InputRef> {
        match self.get(key) {
            Some(Value::String(s)) => Some(self.input_ref(s)),
            Some(_) => None,
            None => self.uploads.get(key).cloned().map(InputRef::Upload),
        }
    }

    /// What a string naming a file (a field, or a `media` item's `media`) refers to.
    pub fn input_ref(&self, s: &str) -> InputRef {
        if let Some(part) = s.strip_prefix("attach://") {
            return match self.uploads.get(part) {
                Some(u) => InputRef::Upload(u.clone()),
                // A missing part is what Telegram calls a wrong file identifier.
                None => InputRef::FileId(s.to_string()),
            };
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return InputRef::Url(s.to_string());
        }
        InputRef::FileId(s.to_string())
    }

    /// The fields as recorded in a [`super::model::SentCall`].
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_text_becomes_the_json_it_stands_for() {
        assert_eq!(coerce("chat_id", "42"), json!(42));
        assert_eq!(coerce("chat_id", "@channel"), json!("@channel"));
        assert_eq!(coerce("caption", "42"), json!("42"));
        assert_eq!(coerce("show_alert", "true"), json!(true));
        assert_eq!(
            coerce("reply_markup", r#"{"inline_keyboard":[]}"#),
            json!({"inline_keyboard": []})
        );
        assert_eq!(coerce("text", "[not json"), json!("[not json"));
    }

    #[test]
    fn files_resolve_by_attach_url_or_id() {
        let mut p = Params::default();
        p.uploads.insert(
            "abc".into(),
            Upload {
                file_name: None,
                content_type: None,
                bytes: Bytes::from_static(b"x"),
            },
        );
        p.fields.insert("photo".into(), json!("attach://abc"));
        assert!(matches!(p.file("photo"), Some(InputRef::Upload(_))));
        assert!(matches!(p.input_ref("https://x/y.jpg"), InputRef::Url(_)));
        assert!(matches!(p.input_ref("AgAC1"), InputRef::FileId(_)));
        assert!(p.file("document").is_none());
    }
}
