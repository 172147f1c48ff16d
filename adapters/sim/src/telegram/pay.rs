//! A user paying an invoice, step by step as Telegram runs it: pre-checkout query, the bot's
//! answer within 10 seconds, then the `successful_payment` message.

use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::model::{Pay, PayOutcome, PreCheckoutFacts, UserAction};
use super::users;

/// How long Telegram waits for answerPreCheckoutQuery.
pub(crate) const PRE_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn pay(s: &Shared, p: Pay) -> PayOutcome {
    let invoice = s
        .state()
        .message(p.user.id, p.invoice_message_id)
        .and_then(|m| m.invoice.clone());
    let Some(invoice) = invoice else {
        return PayOutcome {
            error_message: Some(format!(
                "message {} in chat {} is not an invoice the bot sent",
                p.invoice_message_id, p.user.id
            )),
            ..PayOutcome::default()
        };
    };
    let facts = PreCheckoutFacts {
        currency: invoice.currency.clone(),
        total_amount: invoice.total_amount,
        invoice_payload: invoice.payload.clone(),
    };
    let query = users::push(s, UserAction::pre_checkout(&p.user, facts));
    let Some(query_id) = query.pre_checkout_query_id else {
        return PayOutcome::default();
    };
    let deadline = tokio::time::Instant::now() + PRE_CHECKOUT_TIMEOUT;
    let answer = s
        .wait_until(deadline, |st| {
            st.pre_checkouts
                .get(&query_id)
                .and_then(|q| q.answer.clone())
        })
        .await;
    match answer {
        None => PayOutcome::default(),
        Some((false, error_message)) => PayOutcome {
            answered: true,
            error_message,
            ..PayOutcome::default()
        },
        Some((true, _)) => {
            let charge = p
                .charge_id
                .unwrap_or_else(|| format!("tg-charge-{}", ulid::Ulid::generate()));
            let mut payment = json!({
                "currency": invoice.currency,
                "total_amount": invoice.total_amount,
                "invoice_payload": invoice.payload,
                "telegram_payment_charge_id": charge,
                "provider_payment_charge_id": "",
            });
            merge(&mut payment, p.tamper);
            let pushed = users::push_payment(s, &p.user, payment);
            PayOutcome {
                answered: true,
                ok: true,
                error_message: None,
                charge_id: Some(charge),
                update_id: Some(pushed.update_id),
            }
        }
    }
}

/// Overwrites fields of `target` with those of `patch`; a null in the patch removes one.
fn merge(target: &mut Value, patch: Option<Value>) {
    let (Some(t), Some(Value::Object(p))) = (target.as_object_mut(), patch) else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(&k);
        } else {
            t.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampering_overwrites_and_removes_fields() {
        let mut v = json!({"total_amount": 100, "currency": "XTR", "invoice_payload": "p"});
        merge(
            &mut v,
            Some(json!({"total_amount": 1, "invoice_payload": null})),
        );
        assert_eq!(v, json!({"total_amount": 1, "currency": "XTR"}));
    }
}
