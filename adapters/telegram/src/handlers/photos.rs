//! Photos for an avatar: each is fetched from Telegram, checked at once (a refused one is
//! answered right away, with the reason), stored as received, and counted; the count is
//! answered once the photos stop arriving. "Start training" starts the workflow.

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::{EngineError, StartOptions};
use aisha_workflows::avatar::{self, AvatarInput, MAX_PHOTOS, MIN_PHOTOS};
use aisha_workflows::blob::BlobKey;
use aisha_workflows::photos::{PhotoProblem, normalise};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use teloxide::types::Message;

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::dialogue::{State, Uploaded};
use crate::keyboards;
use crate::send::DownloadError;

/// getFile serves files up to 20 MB.
pub const MAX_DOWNLOAD: u64 = 20 << 20;
/// How long an album may pause before the count is answered.
const SETTLE: Duration = Duration::from_millis(1200);

pub async fn received(ctx: &Arc<BotCtx>, w: &Who, msg: &Message) -> Result<(), BotError> {
    let state = ctx.dialogues.get(w.chat).await?;
    if !matches!(state, State::AvatarPhotos { .. } | State::Replacing { .. }) {
        ctx.say(
            w.chat,
            copy(w.lang).photos_only_while_creating(),
            Some(keyboards::menu(w.lang)),
        )
        .await?;
        return Ok(());
    }
    let (file_id, size) = match (
        msg.photo()
            .and_then(|p| p.iter().max_by_key(|s| s.width * s.height)),
        msg.document(),
    ) {
        (Some(p), _) => (p.file.id.0.clone(), p.file.size),
        (None, Some(d)) => (d.file.id.0.clone(), d.file.size),
        (None, None) => return Ok(()),
    };
    if u64::from(size) > MAX_DOWNLOAD {
        return refuse(
            ctx,
            w,
            &PhotoProblem::TooLarge {
                bytes: size as usize,
                max: MAX_DOWNLOAD as usize,
            },
        )
        .await;
    }
    let bytes = match ctx.tg.download(&file_id, MAX_DOWNLOAD).await {
        Ok(b) => b,
        Err(DownloadError::TooLarge { size, max }) => {
            return refuse(
                ctx,
                w,
                &PhotoProblem::TooLarge {
                    bytes: size as usize,
                    max: max as usize,
                },
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    match state {
        State::AvatarPhotos {
            name,
            preset,
            upload,
            mut photos,
        } => {
            if photos.len() >= MAX_PHOTOS {
                ctx.say(
                    w.chat,
                    copy(w.lang).photo_limit(MAX_PHOTOS),
                    Some(keyboards::train(w.lang)),
                )
                .await?;
                return Ok(());
            }
            if let Some(i) = photos.iter().position(|p| p.sha256 == sha256) {
                return refuse(ctx, w, &PhotoProblem::Duplicate { of: i + 1 }).await;
            }
            if let Err(problem) = check(ctx, bytes.clone()).await {
                return refuse(ctx, w, &problem).await;
            }
            let key = store(ctx, w.user, &upload, &sha256, bytes).await?;
            photos.push(Uploaded { key, sha256 });
            let count = photos.len();
            ctx.dialogues
                .set(
                    w.chat,
                    &State::AvatarPhotos {
                        name,
                        preset,
                        upload,
                        photos,
                    },
                )
                .await?;
            answer_count_later(ctx.clone(), w.chat, w.lang, count);
        }
        State::Replacing {
            run_id,
            round,
            slots,
            mut filled,
        } => {
            if let Err(problem) = check(ctx, bytes.clone()).await {
                return refuse(ctx, w, &problem).await;
            }
            let Some(slot) = slots.iter().copied().find(|s| !filled.contains_key(s)) else {
                return Ok(());
            };
            let key = store(ctx, w.user, &run_id, &sha256, bytes).await?;
            filled.insert(slot, key);
            if filled.len() < slots.len() {
                let left = slots.len() - filled.len();
                ctx.dialogues
                    .set(
                        w.chat,
                        &State::Replacing {
                            run_id,
                            round,
                            slots,
                            filled,
                        },
                    )
                    .await?;
                ctx.say(w.chat, copy(w.lang).replacements_left(left), None)
                    .await?;
                return Ok(());
            }
            avatar::replace_photos(&ctx.engine, &run_id, round, &filled).await?;
            ctx.dialogues.set(w.chat, &State::Idle).await?;
            ctx.say(w.chat, copy(w.lang).replacements_received(), None)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The workflow checks the whole set again; this is the same check of one photo, so the
/// user hears about a bad one while still sending.
async fn check(ctx: &BotCtx, bytes: Vec<u8>) -> Result<(), PhotoProblem> {
    let rules = ctx.photo_rules.clone();
    tokio::task::spawn_blocking(move || normalise(&bytes, &rules).map(|_| ()))
        .await
        .unwrap_or_else(|e| {
            Err(PhotoProblem::Corrupt {
                detail: e.to_string(),
            })
        })
}

async fn store(
    ctx: &BotCtx,
    user: i64,
    batch: &str,
    sha256: &str,
    bytes: Vec<u8>,
) -> Result<BlobKey, BotError> {
    let key = BlobKey::new(&[
        "uploads",
        &user.to_string(),
        batch,
        &format!("{}.img", &sha256[..16]),
    ])
    .map_err(|e| BotError::Blob(aisha_workflows::blob::BlobError::Unavailable(e.to_string())))?;
    ctx.blobs
        .put(&key, Bytes::from(bytes), "application/octet-stream")
        .await?;
    Ok(key)
}

async fn refuse(ctx: &BotCtx, w: &Who, problem: &PhotoProblem) -> Result<(), BotError> {
    ctx.say(w.chat, copy(w.lang).photo_refused(problem), None)
        .await?;
    Ok(())
}

fn answer_count_later(ctx: Arc<BotCtx>, chat: i64, lang: crate::lang::Lang, count: usize) {
    let ticket = ctx.counts.touch(chat);
    tokio::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        if !ctx.counts.settled(chat, ticket) {
            return;
        }
        let (text, keyboard) = if count >= MIN_PHOTOS {
            (
                copy(lang).photo_count_enough(count, MAX_PHOTOS),
                Some(keyboards::train(lang)),
            )
        } else {
            (copy(lang).photo_count_short(count, MIN_PHOTOS), None)
        };
        if let Err(e) = ctx.say(chat, text, keyboard).await {
            tracing::warn!(error = %e, "telling the photo count");
        }
    });
}

/// "Start training": the photos so far become an `avatar_training` run (once per upload,
/// whatever the button is pressed how many times).
pub async fn train(ctx: &BotCtx, w: &Who, _press: &str) -> Result<(), BotError> {
    let State::AvatarPhotos {
        name,
        preset,
        upload,
        photos,
    } = ctx.dialogues.get(w.chat).await?
    else {
        ctx.say(
            w.chat,
            copy(w.lang).create_avatar_first(),
            Some(keyboards::menu(w.lang)),
        )
        .await?;
        return Ok(());
    };
    if photos.len() < MIN_PHOTOS {
        ctx.say(
            w.chat,
            copy(w.lang).more_photos_needed(MIN_PHOTOS - photos.len()),
            None,
        )
        .await?;
        return Ok(());
    }
    let balance = ctx.ledger.balance(&w.user.to_string()).await?;
    if balance < ctx.prices.avatar {
        ctx.say(
            w.chat,
            copy(w.lang).training_unaffordable(ctx.prices.avatar, balance),
            Some(keyboards::packs(w.lang, &ctx.config.packs)),
        )
        .await?;
        return Ok(());
    }
    let input = AvatarInput {
        user_id: w.user.to_string(),
        name: name.clone(),
        photos: photos.into_iter().map(|p| p.key).collect(),
        preset,
    };
    let started = avatar::start(
        &ctx.engine,
        &input,
        StartOptions {
            subject: Some(w.user.to_string()),
            idempotency_key: Some(format!("tg-upload:{upload}")),
            parent_run_id: None,
        },
    )
    .await;
    match started {
        Ok(started) => {
            ctx.dialogues.set(w.chat, &State::Idle).await?;
            let text = copy(w.lang).training_queued(&name, ctx.prices.avatar);
            let menu = keyboards::menu(w.lang);
            let sent = ctx.say(w.chat, text.as_str(), Some(menu.clone())).await?;
            // Edited in place as the training's progress arrives (`progress.rs`).
            ctx.progress
                .remember(
                    &started.run_id,
                    w.chat,
                    i64::from(sent.id.0),
                    &text,
                    Some(&menu),
                )
                .await?;
        }
        Err(EngineError::SubjectLimit { .. }) => {
            ctx.say(w.chat, copy(w.lang).another_training_running(), None)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
