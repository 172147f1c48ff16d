//! Text messages, their edits and deletion, and answers to button presses.

use serde_json::{Map, Value, json};

use super::Reply;
use crate::telegram::Shared;
use crate::telegram::error::ApiError;
use crate::telegram::markup::{self, utf16_len};
use crate::telegram::params::Params;
use crate::telegram::state::{SimState, now_unix};

const MAX_TEXT: usize = 4096;
const MAX_CAPTION: usize = 1024;
const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply \
                            markup are exactly the same as a current content and reply markup of the message";

/// `text` after `parse_mode`, with its entities (explicit `entities` win when no parse mode).
fn rendered(p: &Params, field: &str, entities_field: &str) -> Result<markup::Rendered, ApiError> {
    let raw = p.str(field).unwrap_or_default();
    let mut r = markup::render(&raw, p.str("parse_mode").as_deref())?;
    if r.entities.is_empty()
        && let Some(Value::Array(given)) = p.json(entities_field)?
    {
        r.entities = given;
    }
    Ok(r)
}

fn put_text(content: &mut Map<String, Value>, key: &str, entities_key: &str, r: markup::Rendered) {
    content.insert(key.into(), json!(r.text));
    if r.entities.is_empty() {
        content.remove(entities_key);
    } else {
        content.insert(entities_key.into(), json!(r.entities));
    }
}

/// The caption of a media message, if any, checked like Telegram checks it.
pub(super) fn caption(p: &Params, content: &mut Map<String, Value>) -> Result<(), ApiError> {
    if p.str("caption").is_none_or(|c| c.is_empty()) {
        return Ok(());
    }
    let r = rendered(p, "caption", "caption_entities")?;
    if utf16_len(&r.text) > MAX_CAPTION {
        return Err(ApiError::bad("message caption is too long"));
    }
    put_text(content, "caption", "caption_entities", r);
    if p.flag("show_caption_above_media") {
        content.insert("show_caption_above_media".into(), json!(true));
    }
    Ok(())
}

/// The inline keyboard to store with the message. Reply keyboards are accepted but, as in
/// Telegram, a Message only ever carries an inline one.
pub(super) fn reply_markup(p: &Params) -> Result<Option<Value>, ApiError> {
    let Some(markup) = p.json("reply_markup")? else {
        return Ok(None);
    };
    let Some(rows) = markup.get("inline_keyboard") else {
        return Ok(None);
    };
    let bad_button =
        |why: &str| ApiError::bad(format!("can't parse inline keyboard button: {why}"));
    let rows = rows
        .as_array()
        .ok_or_else(|| bad_button("field \"inline_keyboard\" must be an Array"))?;
    for row in rows {
        let row = row
            .as_array()
            .ok_or_else(|| bad_button("InlineKeyboardButton row must be an Array"))?;
        for b in row {
            if b.get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad_button(
                    "Text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = b.get("callback_data") {
                let len = data.as_str().map_or(0, str::len);
                if !(1..=64).contains(&len) {
                    return Err(ApiError::bad("BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    Ok(Some(markup))
}

/// `reply_parameters` (or the older `reply_to_message_id`): the replied message is embedded.
pub(super) fn reply_to(
    st: &SimState,
    chat_id: i64,
    p: &Params,
    content: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let params = p.json("reply_parameters")?;
    let target = match &params {
        Some(r) => r.get("message_id").and_then(Value::as_i64),
        None => p.int("reply_to_message_id")?,
    };
    let Some(target) = target.and_then(|t| i32::try_from(t).ok()) else {
        return Ok(());
    };
    let lenient = p.flag("allow_sending_without_reply")
        || params.as_ref().is_some_and(|r| {
            r.get("allow_sending_without_reply")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        });
    match st.message(chat_id, target) {
        Some(m) => {
            let mut replied = m.json.clone();
            if let Some(o) = replied.as_object_mut() {
                o.remove("reply_to_message");
            }
            content.insert("reply_to_message".into(), replied);
            Ok(())
        }
        None if lenient => Ok(()),
        None => Err(ApiError::bad("message to be replied not found")),
    }
}

pub(super) fn send_message(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let chat_id = p.chat_id()?;
    let r = rendered(p, "text", "entities")?;
    if r.text.trim().is_empty() {
        return Err(ApiError::bad("message text is empty"));
    }
    if utf16_len(&r.text) > MAX_TEXT {
        return Err(ApiError::bad("message is too long"));
    }
    let markup = reply_markup(p)?;
    let mut content = Map::new();
    put_text(&mut content, "text", "entities", r);
    if let Some(m) = markup {
        content.insert("reply_markup".into(), m);
    }
    let mut st = s.state();
    reply_to(&st, chat_id, p, &mut content)?;
    let msg = st.add_message(chat_id, s.bot_user(), true, content, None);
    Ok(Reply::message(chat_id, msg))
}

/// The message an edit or delete is about. Inline messages do not exist in the simulator.
fn target(p: &Params) -> Result<(i64, i32), ApiError> {
    if p.get("inline_message_id").is_some() {
        return Err(ApiError::bad("MESSAGE_ID_INVALID"));
    }
    let chat_id = p.chat_id()?;
    let id = p
        .int("message_id")?
        .ok_or_else(|| ApiError::bad("message identifier is not specified"))?;
    let id = i32::try_from(id).map_err(|_| ApiError::bad("MESSAGE_ID_INVALID"))?;
    Ok((chat_id, id))
}

/// Applies an edit to a bot message: `change` gets the message object and returns whether
/// anything differs. Telegram drops the inline keyboard unless the edit repeats it.
fn edit(
    s: &Shared,
    p: &Params,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<bool, ApiError>,
) -> Result<Reply, ApiError> {
    let (chat_id, id) = target(p)?;
    let markup = reply_markup(p)?;
    let mut st = s.state();
    let m = st
        .message_mut(chat_id, id)
        .ok_or_else(|| ApiError::bad("message to edit not found"))?;
    if !m.from_bot {
        return Err(ApiError::bad("message can't be edited"));
    }
    let mut next = m.json.as_object().cloned().unwrap_or_default();
    let mut changed = change(&mut next)?;
    if next.get("reply_markup") != markup.as_ref() {
        changed = true;
        match markup {
            Some(mk) => next.insert("reply_markup".into(), mk),
            None => next.remove("reply_markup"),
        };
    }
    if !changed {
        return Err(ApiError::bad(NOT_MODIFIED));
    }
    next.insert("edit_date".into(), json!(now_unix()));
    m.json = Value::Object(next);
    Ok(Reply::message(chat_id, m.json.clone()))
}

pub(super) fn edit_text(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let r = rendered(p, "text", "entities")?;
    if r.text.trim().is_empty() {
        return Err(ApiError::bad("message text is empty"));
    }
    if utf16_len(&r.text) > MAX_TEXT {
        return Err(ApiError::bad("MESSAGE_TOO_LONG"));
    }
    edit(s, p, |msg| {
        if !msg.contains_key("text") {
            return Err(ApiError::bad("there is no text in the message to edit"));
        }
        let before = (msg.get("text").cloned(), msg.get("entities").cloned());
        put_text(msg, "text", "entities", r);
        Ok(before != (msg.get("text").cloned(), msg.get("entities").cloned()))
    })
}

pub(super) fn edit_caption(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let mut content = Map::new();
    caption(p, &mut content)?;
    edit(s, p, |msg| {
        if !msg.contains_key("photo") && !msg.contains_key("document") {
            return Err(ApiError::bad("there is no caption in the message to edit"));
        }
        let keys = ["caption", "caption_entities"];
        let before: Vec<_> = keys.iter().map(|k| msg.get(*k).cloned()).collect();
        for k in keys {
            match content.get(k) {
                Some(v) => msg.insert(k.into(), v.clone()),
                None => msg.remove(k),
            };
        }
        let after: Vec<_> = keys.iter().map(|k| msg.get(*k).cloned()).collect();
        Ok(before != after)
    })
}

pub(super) fn edit_reply_markup(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    edit(s, p, |_| Ok(false))
}

pub(super) fn delete_message(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let (chat_id, id) = target(p)?;
    let removed = s
        .state()
        .chats
        .get_mut(&chat_id)
        .and_then(|c| c.messages.remove(&id));
    match removed {
        Some(_) => Ok(Reply::done().in_chat(chat_id).about(id)),
        None => Err(ApiError::bad("message to delete not found")),
    }
}

pub(super) fn answer_callback_query(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let id = p.str("callback_query_id").unwrap_or_default();
    if p.str("text").is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::bad("MESSAGE_TOO_LONG"));
    }
    let mut st = s.state();
    let q = st
        .callbacks
        .get_mut(&id)
        .filter(|q| !q.answered)
        .ok_or_else(ApiError::query_too_old)?;
    q.answered = true;
    let chat_id = q.chat_id;
    Ok(Reply::done().in_chat(chat_id))
}
