//! Create avatar: name → training preset → photos (see `photos.rs`); and the list of the
//! user's avatars with their progress.

use aisha_engine::ops::RunFilter;
use aisha_workflows::avatar::{self, Preset};
use aisha_workflows::avatars::AvatarStatus;

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::dialogue::State;
use crate::keyboards;

pub async fn create(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    ctx.dialogues.set(w.chat, &State::AvatarName).await?;
    ctx.say(w.chat, copy(w.lang).ask_avatar_name(), None)
        .await?;
    Ok(())
}

pub async fn named(ctx: &BotCtx, w: &Who, text: &str) -> Result<(), BotError> {
    let len = text.chars().count();
    if !(2..=50).contains(&len) || text.chars().any(char::is_control) {
        ctx.say(w.chat, copy(w.lang).bad_avatar_name(len), None)
            .await?;
        return Ok(());
    }
    ctx.dialogues
        .set(
            w.chat,
            &State::AvatarPreset {
                name: text.to_string(),
            },
        )
        .await?;
    ctx.say(
        w.chat,
        copy(w.lang).choose_preset(text, ctx.prices.avatar),
        Some(keyboards::presets(w.lang)),
    )
    .await?;
    Ok(())
}

pub async fn preset(ctx: &BotCtx, w: &Who, preset: Preset) -> Result<(), BotError> {
    let State::AvatarPreset { name } = ctx.dialogues.get(w.chat).await? else {
        return create(ctx, w).await;
    };
    ctx.dialogues
        .set(
            w.chat,
            &State::AvatarPhotos {
                name,
                preset,
                upload: ulid::Ulid::generate().to_string(),
                photos: Vec::new(),
            },
        )
        .await?;
    ctx.say(
        w.chat,
        copy(w.lang).send_photos(avatar::MIN_PHOTOS, avatar::MAX_PHOTOS),
        None,
    )
    .await?;
    Ok(())
}

/// One avatar as the user sees it.
pub struct AvatarView {
    pub id: String,
    pub name: String,
    /// queued, training, ready, failed
    pub status: &'static str,
}

/// The user's avatars, newest first: trainings not yet started are "queued".
pub async fn of_user(ctx: &BotCtx, user: i64) -> Result<Vec<AvatarView>, BotError> {
    let rows = ctx.avatars.of_user(&user.to_string(), 20).await?;
    let runs = ctx
        .engine
        .list_runs(&RunFilter {
            workflow: Some(avatar::NAME.into()),
            subject: Some(user.to_string()),
            limit: Some(20),
            ..RunFilter::default()
        })
        .await?;
    let mut out = Vec::new();
    for r in runs {
        if rows.iter().any(|a| a.id == r.id) {
            continue;
        }
        let status = match r.status.as_str() {
            "pending" | "running" | "waiting" => "queued",
            "failed" | "cancelled" => "failed",
            _ => continue,
        };
        let state = ctx.engine.show_run(&r.id).await?.state;
        let name = state["name"].as_str().unwrap_or("?").to_string();
        out.push(AvatarView {
            id: r.id,
            name,
            status,
        });
    }
    for a in rows {
        let status = match a.status {
            AvatarStatus::Ready => "ready",
            AvatarStatus::Failed => "failed",
            AvatarStatus::Training => "training",
        };
        out.push(AvatarView {
            id: a.id,
            name: a.name,
            status,
        });
    }
    Ok(out)
}

pub async fn list(ctx: &BotCtx, w: &Who) -> Result<(), BotError> {
    let avatars = of_user(ctx, w.user).await?;
    if avatars.is_empty() {
        ctx.say(
            w.chat,
            copy(w.lang).no_avatars(),
            Some(keyboards::menu(w.lang)),
        )
        .await?;
        return Ok(());
    }
    let lines: Vec<String> = avatars
        .iter()
        .map(|a| {
            let status = copy(w.lang).avatar_status(a.status);
            format!("• {} — {status}", a.name)
        })
        .collect();
    ctx.say(
        w.chat,
        format!("{}\n{}", copy(w.lang).your_avatars(), lines.join("\n")),
        Some(keyboards::menu(w.lang)),
    )
    .await?;
    Ok(())
}
