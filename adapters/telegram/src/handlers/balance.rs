//! Balance, recent entries, buying credits with Stars, crediting a successful payment.

use aisha_workflows::credits::{Applied, Kind};
use teloxide::prelude::*;
use teloxide::types::{ChatId, LabeledPrice, SuccessfulPayment};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::keyboards;
use crate::payments::CURRENCY;

pub async fn show(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let user = w.user.to_string();
    let balance = ctx.ledger.balance(&user).await?;
    let entries = ctx.ledger.entries(&user, 5).await?;
    let mut text = copy(w.lang).balance(balance);
    if !entries.is_empty() {
        text.push_str(copy(w.lang).recent_entries());
        for e in entries {
            let what = copy(w.lang).entry(&e.kind, e.amount);
            text.push_str(&format!("\n{:+} — {what}", e.amount));
        }
    }
    text.push_str(copy(w.lang).top_up());
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
    let title = copy(w.lang).pack_title(pack.credits);
    let description = copy(w.lang).pack_description(pack.credits);
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
        copy(w.lang).payment_received(order.credits, balance),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}
