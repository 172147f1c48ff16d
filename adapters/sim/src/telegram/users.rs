//! What users do, turned into the updates Telegram would queue for the bot.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::Shared;
use super::files::{FileKind, Prepared};
use super::markup::command_entities;
use super::model::{ActionKind, Pushed, SimUser, UserAction};
use super::state::{CallbackRecord, ChargeRecord, PreCheckoutRecord, SimState, user_json};

pub(crate) fn push(s: &Shared, a: UserAction) -> Pushed {
    // Hashing and reading image headers happen before the lock is taken.
    let prepared = match &a.kind {
        ActionKind::Photo(p) => Some(Prepared::new(
            FileKind::Photo,
            Bytes::from(p.bytes.clone()),
            None,
            None,
        )),
        ActionKind::Document(d) => Some(Prepared::new(
            FileKind::Document,
            Bytes::from(d.bytes.clone()),
            d.file_name.clone(),
            d.mime_type.clone(),
        )),
        _ => None,
    };
    let mut st = s.state();
    let pushed = push_locked(&mut st, a, prepared);
    drop(st);
    s.touch();
    pushed
}

fn push_locked(st: &mut SimState, a: UserAction, prepared: Option<Prepared>) -> Pushed {
    st.remember_user(&a.user);
    let user = &a.user;
    let chat = user.id;
    let mut pushed = Pushed::default();
    let mut content = Map::new();
    let (kind, body) = match a.kind {
        ActionKind::Text(text) => {
            let entities = command_entities(&text);
            content.insert("text".into(), json!(text));
            if !entities.is_empty() {
                content.insert("entities".into(), json!(entities));
            }
            ("message", user_message(st, user, content, &mut pushed))
        }
        ActionKind::Photo(_) | ActionKind::Document(_) => {
            let Some(p) = prepared else {
                return pushed;
            };
            let file = st.files.insert(p);
            match file.kind {
                FileKind::Photo => content.insert("photo".into(), file.photo_sizes()),
                FileKind::Document => content.insert("document".into(), file.document()),
            };
            if let Some(c) = a.caption {
                content.insert("caption".into(), json!(c));
            }
            if let Some(g) = a.media_group_id {
                content.insert("media_group_id".into(), json!(g));
            }
            pushed.file_id = Some(file.file_id.clone());
            ("message", user_message(st, user, content, &mut pushed))
        }
        ActionKind::Callback(press) => {
            let id = st.next_id();
            st.callbacks.insert(
                id.clone(),
                CallbackRecord {
                    chat_id: chat,
                    answered: false,
                },
            );
            let mut q = json!({
                "id": id,
                "from": user_json(user),
                "chat_instance": format!("{}", chat.wrapping_mul(7919).wrapping_abs()),
                "data": press.data,
            });
            // Only the bot's own messages carry buttons a user can press.
            if let Some(m) = st.message(chat, press.message_id).filter(|m| m.from_bot) {
                q["message"] = m.json.clone();
            }
            pushed.callback_query_id = Some(id);
            ("callback_query", q)
        }
        ActionKind::SuccessfulPayment(f) => {
            let payment = json!({
                "currency": f.currency,
                "total_amount": f.total_amount,
                "invoice_payload": f.invoice_payload,
                "telegram_payment_charge_id": f.telegram_payment_charge_id,
                "provider_payment_charge_id": f.provider_payment_charge_id,
            });
            return push_payment_locked(st, user, payment);
        }
        ActionKind::PreCheckout(f) => {
            let id = st.next_id();
            st.pre_checkouts.insert(
                id.clone(),
                PreCheckoutRecord {
                    user_id: chat,
                    pushed: std::time::Instant::now(),
                    answer: None,
                },
            );
            pushed.pre_checkout_query_id = Some(id.clone());
            (
                "pre_checkout_query",
                json!({
                    "id": id,
                    "from": user_json(user),
                    "currency": f.currency,
                    "total_amount": f.total_amount,
                    "invoice_payload": f.invoice_payload,
                }),
            )
        }
    };
    pushed.update_id = st.enqueue(kind, body);
    pushed
}

fn user_message(
    st: &mut SimState,
    user: &SimUser,
    content: Map<String, Value>,
    pushed: &mut Pushed,
) -> Value {
    let msg = st.add_message(user.id, user_json(user), false, content, None);
    pushed.message_id = msg
        .get("message_id")
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok());
    msg
}

/// Pushes a `successful_payment` message (already tampered with, if the test wants) and
/// remembers its charge for refunds.
pub(crate) fn push_payment(s: &Shared, user: &SimUser, payment: Value) -> Pushed {
    let mut st = s.state();
    st.remember_user(user);
    let pushed = push_payment_locked(&mut st, user, payment);
    drop(st);
    s.touch();
    pushed
}

fn push_payment_locked(st: &mut SimState, user: &SimUser, payment: Value) -> Pushed {
    let field = |k: &str| {
        payment
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let charge = field("telegram_payment_charge_id");
    if !charge.is_empty() {
        st.charges.insert(
            charge,
            ChargeRecord {
                user_id: user.id,
                currency: field("currency"),
                total_amount: payment
                    .get("total_amount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                payload: field("invoice_payload"),
                refunded: false,
            },
        );
    }
    let mut content = Map::new();
    content.insert("successful_payment".into(), payment);
    let mut pushed = Pushed::default();
    let msg = user_message(st, user, content, &mut pushed);
    pushed.update_id = st.enqueue("message", msg);
    pushed
}
