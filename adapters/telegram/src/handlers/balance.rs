//! Balance, recent entries, buying credits with Stars, crediting a successful payment.

use aisha_workflows::credits::{Applied, Kind};
use teloxide::prelude::*;
use teloxide::types::{ChatId, LabeledPrice, SuccessfulPayment};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::keyboards;
use crate::payments::CURRENCY;

pub async fn show(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let user = w.user.to_string();
    let balance = ctx.ledger.balance(&user).await?;
    let entries = ctx.ledger.entries(&user, 5).await?;
    let mut text = w.lang.pick(
        format!("💰 Баланс: {balance} кредитов."),
        format!("💰 Balance: {balance} credits."),
    );
    if !entries.is_empty() {
        text.push_str(
            w.lang
                .pick("\n\nПоследние операции:", "\n\nRecent entries:"),
        );
        for e in entries {
            let what = match e.kind.as_str() {
                "grant" => w.lang.pick("подарок", "gift"),
                "purchase" if e.amount < 0 => w.lang.pick("возврат оплаты", "payment refunded"),
                "purchase" => w.lang.pick("покупка", "purchase"),
                "reservation" => w.lang.pick("заказ", "order"),
                "refund" => w.lang.pick("возврат", "refund"),
                _ => w.lang.pick("списание", "charge"),
            };
            text.push_str(&format!("\n{:+} — {what}", e.amount));
        }
    }
    text.push_str(w.lang.pick(
        "\n\nПополнить звёздами Telegram:",
        "\n\nTop up with Telegram Stars:",
    ));
    ctx.say(
        w.chat,
        text,
        Some(keyboards::packs(w.lang, &ctx.config.packs)),
    )
    .await?;
    Ok(())
}

/// An invoice for one of the configured packs, in Stars.
pub async fn invoice(ctx: &BotCtx, w: &Who, credits: i64) -> Result<(), BotError> {
    let Some(pack) = ctx
        .config
        .packs
        .iter()
        .copied()
        .find(|p| p.credits == credits)
    else {
        return show(ctx, w).await;
    };
    let title = w.lang.pick(
        format!("{} кредитов", pack.credits),
        format!("{} credits", pack.credits),
    );
    let description = w.lang.pick(
        format!("{} кредитов Aisha: аватары и портреты", pack.credits),
        format!("{} Aisha credits for avatars and portraits", pack.credits),
    );
    let req = ctx.tg.bot.send_invoice(
        ChatId(w.chat),
        title.clone(),
        description,
        ctx.invoices.payload(w.user, pack),
        CURRENCY,
        [LabeledPrice::new(title, pack.stars)],
    );
    ctx.tg.call(Some(w.chat), req).await?;
    Ok(())
}

/// Credits a successful payment once: the ledger entry's key is the charge id, so a
/// duplicated update changes nothing. A payment that is not for one of our invoices, for
/// another user or for a different amount is logged and not credited.
pub async fn paid(ctx: &BotCtx, w: &Who, pay: &SuccessfulPayment) -> Result<(), BotError> {
    let charge = pay.telegram_payment_charge_id.0.as_str();
    let order = match ctx.invoices.check(
        &pay.invoice_payload,
        w.user,
        &pay.currency,
        pay.total_amount,
    ) {
        Ok(o) => o,
        Err(refused) => {
            tracing::warn!(user = w.user, charge, %refused, "successful_payment not credited");
            ctx.metrics.telegram_update("payment", "refused");
            return Ok(());
        }
    };
    ctx.payments
        .record(charge, &order, &pay.invoice_payload)
        .await?;
    let applied = ctx
        .ledger
        .add(
            &w.user.to_string(),
            Kind::Purchase,
            order.credits,
            "telegram stars",
            &format!("tg:{charge}"),
        )
        .await?;
    if applied == Applied::Already {
        tracing::info!(
            user = w.user,
            charge,
            "successful_payment seen before: not credited again"
        );
        return Ok(());
    }
    let balance = ctx.ledger.balance(&w.user.to_string()).await?;
    ctx.say(
        w.chat,
        w.lang.pick(
            format!(
                "⭐ Оплата получена: +{} кредитов. Баланс: {balance}.",
                order.credits
            ),
            format!(
                "⭐ Payment received: +{} credits. Balance: {balance}.",
                order.credits
            ),
        ),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}
