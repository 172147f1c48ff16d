//! /start, /help, /cancel, /language and the main menu.

use aisha_workflows::credits::{Applied, Kind};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::dialogue::State;
use crate::keyboards;
use crate::lang::Lang;

/// Greets, grants the welcome credits (once per user, whatever happens), shows the menu.
pub async fn start(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.dialogues.set(w.chat, &State::Idle).await?;
    let mut text = w
        .lang
        .pick(
            "Привет! Я Aisha: обучу ваш личный аватар по 10–20 селфи и нарисую ваши портреты в любых стилях.",
            "Hi! I'm Aisha: I train your personal avatar from 10–20 selfies and make portraits of you in any style.",
        )
        .to_string();
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
            text.push_str(&w.lang.pick(
                format!(
                    "\n\n🎁 Дарим {} кредитов для начала.",
                    ctx.config.welcome_credits
                ),
                format!(
                    "\n\n🎁 Here are {} credits to start with.",
                    ctx.config.welcome_credits
                ),
            ));
        }
    }
    ctx.say(w.chat, text, Some(keyboards::menu(w.lang))).await?;
    Ok(())
}

pub async fn menu(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.say(
        w.chat,
        w.lang.pick("Что делаем?", "What shall we do?"),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}

pub async fn help(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let p = ctx.prices;
    let text = w.lang.pick(
        format!(
            "Как это работает:\n1. «Создать аватар»: имя, режим обучения и 10–20 ваших фото (лицо хорошо видно, разные ракурсы; JPG/PNG/WEBP, от 512 px, до 20 МБ). Обучение стоит {} кредитов.\n2. «Портрет»: выберите стиль или напишите свой промпт, формат и число картинок ({} кредитов за каждую).\n3. Если что-то не получится, кредиты вернутся.\n\nКоманды: /start, /avatar, /avatars, /generate, /gallery, /balance, /language, /cancel, /help",
            p.avatar, p.image
        ),
        format!(
            "How it works:\n1. “Create avatar”: a name, a training mode and 10–20 photos of you (face clearly visible, different angles; JPG/PNG/WEBP, at least 512 px, up to 20 MB). Training costs {} credits.\n2. “Portrait”: pick a style or write your own prompt, an aspect ratio and how many images ({} credits each).\n3. If something fails, the credits come back.\n\nCommands: /start, /avatar, /avatars, /generate, /gallery, /balance, /language, /cancel, /help",
            p.avatar, p.image
        ),
    );
    ctx.say(w.chat, text, Some(keyboards::menu(w.lang))).await?;
    Ok(())
}

/// Leaves whatever dialogue the chat is in (photos already sent are kept in storage but
/// not used).
pub async fn cancel(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let was = ctx.dialogues.get(w.chat).await?;
    ctx.dialogues.set(w.chat, &State::Idle).await?;
    let text = if was == State::Idle {
        w.lang.pick("Отменять нечего.", "Nothing to cancel.")
    } else {
        w.lang.pick("Отменено.", "Cancelled.")
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
        lang.pick("Говорим по-русски.", "English it is."),
        Some(keyboards::menu(lang)),
    )
    .await?;
    Ok(())
}
