//! The local Telegram Bot API server's Stars payments against teloxide: invoices, the
//! pre-checkout answer, successful payments (raw, duplicated, tampered) and refunds.

mod common;

use std::time::{Duration, Instant};

use aisha_sim::telegram::{Pay, PaymentFacts, UserAction};
use teloxide::ApiError;
use teloxide::prelude::*;
use teloxide::types::{LabeledPrice, MessageKind, Update, UpdateKind};

use common::{anna, api_error, drain, message, sim};

/// The bot's side of a payment: answer the pre-checkout query it finds.
async fn answer_pre_checkout(bot: &Bot, ok: bool) -> Update {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut offset = 0;
    while Instant::now() < deadline {
        for u in bot.get_updates().offset(offset).timeout(1).await.unwrap() {
            offset = u.id.0 as i32 + 1;
            if let UpdateKind::PreCheckoutQuery(q) = &u.kind {
                let answer = bot.answer_pre_checkout_query(q.id.clone(), ok);
                let answer = if ok {
                    answer
                } else {
                    answer.error_message("Товар закончился")
                };
                answer.await.unwrap();
                // Confirms the query, so that later reads see only what came after it.
                bot.get_updates().offset(offset).limit(1).await.unwrap();
                return u;
            }
        }
    }
    panic!("no pre-checkout query");
}

#[tokio::test]
async fn stars_invoice_payment_and_refunds() {
    let sim = sim().await;
    let bot = sim.bot();
    let invoice = bot
        .send_invoice(
            ChatId(42),
            "250 монет",
            "Пополнение баланса",
            "topup:250:u42",
            "XTR",
            [LabeledPrice::new("250 монет", 50)],
        )
        .await
        .unwrap();
    let inv = invoice.invoice().unwrap();
    assert_eq!(
        (inv.currency.as_str(), inv.total_amount, inv.title.as_str()),
        ("XTR", 50, "250 монет")
    );

    let (outcome, query) = tokio::join!(
        sim.pay(Pay::new(&anna(), invoice.id.0)),
        answer_pre_checkout(&bot, true)
    );
    let UpdateKind::PreCheckoutQuery(q) = &query.kind else {
        unreachable!()
    };
    assert_eq!(
        (q.total_amount, q.invoice_payload.as_str(), q.from.id.0),
        (50, "topup:250:u42", 42)
    );
    assert!(outcome.answered && outcome.ok, "{outcome:?}");
    let charge = outcome.charge_id.clone().unwrap();
    let updates = drain(&bot).await;
    let paid = message(updates.last().unwrap());
    let p = paid.successful_payment().unwrap();
    assert_eq!(
        (
            p.total_amount,
            p.invoice_payload.as_str(),
            p.telegram_payment_charge_id.0.as_str()
        ),
        (50, "topup:250:u42", charge.as_str())
    );
    assert_eq!(
        updates.last().unwrap().id.0 as i64,
        outcome.update_id.unwrap()
    );

    // Declined: the user sees the bot's reason and no payment arrives.
    let (declined, _) = tokio::join!(
        sim.pay(Pay::new(&anna(), invoice.id.0)),
        answer_pre_checkout(&bot, false)
    );
    assert_eq!(
        (
            declined.answered,
            declined.ok,
            declined.error_message.as_deref()
        ),
        (true, false, Some("Товар закончился"))
    );
    assert!(
        drain(&bot)
            .await
            .iter()
            .all(|u| message(u).successful_payment().is_none())
    );

    // Tampered amount, and a refund that works once.
    let mut forged = Pay::new(&anna(), invoice.id.0);
    forged.tamper = Some(serde_json::json!({"total_amount": 1}));
    let (tampered, _) = tokio::join!(sim.pay(forged), answer_pre_checkout(&bot, true));
    let updates = drain(&bot).await;
    assert_eq!(
        message(updates.last().unwrap())
            .successful_payment()
            .unwrap()
            .total_amount,
        1
    );
    assert!(tampered.ok);

    let user = UserId(42);
    let tx = teloxide::types::TelegramTransactionId(charge.clone());
    bot.refund_star_payment(user, tx.clone()).await.unwrap();
    let twice = bot.refund_star_payment(user, tx.clone()).await;
    assert_eq!(
        api_error(twice),
        ApiError::Unknown("Bad Request: CHARGE_ALREADY_REFUNDED".into())
    );
    let stranger = bot.refund_star_payment(UserId(7), tx).await;
    assert_eq!(
        api_error(stranger),
        ApiError::Unknown("Bad Request: CHARGE_NOT_FOUND".into())
    );
    let updates = drain(&bot).await;
    assert!(
        matches!(&message(updates.last().unwrap()).kind, MessageKind::RefundedPayment(r) if r.refunded_payment.total_amount == 50)
    );

    // Unknown and late pre-checkout queries are refused like Telegram refuses them.
    let late = bot
        .answer_pre_checkout_query(teloxide::types::PreCheckoutQueryId("1".into()), true)
        .await;
    assert_eq!(api_error(late), ApiError::InvalidQueryId);
    sim.stop().await;
}

#[tokio::test]
async fn unanswered_queries_and_raw_payments() {
    let sim = sim().await;
    let bot = sim.bot();
    let no_invoice = sim.pay(Pay::new(&anna(), 1)).await;
    assert!(!no_invoice.answered && no_invoice.error_message.is_some());

    let facts = PaymentFacts {
        currency: "XTR".into(),
        total_amount: 100,
        invoice_payload: "forged".into(),
        telegram_payment_charge_id: "dup-1".into(),
        provider_payment_charge_id: String::new(),
    };
    sim.push_many(vec![
        UserAction::successful_payment(&anna(), facts.clone()),
        UserAction::successful_payment(&anna(), facts),
    ]);
    let updates = drain(&bot).await;
    assert_eq!(updates.len(), 2);
    for u in &updates {
        assert_eq!(
            message(u)
                .successful_payment()
                .unwrap()
                .telegram_payment_charge_id
                .0,
            "dup-1"
        );
    }
    bot.refund_star_payment(
        UserId(42),
        teloxide::types::TelegramTransactionId("dup-1".into()),
    )
    .await
    .unwrap();
    let bad = bot
        .send_invoice(
            ChatId(42),
            "x",
            "y",
            "p",
            "XTR",
            [LabeledPrice::new("a", 1), LabeledPrice::new("b", 1)],
        )
        .await;
    assert!(matches!(api_error(bad), ApiError::Unknown(_)));
    let provider = bot
        .send_invoice(
            ChatId(42),
            "x",
            "y",
            "p",
            "XTR",
            [LabeledPrice::new("a", 1)],
        )
        .provider_token("tok")
        .await;
    assert_eq!(
        api_error(provider),
        ApiError::Unknown("Bad Request: PAYMENT_PROVIDER_INVALID".into())
    );
    sim.stop().await;
}

#[tokio::test]
async fn paying_over_http() {
    let sim = sim().await;
    let bot = sim.bot();
    let invoice = bot
        .send_invoice(
            ChatId(42),
            "t",
            "d",
            "p1",
            "XTR",
            [LabeledPrice::new("t", 5)],
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/_sim/pay", sim.base_url);
    let body = serde_json::json!({"user": {"id": 42, "first_name": "Anna"}, "invoice_message_id": invoice.id.0, "charge_id": "c-1"});
    let (outcome, _) = tokio::join!(
        async {
            http.post(&url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        },
        answer_pre_checkout(&bot, true)
    );
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["charge_id"], "c-1");
    let not_invoice =
        serde_json::json!({"user": {"id": 42, "first_name": "Anna"}, "invoice_message_id": 999});
    let refused: serde_json::Value = http
        .post(&url)
        .json(&not_invoice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["answered"], false);
    assert!(refused["error_message"].is_string());
    sim.stop().await;
}
