//! The bot's own settings: getMe, webhooks, commands, chat actions.

use serde_json::{Value, json};

use super::Reply;
use crate::telegram::Shared;
use crate::telegram::error::ApiError;
use crate::telegram::params::Params;

pub(super) fn get_me(s: &Shared) -> Reply {
    let mut me = s.bot_user();
    // teloxide's `Me` requires every one of these, `has_main_web_app` included.
    for (k, v) in [
        ("can_join_groups", true),
        ("can_read_all_group_messages", false),
        ("supports_inline_queries", false),
        ("can_connect_to_business", false),
        ("has_main_web_app", false),
    ] {
        me[k] = json!(v);
    }
    Reply::value(me)
}

pub(super) fn delete_webhook(s: &Shared, p: &Params) -> Reply {
    let mut st = s.state();
    st.webhook_url.clear();
    if p.flag("drop_pending_updates") {
        st.drop_pending();
    }
    Reply::done()
}

pub(super) fn set_webhook(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let url = p.str("url").unwrap_or_default();
    if url.is_empty() {
        return Ok(delete_webhook(s, p));
    }
    let parsed =
        reqwest::Url::parse(&url).map_err(|_| ApiError::bad("bad webhook: can't parse URL"))?;
    if parsed.scheme() != "https" {
        return Err(ApiError::bad(
            "bad webhook: HTTPS url must be provided for webhook",
        ));
    }
    if !matches!(parsed.port_or_known_default(), Some(443 | 80 | 88 | 8443)) {
        return Err(ApiError::bad(
            "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        ));
    }
    let mut st = s.state();
    st.webhook_url = url;
    if p.flag("drop_pending_updates") {
        st.drop_pending();
    }
    Ok(Reply::done())
}

pub(super) fn get_webhook_info(s: &Shared) -> Reply {
    let st = s.state();
    Reply::value(json!({
        "url": st.webhook_url,
        "has_custom_certificate": false,
        "pending_update_count": st.pending_count(),
    }))
}

/// Commands are kept per scope and language, as Telegram keeps them.
fn commands_key(p: &Params) -> Result<String, ApiError> {
    let scope = p
        .json("scope")?
        .map(|s| s.to_string())
        .unwrap_or_else(|| json!({"type": "default"}).to_string());
    Ok(format!(
        "{scope}|{}",
        p.str("language_code").unwrap_or_default()
    ))
}

pub(super) fn set_my_commands(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let commands = p.json("commands")?.unwrap_or(json!([]));
    let list = commands
        .as_array()
        .ok_or_else(|| ApiError::bad("can't parse commands JSON object"))?;
    if list.len() > 100 {
        return Err(ApiError::bad("too many commands"));
    }
    for c in list {
        let name = c.get("command").and_then(Value::as_str).unwrap_or("");
        let valid = (1..=32).contains(&name.len())
            && name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !valid {
            return Err(ApiError::bad("BOT_COMMAND_INVALID"));
        }
        let description = c.get("description").and_then(Value::as_str).unwrap_or("");
        if !(1..=256).contains(&description.chars().count()) {
            return Err(ApiError::bad("command description is empty or too long"));
        }
    }
    let key = commands_key(p)?;
    s.state().commands.insert(key, commands);
    Ok(Reply::done())
}

pub(super) fn get_my_commands(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let key = commands_key(p)?;
    let list = s.state().commands.get(&key).cloned().unwrap_or(json!([]));
    Ok(Reply::value(list))
}

pub(super) fn delete_my_commands(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let key = commands_key(p)?;
    s.state().commands.remove(&key);
    Ok(Reply::done())
}

pub(super) fn send_chat_action(p: &Params) -> Result<Reply, ApiError> {
    let chat_id = p.chat_id()?;
    if p.str("action").unwrap_or_default().is_empty() {
        return Err(ApiError::bad("action is empty"));
    }
    Ok(Reply::done().in_chat(chat_id))
}
