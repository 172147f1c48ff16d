//! Telegram Stars: invoices, pre-checkout answers, refunds. Other currencies need a payment
//! provider, which the simulator does not have.

use serde_json::{Map, Value, json};

use super::Reply;
use super::messages::{reply_markup, reply_to};
use crate::telegram::Shared;
use crate::telegram::error::ApiError;
use crate::telegram::params::Params;
use crate::telegram::pay::PRE_CHECKOUT_TIMEOUT;
use crate::telegram::state::{InvoiceRecord, user_json};

pub(super) fn send_invoice(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let chat_id = p.chat_id()?;
    let text = |k: &str| p.str(k).unwrap_or_default();
    let (title, description, payload, currency) = (
        text("title"),
        text("description"),
        text("payload"),
        text("currency"),
    );
    if !(1..=32).contains(&title.chars().count()) {
        return Err(ApiError::bad("invoice title must be 1-32 characters long"));
    }
    if !(1..=255).contains(&description.chars().count()) {
        return Err(ApiError::bad(
            "invoice description must be 1-255 characters long",
        ));
    }
    if !(1..=128).contains(&payload.len()) {
        return Err(ApiError::bad("INVOICE_PAYLOAD_INVALID"));
    }
    if currency != "XTR" {
        // Digital goods are sold in Stars; any other currency needs a provider token.
        return Err(if currency.len() == 3 {
            ApiError::bad("PAYMENT_PROVIDER_INVALID")
        } else {
            ApiError::bad("CURRENCY_INVALID")
        });
    }
    if !text("provider_token").is_empty() {
        return Err(ApiError::bad("PAYMENT_PROVIDER_INVALID"));
    }
    let prices = p.json("prices")?.unwrap_or(json!([]));
    let prices = prices
        .as_array()
        .ok_or_else(|| ApiError::bad("can't parse prices JSON object"))?;
    if prices.len() != 1 {
        return Err(ApiError::bad("STARS_INVOICE_INVALID"));
    }
    let amount = prices[0]
        .get("amount")
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(|| ApiError::bad("CURRENCY_TOTAL_AMOUNT_INVALID"))?;
    let markup = reply_markup(p)?;
    let mut content = Map::new();
    content.insert(
        "invoice".into(),
        json!({
            "title": title,
            "description": description,
            "start_parameter": text("start_parameter"),
            "currency": currency,
            "total_amount": amount,
        }),
    );
    if let Some(m) = markup {
        content.insert("reply_markup".into(), m);
    }
    let invoice = InvoiceRecord {
        currency,
        total_amount: amount,
        payload,
    };
    let mut st = s.state();
    reply_to(&st, chat_id, p, &mut content)?;
    let msg = st.add_message(chat_id, s.bot_user(), true, content, Some(invoice));
    Ok(Reply::message(chat_id, msg))
}

pub(super) fn answer_pre_checkout_query(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let id = p.str("pre_checkout_query_id").unwrap_or_default();
    let ok = p.flag("ok");
    let error_message = p.str("error_message").filter(|m| !m.is_empty());
    let mut st = s.state();
    let q = st
        .pre_checkouts
        .get_mut(&id)
        .filter(|q| q.answer.is_none() && q.pushed.elapsed() <= PRE_CHECKOUT_TIMEOUT)
        .ok_or_else(ApiError::query_too_old)?;
    q.answer = Some((ok, error_message));
    let user = q.user_id;
    Ok(Reply::done().in_chat(user))
}

/// Refunds a charge: Telegram then tells the bot with a `refunded_payment` message.
pub(super) fn refund_star_payment(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let user_id = p
        .int("user_id")?
        .ok_or_else(|| ApiError::bad("USER_ID_INVALID"))?;
    let charge_id = p.str("telegram_payment_charge_id").unwrap_or_default();
    let mut st = s.state();
    let charge = st
        .charges
        .get_mut(&charge_id)
        .filter(|c| c.user_id == user_id)
        .ok_or_else(|| ApiError::bad("CHARGE_NOT_FOUND"))?;
    if charge.refunded {
        return Err(ApiError::bad("CHARGE_ALREADY_REFUNDED"));
    }
    charge.refunded = true;
    let refunded = json!({
        "currency": charge.currency,
        "total_amount": charge.total_amount,
        "invoice_payload": charge.payload,
        "telegram_payment_charge_id": charge_id,
    });
    let user = user_json(&st.chat_mut(user_id).user);
    let mut content = Map::new();
    content.insert("refunded_payment".into(), refunded);
    let msg = st.add_message(user_id, user, false, content, None);
    st.enqueue("message", msg);
    Ok(Reply::done().in_chat(user_id))
}
