//! The Bot API methods the simulator implements, and what every call goes through:
//! counting, injected faults, and the record of what the bot sent.

mod bot;
mod media;
mod messages;
mod payments;

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use super::error::ApiError;
use super::model::SentFile;
use super::params::Params;
use super::polling;

/// Canonical names; callers may use any case, as Telegram allows.
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendChatAction",
    "sendMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "getFile",
    "answerCallbackQuery",
    "sendInvoice",
    "answerPreCheckoutQuery",
    "refundStarPayment",
];

/// Reads that are not worth recording in [`super::SimTelegram::sent`].
const UNRECORDED: &[&str] = &["getUpdates", "getMe", "getFile"];

pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(name))
}

/// A method's result and what to record about the call.
pub(crate) struct Reply {
    pub result: Value,
    pub chat_id: Option<i64>,
    pub message_ids: Vec<i32>,
    pub files: Vec<SentFile>,
}

impl Reply {
    pub fn value(result: Value) -> Reply {
        Reply {
            result,
            chat_id: None,
            message_ids: vec![],
            files: vec![],
        }
    }

    pub fn done() -> Reply {
        Reply::value(json!(true))
    }

    pub fn message(chat_id: i64, msg: Value) -> Reply {
        let id = message_id(&msg);
        Reply {
            result: msg,
            chat_id: Some(chat_id),
            message_ids: id.into_iter().collect(),
            files: vec![],
        }
    }

    pub fn in_chat(mut self, chat_id: i64) -> Reply {
        self.chat_id = Some(chat_id);
        self
    }

    pub fn about(mut self, message_id: i32) -> Reply {
        self.message_ids.push(message_id);
        self
    }

    pub fn with_files(mut self, files: Vec<SentFile>) -> Reply {
        self.files = files;
        self
    }
}

pub(crate) fn message_id(msg: &Value) -> Option<i32> {
    msg.get("message_id")
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok())
}

/// Runs one call of a known method: faults first, then the method, then the bookkeeping.
pub(crate) async fn call(
    s: &Arc<Shared>,
    method: &'static str,
    p: Params,
) -> Result<Value, ApiError> {
    let fault = {
        let mut st = s.state();
        *st.stats.calls.entry(method.to_string()).or_default() += 1;
        st.faults.take(method)
    };
    let out = match fault {
        Some(e) => Err(e),
        None => run(s, method, &p).await,
    };
    let mut st = s.state();
    match out {
        Ok(r) => {
            if !UNRECORDED.contains(&method) {
                st.record(method, r.chat_id, r.message_ids, p.to_value(), r.files);
            }
            drop(st);
            s.touch();
            Ok(r.result)
        }
        Err(e) => {
            st.stats.errors += 1;
            if matches!(e, ApiError::RetryAfter(_)) {
                st.stats.too_many_requests += 1;
            }
            Err(e)
        }
    }
}

async fn run(s: &Shared, method: &str, p: &Params) -> Result<Reply, ApiError> {
    match method {
        "getMe" => Ok(bot::get_me(s)),
        "getUpdates" => polling::get_updates(s, p).await,
        "deleteWebhook" => Ok(bot::delete_webhook(s, p)),
        "setWebhook" => bot::set_webhook(s, p),
        "getWebhookInfo" => Ok(bot::get_webhook_info(s)),
        "setMyCommands" => bot::set_my_commands(s, p),
        "getMyCommands" => bot::get_my_commands(s, p),
        "deleteMyCommands" => bot::delete_my_commands(s, p),
        "sendChatAction" => bot::send_chat_action(p),
        "sendMessage" => messages::send_message(s, p),
        "editMessageText" => messages::edit_text(s, p),
        "editMessageCaption" => messages::edit_caption(s, p),
        "editMessageReplyMarkup" => messages::edit_reply_markup(s, p),
        "deleteMessage" => messages::delete_message(s, p),
        "answerCallbackQuery" => messages::answer_callback_query(s, p),
        "sendPhoto" => media::send_photo(s, p).await,
        "sendDocument" => media::send_document(s, p).await,
        "sendMediaGroup" => media::send_media_group(s, p).await,
        "getFile" => media::get_file(s, p),
        "sendInvoice" => payments::send_invoice(s, p),
        "answerPreCheckoutQuery" => payments::answer_pre_checkout_query(s, p),
        "refundStarPayment" => payments::refund_star_payment(s, p),
        _ => Err(ApiError::MethodNotFound),
    }
}
