//! /start, /help, /cancel, /language and the main menu.

use aisha_workflows::credits::{Applied, Kind};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::dialogue::State;
use crate::keyboards;
use crate::lang::Lang;

/// Greets, grants the welcome credits (once per user, whatever happens), shows the menu.
pub async fn start(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.dialogues.set(w.chat, &State::Idle).await?;
    let mut text = copy(w.lang).greeting().to_string();
    if ctx.config.welcome_credits > 0 {
        let applied = ctx
            .ledger
            .add(
                &w.user.to_string(),
                Kind::Grant,
                ctx.config.welcome_credits,
                "welcome",
                &format!("welcome:{}", w.user),
            )
            .await?;
        if applied == Applied::New {
            text.push_str(&copy(w.lang).welcome_credits(ctx.config.welcome_credits));
        }
    }
    ctx.say(w.chat, text, Some(keyboards::menu(w.lang))).await?;
    Ok(())
}

pub async fn menu(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        copy(w.lang).what_shall_we_do(),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}

pub async fn help(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let text = copy(w.lang).help(ctx.prices);
    ctx.say(w.chat, text, Some(keyboards::menu(w.lang))).await?;
    Ok(())
}

/// Leaves whatever dialogue the chat is in (photos already sent are kept in storage but
/// not used).
pub async fn cancel(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let was = ctx.dialogues.get(w.chat).await?;
    ctx.dialogues.set(w.chat, &State::Idle).await?;
    let text = if was == State::Idle {
        copy(w.lang).nothing_to_cancel()
    } else {
        copy(w.lang).cancelled()
    };
    ctx.say(w.chat, text, Some(keyboards::menu(w.lang))).await?;
    Ok(())
}

pub async fn language(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.say(w.chat, "Язык / Language:", Some(keyboards::languages()))
        .await?;
    Ok(())
}

pub async fn set_language(ctx: &BotCtx, w: &Who, lang: Lang) -> Result<(), BotError> {
    ctx.users.set_lang(w.user, lang).await?;
    ctx.say(
        w.chat,
        copy(lang).language_chosen(),
        Some(keyboards::menu(lang)),
    )
    .await?;
    Ok(())
}
