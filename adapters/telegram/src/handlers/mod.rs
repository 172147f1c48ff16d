//! The handler tree: updates are split by kind (teloxide's dptree), then by what the chat's
//! dialogue is waiting for, into small handlers, one file per part of the journey.

mod admin;
mod avatar;
mod balance;
mod gallery;
mod generate;
mod photos;
mod start;
mod upscale;

use std::sync::Arc;

use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree;
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, Message, MessageKind};

use super::actions::Action;
use super::context::{BotCtx, BotError};
use super::copy::copy;
use super::dialogue::State;
use super::lang::Lang;

pub type Schema = dptree::Handler<'static, Result<(), BotError>, DpHandlerDescription>;

pub fn schema() -> Schema {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_callback))
}

/// Who wrote, in which chat, in what language.
pub struct Who {
    pub user: i64,
    pub chat: i64,
    pub lang: Lang,
}

async fn who(ctx: &BotCtx, from: &teloxide::types::User, chat: i64) -> Result<Who, BotError> {
    let user_id = from.id.0 as i64;
    let u = ctx
        .users
        .seen(user_id, from.language_code.as_deref(), &from.first_name)
        .await?;
    Ok(Who {
        user: user_id,
        chat,
        lang: u.lang,
    })
}

async fn on_message(msg: Message, ctx: Arc<BotCtx>) -> Result<(), BotError> {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    if !msg.chat.is_private() {
        return Ok(());
    }
    let w = who(&ctx, from, msg.chat.id.0).await?;
    if let Some(pay) = msg.successful_payment() {
        return balance::paid(&ctx, &w, pay).await;
    }
    // Service messages (a refund, a pinned message, …) need no answer.
    if !matches!(msg.kind, MessageKind::Common(_)) {
        return Ok(());
    }
    if let Some(text) = msg.text() {
        let text = text.trim();
        if let Some(cmd) = text.strip_prefix('/') {
            let (name, args) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
            let name = name.split('@').next().unwrap_or(name).to_ascii_lowercase();
            return command(&ctx, &w, &name, args.trim()).await;
        }
        return match ctx.dialogues.get(w.chat).await? {
            State::AvatarName => avatar::named(&ctx, &w, text).await,
            State::Prompt { avatar_id } => generate::prompted(&ctx, &w, avatar_id, text).await,
            _ => start::menu(&ctx, &w).await,
        };
    }
    if msg.photo().is_some() || msg.document().is_some() {
        return photos::received(&ctx, &w, &msg).await;
    }
    ctx.say(w.chat, copy(w.lang).not_understood(), None).await?;
    Ok(())
}

async fn command(ctx: &BotCtx, w: &Who, name: &str, args: &str) -> Result<(), BotError> {
    match name {
        "start" => start::start(ctx, w).await,
        "help" => start::help(ctx, w).await,
        "cancel" => start::cancel(ctx, w).await,
        "language" => start::language(ctx, w).await,
        "menu" => start::menu(ctx, w).await,
        "avatar" => avatar::create(ctx, w).await,
        "avatars" => avatar::list(ctx, w).await,
        "generate" => generate::begin(ctx, w).await,
        "gallery" => gallery::show(ctx, w, 0).await,
        "balance" => balance::show(ctx, w).await,
        "grant" | "runs" | "retry" | "refund" if ctx.config.is_admin(w.user) => {
            admin::command(ctx, w, name, args).await
        }
        _ => {
            ctx.say(w.chat, copy(w.lang).unknown_command(), None)
                .await?;
            Ok(())
        }
    }
}

async fn on_callback(q: CallbackQuery, ctx: Arc<BotCtx>) -> Result<(), BotError> {
    let chat = q
        .message
        .as_ref()
        .map(|m| m.chat().id.0)
        .unwrap_or(q.from.id.0 as i64);
    let w = who(&ctx, &q.from, chat).await?;
    let action = q.data.as_deref().and_then(Action::parse);
    // Telegram shows a spinner on the button until it is answered.
    let mut answer = ctx.tg.bot.answer_callback_query(q.id.clone());
    if action.is_none() {
        answer = answer.text(copy(w.lang).outdated_button());
    }
    // A press handled after a restart may be too old to answer: the action still counts.
    if let Err(e) = ctx.tg.call(None, answer).await {
        tracing::debug!(error = %e, "answerCallbackQuery");
    }
    let Some(action) = action else {
        return Ok(());
    };
    match action {
        Action::CreateAvatar => avatar::create(&ctx, &w).await,
        Action::Avatars => avatar::list(&ctx, &w).await,
        Action::PickAvatar => generate::pick(&ctx, &w).await,
        Action::Preset(p) => avatar::preset(&ctx, &w, p).await,
        Action::Train => photos::train(&ctx, &w, &q.id.0).await,
        Action::Generate => generate::begin(&ctx, &w).await,
        Action::Avatar(id) => generate::avatar(&ctx, &w, id).await,
        Action::StylePage(p) => generate::styles(&ctx, &w, p).await,
        Action::Style(id) => generate::style(&ctx, &w, id).await,
        Action::FreePrompt => generate::free(&ctx, &w).await,
        Action::Aspect(a) => generate::aspect(&ctx, &w, a).await,
        Action::Count(n) => generate::count(&ctx, &w, n, &q.id.0).await,
        Action::Again(run) => generate::again(&ctx, &w, &run, &q.id.0).await,
        Action::OtherStyle(run) => generate::other_style(&ctx, &w, &run).await,
        Action::Upscale { run, idx } => {
            // The button, not the press: a second press of it is the same upscale.
            let message = q.message.as_ref().map(|m| m.id().0).unwrap_or(0);
            let button = format!("{message}:{}", q.data.as_deref().unwrap_or_default());
            upscale::upscale(&ctx, &w, &run, idx, &button).await
        }
        Action::Gallery(p) => gallery::show(&ctx, &w, p).await,
        Action::Delete(id) => gallery::delete(&ctx, &w, &id).await,
        Action::Balance => balance::show(&ctx, &w).await,
        Action::Buy(credits) => balance::invoice(&ctx, &w, credits).await,
        Action::Help => start::help(&ctx, &w).await,
        Action::Lang(l) => start::set_language(&ctx, &w, l).await,
    }
}
