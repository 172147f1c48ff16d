//! Admin commands, for the ids in `TELEGRAM_ADMIN_IDS`: grant credits, a user's runs, retry
//! a failed run, refund a Stars payment. Everything goes through the engine's operations
//! API and the ledger, like the CLI and the admin HTTP API.

use aisha_engine::ops::RunFilter;
use aisha_workflows::credits::{CreditsError, Kind};
use teloxide::prelude::*;
use teloxide::types::{TelegramTransactionId, UserId};
use teloxide::{ApiError, RequestError};

use super::Who;
use crate::context::{BotCtx, BotError};

pub async fn command(ctx: &BotCtx, w: &Who, name: &str, args: &str) -> Result<(), BotError> {
    let mut a = args.split_whitespace();
    let text = match name {
        "grant" => match (
            a.next().and_then(|u| u.parse::<i64>().ok()),
            a.next().and_then(|n| n.parse::<i64>().ok()),
        ) {
            (Some(user), Some(amount)) if amount > 0 => {
                let reason: Vec<&str> = a.collect();
                let reason = if reason.is_empty() {
                    "admin grant".to_string()
                } else {
                    reason.join(" ")
                };
                grant(ctx, w, user, amount, &reason).await?
            }
            _ => "usage: /grant USER_ID AMOUNT [reason]".to_string(),
        },
        "runs" => match a.next() {
            Some(user) => {
                let runs = ctx
                    .engine
                    .list_runs(&RunFilter {
                        subject: Some(user.to_string()),
                        limit: Some(10),
                        ..RunFilter::default()
                    })
                    .await?;
                if runs.is_empty() {
                    format!("no runs for {user}")
                } else {
                    runs.iter()
                        .map(|r| {
                            format!(
                                "{} {} {} @{}{}",
                                r.id,
                                r.workflow,
                                r.status,
                                r.step,
                                r.error
                                    .as_deref()
                                    .map(|e| format!(
                                        "\n  {}",
                                        e.chars().take(200).collect::<String>()
                                    ))
                                    .unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
            None => "usage: /runs USER_ID".to_string(),
        },
        "retry" => match a.next() {
            Some(run) => match ctx.engine.retry_run(run).await {
                Ok(r) => format!("{} is {} again at {}", r.id, r.status, r.step),
                Err(e) => format!("cannot retry: {e}"),
            },
            None => "usage: /retry RUN_ID".to_string(),
        },
        "refund" => match a.next() {
            Some(charge) => refund(ctx, charge).await?,
            None => "usage: /refund CHARGE_ID".to_string(),
        },
        _ => return Ok(()),
    };
    ctx.say(w.chat, text, None).await?;
    Ok(())
}

async fn grant(
    ctx: &BotCtx,
    w: &Who,
    user: i64,
    amount: i64,
    reason: &str,
) -> Result<String, BotError> {
    let key = format!("tg-admin:{}:{}", w.user, ulid::Ulid::generate());
    match ctx
        .ledger
        .add(&user.to_string(), Kind::Grant, amount, reason, &key)
        .await
    {
        Ok(_) => {}
        // Over MAX_GRANT or MAX_BALANCE: the admin is told which; nothing was written.
        Err(e) if e.is_out_of_bounds() => return Ok(format!("not granted: {e}")),
        Err(e) => return Err(e.into()),
    }
    let balance = ctx.ledger.balance(&user.to_string()).await?;
    tracing::info!(
        admin = w.user,
        user,
        amount,
        reason,
        "credits granted from Telegram"
    );
    Ok(format!("+{amount} → {user}: balance {balance}"))
}

/// Takes the credits back first (once), then asks Telegram to return the Stars; running it
/// again after a failure finishes the job without taking the credits twice.
async fn refund(ctx: &BotCtx, charge: &str) -> Result<String, BotError> {
    let Some(p) = ctx.payments.get(charge).await? else {
        return Ok(format!("no payment {charge}"));
    };
    if p.refunded_at.is_some() {
        return Ok(format!("{charge} was refunded already"));
    }
    match ctx
        .ledger
        .take_back_purchase(&p.user_id, p.credits, "stars refunded", charge)
        .await
    {
        Ok(_) => {}
        Err(CreditsError::Insufficient { balance, .. }) => {
            return Ok(format!(
                "user {} has spent the credits (balance {balance} < {}): not refunded",
                p.user_id, p.credits
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let user: u64 = p.user_id.parse().unwrap_or_default();
    let req = ctx
        .tg
        .bot
        .refund_star_payment(UserId(user), TelegramTransactionId(charge.to_string()));
    match ctx.tg.call(None, req).await {
        Ok(_) => {}
        Err(RequestError::Api(ApiError::Unknown(e))) if e.contains("CHARGE_ALREADY_REFUNDED") => {}
        Err(e) => {
            return Ok(format!(
                "credits taken back; Telegram refused the refund: {e}. Run /refund {charge} again."
            ));
        }
    }
    ctx.payments.refunded(charge).await?;
    tracing::info!(
        charge,
        user = p.user_id,
        stars = p.stars,
        "Stars payment refunded"
    );
    Ok(format!(
        "refunded {} ⭐ to {}, {} credits taken back",
        p.stars, p.user_id, p.credits
    ))
}
