//! "🔍 Upscale ×2" under a delivered portrait or in the gallery: a `portrait_upscale` run,
//! once per button (its message and data are the run's idempotency key, so pressing it twice
//! starts one run and charges once); a portrait already enlarged is sent again, free. A
//! press after the button's run failed (and was refunded) tries again as a new run.

use aisha_engine::StartOptions;
use aisha_workflows::upscale::{self, UpscaleInput};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::delivery::send_file;
use crate::keyboards;

/// `button`: the pressed button's message and data.
pub async fn upscale(
    ctx: &BotCtx,
    w: &Who,
    run_id: &str,
    idx: u32,
    button: &str,
) -> Result<(), BotError> {
    let user = w.user.to_string();
    let Some(portrait) = ctx.gallery.of_run(&user, run_id, i64::from(idx)).await? else {
        ctx.say(w.chat, copy(w.lang).no_such_portrait(), None)
            .await?;
        return Ok(());
    };
    if let Some(key) = portrait.upscaled() {
        return send_file(ctx, w.chat, &key, copy(w.lang).upscaled_again().into()).await;
    }
    let price = ctx.prices.upscale;
    let balance = ctx.ledger.balance(&user).await?;
    if balance < price {
        ctx.say(
            w.chat,
            copy(w.lang).not_enough_credits(price, balance),
            Some(keyboards::packs(w.lang, &ctx.config.packs)),
        )
        .await?;
        return Ok(());
    }
    let input = UpscaleInput {
        user_id: user.clone(),
        portrait_run: run_id.to_string(),
        idx,
    };
    let opts = StartOptions {
        subject: Some(user),
        idempotency_key: Some(format!("tg-button:{}:{button}", w.chat)),
        parent_run_id: Some(run_id.to_string()),
    };
    let started = upscale::press(&ctx.engine, &input, opts).await?;
    let text = if started.created {
        tracing::info!(run_id = started.run_id, user = w.user, "upscale accepted");
        copy(w.lang).upscale_accepted(price)
    } else {
        copy(w.lang).upscale_already().to_string()
    };
    ctx.say(w.chat, text, None).await?;
    Ok(())
}
