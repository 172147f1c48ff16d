//! The simulator's public vocabulary: what a test makes a user do, and what it reads back
//! about the bot. Every type here is also the JSON of the control API (`/_sim/...`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Telegram user talking to the bot in a private chat (whose id is the user's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl SimUser {
    pub fn new(id: i64, first_name: impl Into<String>) -> SimUser {
        SimUser {
            id,
            first_name: first_name.into(),
            language_code: None,
            username: None,
        }
    }

    pub fn language(mut self, code: impl Into<String>) -> SimUser {
        self.language_code = Some(code.into());
        self
    }

    pub fn username(mut self, name: impl Into<String>) -> SimUser {
        self.username = Some(name.into());
        self
    }
}

/// One thing a user does, which becomes one update. In JSON: `{"user": {...}}` plus exactly
/// one of `text`, `photo`, `document`, `callback`, `successful_payment`, `pre_checkout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAction")]
pub struct UserAction {
    pub user: SimUser,
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Photos and documents only: messages with the same id form an album.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_group_id: Option<String>,
    /// Photos and documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A text message; a leading `/command` gets a `bot_command` entity.
    Text(String),
    Photo(PhotoUpload),
    Document(DocumentUpload),
    /// A press on an inline button of bot message `message_id`.
    Callback(CallbackPress),
    /// A raw `successful_payment` message, as if Telegram sent it (for forgeries, duplicates).
    SuccessfulPayment(PaymentFacts),
    /// A raw `pre_checkout_query` update.
    PreCheckout(PreCheckoutFacts),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoUpload {
    #[serde(rename = "bytes_b64", with = "b64")]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentUpload {
    #[serde(rename = "bytes_b64", with = "b64")]
    pub bytes: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackPress {
    pub data: String,
    pub message_id: i32,
}

/// The fields of a `successful_payment`. Amounts are `i64` so that tests can forge values
/// Telegram would never send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFacts {
    pub currency: String,
    pub total_amount: i64,
    pub invoice_payload: String,
    pub telegram_payment_charge_id: String,
    #[serde(default)]
    pub provider_payment_charge_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckoutFacts {
    pub currency: String,
    pub total_amount: i64,
    pub invoice_payload: String,
}

impl UserAction {
    fn new(user: &SimUser, kind: ActionKind) -> UserAction {
        UserAction {
            user: user.clone(),
            kind,
            media_group_id: None,
            caption: None,
        }
    }

    pub fn text(user: &SimUser, text: impl Into<String>) -> UserAction {
        UserAction::new(user, ActionKind::Text(text.into()))
    }

    pub fn photo(user: &SimUser, bytes: impl Into<Vec<u8>>) -> UserAction {
        UserAction::new(
            user,
            ActionKind::Photo(PhotoUpload {
                bytes: bytes.into(),
            }),
        )
    }

    pub fn document(
        user: &SimUser,
        bytes: impl Into<Vec<u8>>,
        file_name: impl Into<String>,
        mime_type: impl Into<String>,
    ) -> UserAction {
        UserAction::new(
            user,
            ActionKind::Document(DocumentUpload {
                bytes: bytes.into(),
                file_name: Some(file_name.into()),
                mime_type: Some(mime_type.into()),
            }),
        )
    }

    pub fn callback(user: &SimUser, message_id: i32, data: impl Into<String>) -> UserAction {
        UserAction::new(
            user,
            ActionKind::Callback(CallbackPress {
                data: data.into(),
                message_id,
            }),
        )
    }

    pub fn successful_payment(user: &SimUser, facts: PaymentFacts) -> UserAction {
        UserAction::new(user, ActionKind::SuccessfulPayment(facts))
    }

    pub fn pre_checkout(user: &SimUser, facts: PreCheckoutFacts) -> UserAction {
        UserAction::new(user, ActionKind::PreCheckout(facts))
    }

    pub fn with_caption(mut self, caption: impl Into<String>) -> UserAction {
        self.caption = Some(caption.into());
        self
    }

    pub fn in_group(mut self, media_group_id: impl Into<String>) -> UserAction {
        self.media_group_id = Some(media_group_id.into());
        self
    }
}

/// Why a JSON user action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(
        "a user action needs exactly one of text, photo, document, callback, \
         successful_payment, pre_checkout (got {0})"
    )]
    NotExactlyOne(usize),
}

/// The wire form, checked for "exactly one kind" before it becomes a [`UserAction`]:
/// flattening an enum alone would silently take the first kind and ignore the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    user: SimUser,
    text: Option<String>,
    photo: Option<PhotoUpload>,
    document: Option<DocumentUpload>,
    callback: Option<CallbackPress>,
    successful_payment: Option<PaymentFacts>,
    pre_checkout: Option<PreCheckoutFacts>,
    media_group_id: Option<String>,
    caption: Option<String>,
}

impl TryFrom<RawAction> for UserAction {
    type Error = ActionError;

    fn try_from(r: RawAction) -> Result<UserAction, ActionError> {
        let mut kinds: Vec<ActionKind> = Vec::new();
        kinds.extend(r.text.map(ActionKind::Text));
        kinds.extend(r.photo.map(ActionKind::Photo));
        kinds.extend(r.document.map(ActionKind::Document));
        kinds.extend(r.callback.map(ActionKind::Callback));
        kinds.extend(r.successful_payment.map(ActionKind::SuccessfulPayment));
        kinds.extend(r.pre_checkout.map(ActionKind::PreCheckout));
        if kinds.len() != 1 {
            return Err(ActionError::NotExactlyOne(kinds.len()));
        }
        let Some(kind) = kinds.pop() else {
            return Err(ActionError::NotExactlyOne(0));
        };
        Ok(UserAction {
            user: r.user,
            kind,
            media_group_id: r.media_group_id,
            caption: r.caption,
        })
    }
}

/// What pushing one user action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    pub update_id: i64,
    pub message_id: Option<i32>,
    pub file_id: Option<String>,
    pub callback_query_id: Option<String>,
    pub pre_checkout_query_id: Option<String>,
}

/// A user paying an invoice the bot sent (body of `POST /_sim/pay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pay {
    pub user: SimUser,
    pub invoice_message_id: i32,
    /// The `telegram_payment_charge_id`; generated when absent.
    #[serde(default)]
    pub charge_id: Option<String>,
    /// Fields merged into the `successful_payment` object, e.g. `{"total_amount": 1}`.
    #[serde(default)]
    pub tamper: Option<Value>,
}

impl Pay {
    pub fn new(user: &SimUser, invoice_message_id: i32) -> Pay {
        Pay {
            user: user.clone(),
            invoice_message_id,
            charge_id: None,
            tamper: None,
        }
    }
}

/// How a payment went. `answered` is false when the bot did not answer the pre-checkout
/// query in time (or there was no invoice: then `error_message` says so).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayOutcome {
    pub answered: bool,
    pub ok: bool,
    pub error_message: Option<String>,
    pub charge_id: Option<String>,
    /// The update carrying the `successful_payment` message.
    pub update_id: Option<i64>,
}

/// One successful call the bot made (everything but getUpdates, getMe and getFile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentCall {
    pub seq: u64,
    /// The canonical Bot API name, e.g. `sendMessage`, whatever case the bot used.
    pub method: String,
    pub chat_id: Option<i64>,
    /// Messages the call created, edited or deleted.
    pub message_ids: Vec<i32>,
    /// The non-file parameters; JSON-encoded form fields are decoded.
    pub params: Value,
    /// Uploaded files, and files re-sent by file id or URL.
    pub files: Vec<SentFile>,
}

impl SentCall {
    /// A string parameter, e.g. `text` or `caption`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }

    /// The inline keyboard's buttons as (text, callback_data), row by row.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let markup = match self.params.get("reply_markup") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let rows = markup
            .get("inline_keyboard")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rows.iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|b| {
                let field = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (field("text"), field("callback_data"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFile {
    /// The parameter that carried it: `photo`, `document`, `media[2]`...
    pub field: String,
    /// The file id the simulator gave it (usable with [`super::SimTelegram::file_bytes`]).
    pub file_id: String,
    pub file_name: Option<String>,
    pub bytes: usize,
    pub sha256: String,
    pub content_type: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every Bot API call by canonical method name, failed ones included.
    pub calls: BTreeMap<String, u64>,
    pub too_many_requests: u64,
    /// Calls answered with `ok: false` (429s included).
    pub errors: u64,
    pub updates_pushed: u64,
    /// Updates the bot acknowledged with a getUpdates offset past them.
    pub updates_confirmed: u64,
    pub get_updates_calls: u64,
}

/// Bytes as standard base64 in JSON.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.trim())
            .map_err(|e| serde::de::Error::custom(format!("bytes_b64 is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_need_exactly_one_kind() {
        let user = json!({"id": 42, "first_name": "Anna", "language_code": "ru"});
        let one: UserAction =
            serde_json::from_value(json!({"user": user, "text": "/start"})).unwrap();
        assert_eq!(one.kind, ActionKind::Text("/start".into()));
        assert!(
            serde_json::from_value::<UserAction>(
                json!({"user": user, "text": "a", "callback": {"data": "x", "message_id": 1}})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<UserAction>(json!({"user": user})).is_err());
    }

    #[test]
    fn actions_round_trip_through_json() {
        let a = UserAction::photo(&SimUser::new(1, "A"), vec![1, 2, 3])
            .with_caption("hi")
            .in_group("g1");
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["photo"]["bytes_b64"], "AQID");
        assert_eq!(serde_json::from_value::<UserAction>(v).unwrap(), a);
    }

    #[test]
    fn buttons_are_read_from_the_keyboard() {
        let call = SentCall {
            seq: 1,
            method: "sendMessage".into(),
            chat_id: Some(1),
            message_ids: vec![1],
            params: json!({"reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}], [{"text": "B", "url": "https://x"}]]}}),
            files: vec![],
        };
        assert_eq!(
            call.buttons(),
            vec![("A".into(), "a".into()), ("B".into(), String::new())]
        );
    }
}
