//! Generate: avatar (the main one by default) → a style of the catalogue or a free prompt →
//! aspect ratio → how many images; then a `portrait_generation` run. "Again" and "another
//! style" under delivered portraits come back here.

use aisha_engine::{EngineError, StartOptions};
use aisha_workflows::portrait::{self, PortraitInput};
use aisha_workflows::provider::Aspect;
use aisha_workflows::styles;

use super::Who;
use super::avatar::of_user;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::dialogue::State;
use crate::keyboards;

pub async fn begin(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let ready = ready_avatars(ctx, w.user).await?;
    if ready.is_empty() {
        ctx.say(
            w.chat,
            copy(w.lang).need_ready_avatar(),
            Some(keyboards::menu(w.lang)),
        )
        .await?;
        return Ok(());
    }
    let main = ctx.users.get(w.user).await?.and_then(|u| u.main_avatar);
    let chosen = match main {
        Some(m) if ready.iter().any(|(id, _)| *id == m) => Some(m),
        _ if ready.len() == 1 => Some(ready[0].0.clone()),
        _ => None,
    };
    match chosen {
        Some(id) => avatar(ctx, w, id).await,
        None => choose(ctx, w, &ready).await,
    }
}

/// The user's ready avatars: (id, name), newest first.
async fn ready_avatars(ctx: &BotCtx, user: i64) -> Result<Vec<(String, String)>, BotError> {
    Ok(of_user(ctx, user)
        .await?
        .into_iter()
        .filter(|a| a.status == "ready")
        .map(|a| (a.id, a.name))
        .collect())
}

async fn choose(ctx: &BotCtx, w: &Who, ready: &[(String, String)]) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        copy(w.lang).which_avatar(),
        Some(keyboards::avatars(w.lang, ready)),
    )
    .await?;
    Ok(())
}

/// "Another avatar": the user's ready avatars to pick from.
pub async fn pick(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let ready = ready_avatars(ctx, w.user).await?;
    choose(ctx, w, &ready).await
}

pub async fn avatar(ctx: &BotCtx, w: &Who, id: String) -> Result<(), BotError> {
    let mine = ready_avatars(ctx, w.user)
        .await?
        .iter()
        .any(|(ready, _)| *ready == id);
    if !mine {
        return lost(ctx, w).await;
    }
    ctx.users.set_main_avatar(w.user, &id).await?;
    ctx.dialogues
        .set(
            w.chat,
            &State::Order {
                avatar_id: id,
                style: None,
                prompt: None,
                aspect: None,
            },
        )
        .await?;
    style_page(ctx, w, 0).await
}

/// A button of an order that is no longer the chat's current one.
async fn lost(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        copy(w.lang).order_lost(),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}

pub async fn styles(ctx: &BotCtx, w: &Who, page: u32) -> Result<(), BotError> {
    if !matches!(ctx.dialogues.get(w.chat).await?, State::Order { .. }) {
        return lost(ctx, w).await;
    }
    style_page(ctx, w, page).await
}

async fn style_page(ctx: &BotCtx, w: &Who, page: u32) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        copy(w.lang).pick_style(),
        Some(keyboards::styles(w.lang, page as usize)),
    )
    .await?;
    Ok(())
}

pub async fn style(ctx: &BotCtx, w: &Who, id: String) -> Result<(), BotError> {
    let (State::Order { avatar_id, .. }, Some(s)) =
        (ctx.dialogues.get(w.chat).await?, styles::find(&id))
    else {
        return lost(ctx, w).await;
    };
    ctx.dialogues
        .set(
            w.chat,
            &State::Order {
                avatar_id,
                style: Some(id),
                prompt: None,
                aspect: None,
            },
        )
        .await?;
    ask_aspect(ctx, w, copy(w.lang).style_name(s)).await
}

pub async fn free(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let State::Order { avatar_id, .. } = ctx.dialogues.get(w.chat).await? else {
        return lost(ctx, w).await;
    };
    ctx.dialogues
        .set(w.chat, &State::Prompt { avatar_id })
        .await?;
    ctx.say(w.chat, copy(w.lang).describe_portrait(), None)
        .await?;
    Ok(())
}

pub async fn prompted(
    ctx: &BotCtx,
    w: &Who,
    avatar_id: String,
    text: &str,
) -> Result<(), BotError> {
    let len = text.chars().count();
    if !(3..=500).contains(&len) {
        ctx.say(w.chat, copy(w.lang).bad_prompt(len), None).await?;
        return Ok(());
    }
    ctx.dialogues
        .set(
            w.chat,
            &State::Order {
                avatar_id,
                style: None,
                prompt: Some(text.to_string()),
                aspect: None,
            },
        )
        .await?;
    ask_aspect(ctx, w, copy(w.lang).own_prompt()).await
}

async fn ask_aspect(ctx: &BotCtx, w: &Who, what: &str) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        copy(w.lang).ask_aspect(what),
        Some(keyboards::aspects(w.lang)),
    )
    .await?;
    Ok(())
}

pub async fn aspect(ctx: &BotCtx, w: &Who, a: Aspect) -> Result<(), BotError> {
    let State::Order {
        avatar_id,
        style,
        prompt,
        ..
    } = ctx.dialogues.get(w.chat).await?
    else {
        return lost(ctx, w).await;
    };
    ctx.dialogues
        .set(
            w.chat,
            &State::Order {
                avatar_id,
                style,
                prompt,
                aspect: Some(a),
            },
        )
        .await?;
    ctx.say(
        w.chat,
        copy(w.lang).ask_count(ctx.prices.image),
        Some(keyboards::counts(w.lang, ctx.prices.image)),
    )
    .await?;
    Ok(())
}

/// The order is complete: a run, once per button press.
pub async fn count(ctx: &BotCtx, w: &Who, n: u32, press: &str) -> Result<(), BotError> {
    let State::Order {
        avatar_id,
        style,
        prompt,
        aspect,
    } = ctx.dialogues.get(w.chat).await?
    else {
        return lost(ctx, w).await;
    };
    let price = ctx.prices.image * n as i64;
    if !enough(ctx, w, price).await? {
        return Ok(());
    }
    let input = PortraitInput {
        user_id: w.user.to_string(),
        avatar_id,
        style,
        prompt,
        aspect,
        count: n,
        seed: None,
    };
    let started = portrait::start(
        &ctx.engine,
        &input,
        StartOptions {
            subject: Some(w.user.to_string()),
            idempotency_key: Some(format!("tg-press:{press}")),
            parent_run_id: None,
        },
    )
    .await?;
    ctx.dialogues.set(w.chat, &State::Idle).await?;
    accepted(ctx, w, n, price, &started.run_id).await
}

/// Refuses (with the way to top up) when the balance is short of `price`.
async fn enough(ctx: &BotCtx, w: &Who, price: i64) -> Result<bool, BotError> {
    let balance = ctx.ledger.balance(&w.user.to_string()).await?;
    if balance >= price {
        return Ok(true);
    }
    ctx.say(
        w.chat,
        copy(w.lang).not_enough_credits(price, balance),
        Some(keyboards::packs(w.lang, &ctx.config.packs)),
    )
    .await?;
    Ok(false)
}

async fn accepted(ctx: &BotCtx, w: &Who, n: u32, price: i64, run_id: &str) -> Result<(), BotError> {
    tracing::info!(run_id, user = w.user, images = n, "portrait order accepted");
    let text = copy(w.lang).order_accepted(n, price);
    let sent = ctx.say(w.chat, text.as_str(), None).await?;
    // Edited in place as the order's progress arrives (`progress.rs`).
    ctx.progress
        .remember(run_id, w.chat, i64::from(sent.id.0), &text, None)
        .await?;
    Ok(())
}

/// The run `run_id` if it is this user's.
async fn own_run(
    ctx: &BotCtx,
    w: &Who,
    run_id: &str,
) -> Result<Option<serde_json::Value>, BotError> {
    match ctx.engine.show_run(run_id).await {
        Ok(r)
            if r.run.subject.as_deref() == Some(&w.user.to_string())
                && r.run.workflow == portrait::NAME =>
        {
            Ok(Some(r.state))
        }
        Ok(_) | Err(EngineError::UnknownRun(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn again(ctx: &BotCtx, w: &Who, run_id: &str, press: &str) -> Result<(), BotError> {
    let Some(state) = own_run(ctx, w, run_id).await? else {
        return lost(ctx, w).await;
    };
    let n = state["count"].as_u64().unwrap_or(1) as u32;
    let price = ctx.prices.image * n as i64;
    if !enough(ctx, w, price).await? {
        return Ok(());
    }
    let started =
        portrait::regenerate(&ctx.engine, run_id, Some(format!("tg-press:{press}"))).await?;
    accepted(ctx, w, n, price, &started.run_id).await
}

pub async fn other_style(ctx: &BotCtx, w: &Who, run_id: &str) -> Result<(), BotError> {
    match own_run(ctx, w, run_id)
        .await?
        .and_then(|s| s["avatar_id"].as_str().map(str::to_string))
    {
        Some(avatar_id) => avatar(ctx, w, avatar_id).await,
        None => lost(ctx, w).await,
    }
}
