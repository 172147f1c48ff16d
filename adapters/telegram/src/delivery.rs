//! The outbox delivery worker: sends what workflows told users (texts, portraits as an
//! album or a single photo, with "again" / "another style" / "upscale ×2" buttons, an
//! enlarged portrait as a document). A row is claimed with a conditional update, so one
//! worker sends it; each part sent is recorded (`progress`), so a retry resumes after the
//! last part Telegram accepted instead of sending it again. The only double send left is a
//! crash between Telegram's answer and that one UPDATE.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aisha_workflows::avatar;
use aisha_workflows::blob::BlobKey;
use aisha_workflows::notice::Notice;
use aisha_workflows::outbox::{Claimed, Payload};
use teloxide::payloads::{SendDocumentSetters, SendPhotoSetters};
use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, InputMedia, InputMediaDocument, InputMediaPhoto};
use tokio::sync::watch;

use super::context::{BotCtx, BotError};
use super::copy::copy;
use super::dialogue::State;
use super::keyboards;
use super::progress::{self, Last};
use super::send::is_permanent;

/// How long a claim lasts before another worker may take the row.
const CLAIM: Duration = Duration::from_secs(120);
/// Attempts before a notice is given up.
const MAX_ATTEMPTS: i64 = 10;
/// Telegram's sendPhoto limit; larger images go as documents.
const MAX_PHOTO: usize = 10 << 20;
const POLL: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<BotCtx>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match ctx.outbox.claim(CLAIM, 64).await {
            Ok(rows) if !rows.is_empty() => {
                // One task per user keeps each user's notices in order.
                let mut by_user: BTreeMap<String, Vec<Claimed>> = BTreeMap::new();
                for r in rows {
                    by_user.entry(r.user_id.clone()).or_default().push(r);
                }
                let mut tasks = tokio::task::JoinSet::new();
                for (_, rows) in by_user {
                    let ctx = ctx.clone();
                    tasks.spawn(async move {
                        for r in rows {
                            deliver(&ctx, r).await;
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claiming outbox rows"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn deliver(ctx: &BotCtx, row: Claimed) {
    let Ok(chat) = row.user_id.parse::<i64>() else {
        give_up(ctx, &row.id, "not a Telegram user id").await;
        return;
    };
    let payload = match Payload::decode(&row.payload) {
        Ok(p) => p,
        Err(e) => {
            give_up(ctx, &row.id, &format!("payload: {e}")).await;
            return;
        }
    };
    match send(ctx, &row, chat, &payload).await {
        Ok(()) => {
            if let Err(e) = ctx.outbox.sent(&row.id, &row.payload).await {
                tracing::warn!(outbox = row.id, error = %e, "recording a delivery");
            }
            ctx.metrics.telegram_update("delivery", "sent");
        }
        Err(BotError::Telegram(e)) if is_permanent(&e) => {
            tracing::info!(outbox = row.id, error = %e, "notice cannot be delivered");
            ctx.metrics.telegram_update("delivery", "undeliverable");
            give_up(ctx, &row.id, &e.to_string()).await;
        }
        Err(e) if row.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(outbox = row.id, error = %e, "notice given up");
            ctx.metrics.telegram_update("delivery", "gave_up");
            give_up(ctx, &row.id, &e.to_string()).await;
        }
        Err(e) => {
            tracing::warn!(outbox = row.id, attempts = row.attempts, error = %e, "notice not sent yet");
            let wait = Duration::from_secs(1 << row.attempts.clamp(0, 8));
            if let Err(e) = ctx.outbox.retry_after(&row.id, wait, &e.to_string()).await {
                tracing::warn!(outbox = row.id, error = %e, "recording a failed delivery");
            }
        }
    }
}

async fn give_up(ctx: &BotCtx, id: &str, error: &str) {
    if let Err(e) = ctx.outbox.given_up(id, error).await {
        tracing::warn!(outbox = id, error = %e, "recording a delivery");
    }
}

async fn send(ctx: &BotCtx, row: &Claimed, chat: i64, p: &Payload) -> Result<(), BotError> {
    if let Payload::Notice(Notice::Progress { progress, training }) = p {
        return progress::show(ctx, &row.run_id, progress, training.as_ref()).await;
    }
    let last = match p {
        Payload::Notice(n) => Last::of(n),
        Payload::Rendered(_) => None,
    };
    if let Some(last) = last.filter(|_| row.progress < 1) {
        // The accepted message's last edit; it must not hold the result back.
        match progress::close(ctx, &row.run_id, last).await {
            Err(BotError::Telegram(e)) if is_permanent(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(run_id = row.run_id, error = %e, "closing the progress message")
            }
            Ok(()) => {}
        }
    }
    let lang = ctx.lang(chat).await;
    let (text, images) = match p {
        Payload::Notice(n) => (copy(lang).notice(n), n.images()),
        Payload::Rendered(r) => (
            lang.pick(r.text_ru.clone(), r.text_en.clone()),
            r.images.as_slice(),
        ),
    };
    // Buttons and replacement rounds follow the row's kind, the same for both payload forms.
    if row.kind.starts_with("photos_rejected_") {
        await_replacements(ctx, chat, &row.run_id, &row.kind).await?;
    }
    let buttons = match row.kind.as_str() {
        "portraits" if !images.is_empty() => {
            Some(keyboards::after_portraits(lang, &row.run_id, images))
        }
        "avatar_ready" | "avatar_failed" | "portrait_failed" | "upscale_failed" => {
            Some(keyboards::menu(lang))
        }
        _ => None,
    };
    if let Payload::Notice(Notice::UpscaleReady { document, .. }) = p {
        if row.progress < 1 {
            send_file(ctx, chat, document, text).await?;
        }
        return Ok(());
    }
    if images.is_empty() {
        if row.progress < 1 {
            ctx.say(chat, text, buttons).await?;
        }
        return Ok(());
    }
    let mut files = Vec::with_capacity(images.len());
    for (i, key) in images.iter().enumerate() {
        let bytes = ctx.blobs.get(key).await?;
        files.push((file_name(key, i), bytes));
    }
    let as_documents = files.iter().any(|(_, b)| b.len() > MAX_PHOTO);
    if files.len() == 1 {
        if row.progress < 1 {
            let (name, bytes) = files.remove(0);
            let file = InputFile::memory(bytes).file_name(name);
            if as_documents {
                let mut req = ctx.tg.bot.send_document(ChatId(chat), file).caption(text);
                if let Some(b) = buttons {
                    req = req.reply_markup(b);
                }
                ctx.tg.call(Some(chat), req).await?;
            } else {
                let mut req = ctx.tg.bot.send_photo(ChatId(chat), file).caption(text);
                if let Some(b) = buttons {
                    req = req.reply_markup(b);
                }
                ctx.tg.call(Some(chat), req).await?;
            }
        }
        return Ok(());
    }
    // An album cannot carry buttons: the album, then a message with them.
    if row.progress < 1 {
        let media: Vec<InputMedia> = files
            .into_iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                let file = InputFile::memory(bytes).file_name(name);
                let caption = if i == 0 { Some(text.clone()) } else { None };
                if as_documents {
                    let mut m = InputMediaDocument::new(file);
                    m.caption = caption;
                    InputMedia::Document(m)
                } else {
                    let mut m = InputMediaPhoto::new(file);
                    m.caption = caption;
                    InputMedia::Photo(m)
                }
            })
            .collect();
        for chunk in media.chunks(10) {
            if chunk.len() == 1 {
                // A last single item cannot be a group of its own.
                if let Some(InputMedia::Photo(p)) = chunk.first() {
                    ctx.tg
                        .call(
                            Some(chat),
                            ctx.tg.bot.send_photo(ChatId(chat), p.media.clone()),
                        )
                        .await?;
                } else if let Some(InputMedia::Document(d)) = chunk.first() {
                    ctx.tg
                        .call(
                            Some(chat),
                            ctx.tg.bot.send_document(ChatId(chat), d.media.clone()),
                        )
                        .await?;
                }
                continue;
            }
            ctx.tg
                .call(
                    Some(chat),
                    ctx.tg.bot.send_media_group(ChatId(chat), chunk.to_vec()),
                )
                .await?;
        }
        ctx.outbox.advance(&row.id, 1).await?;
    }
    if row.progress < 2
        && let Some(b) = buttons
    {
        ctx.say(chat, copy(lang).what_next(), Some(b)).await?;
    }
    Ok(())
}

/// A file as a document: Telegram keeps it byte for byte (a photo would be recompressed).
pub(crate) async fn send_file(
    ctx: &BotCtx,
    chat: i64,
    key: &BlobKey,
    caption: String,
) -> Result<(), BotError> {
    let bytes = ctx.blobs.get(key).await?;
    let file = InputFile::memory(bytes).file_name(file_name(key, 0));
    let req = ctx
        .tg
        .bot
        .send_document(ChatId(chat), file)
        .caption(caption);
    ctx.tg.call(Some(chat), req).await?;
    Ok(())
}

fn file_name(key: &BlobKey, i: usize) -> String {
    key.as_str()
        .rsplit('/')
        .next()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{i}.jpg"))
}

/// A training refused some photos: the chat now waits for their replacements.
async fn await_replacements(
    ctx: &BotCtx,
    chat: i64,
    run_id: &str,
    kind: &str,
) -> Result<(), BotError> {
    let round: u32 = kind
        .trim_start_matches("photos_rejected_")
        .parse()
        .unwrap_or(1);
    let state = ctx.engine.show_run(run_id).await?.state;
    // The notice is written during the step, the run's state when the step ends: until then
    // the state is the previous round's, and the delivery is tried again shortly.
    if state["round"].as_u64() != Some(u64::from(round)) {
        return Err(BotError::NotYet(format!(
            "run {run_id} has not recorded round {round} of its photo check yet"
        )));
    }
    let rejected: Vec<avatar::Rejected> =
        serde_json::from_value(state["rejected"].clone()).unwrap_or_default();
    let slots: Vec<usize> = rejected.iter().map(|r| r.photo).collect();
    if slots.is_empty() {
        return Ok(());
    }
    ctx.dialogues
        .set(
            chat,
            &State::Replacing {
                run_id: run_id.to_string(),
                round,
                slots,
                filled: BTreeMap::new(),
            },
        )
        .await?;
    Ok(())
}
