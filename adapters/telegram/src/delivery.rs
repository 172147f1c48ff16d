//! The outbox delivery worker: sends what workflows told users (texts, portraits as an
//! album or a single photo, with "again" / "another style" buttons). A row is claimed with
//! a conditional update, so one worker sends it; each part sent is recorded (`progress`), so
//! a retry resumes after the last part Telegram accepted instead of sending it again. The
//! only double send left is a crash between Telegram's answer and that one UPDATE.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};
use aisha_workflows::avatar;
use aisha_workflows::blob::BlobKey;
use aisha_workflows::outbox::Notice;
use teloxide::payloads::{SendDocumentSetters, SendPhotoSetters};
use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, InputMedia, InputMediaDocument, InputMediaPhoto};
use tokio::sync::watch;

use super::context::{BotCtx, BotError};
use super::dialogue::State;
use super::keyboards;
use super::send::is_permanent;

/// How long a claim lasts before another worker may take the row.
const CLAIM: Duration = Duration::from_secs(120);
/// Attempts before a notice is given up.
const MAX_ATTEMPTS: i64 = 10;
/// Telegram's sendPhoto limit; larger images go as documents.
const MAX_PHOTO: usize = 10 << 20;
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: String,
    run_id: String,
    kind: String,
    user_id: String,
    payload: String,
    progress: i64,
    attempts: i64,
}

pub async fn run(ctx: Arc<BotCtx>, mut stop: watch::Receiver<bool>) {
    let db = ctx.engine.db().clone();
    loop {
        if *stop.borrow() {
            return;
        }
        match claim(&db).await {
            Ok(rows) if !rows.is_empty() => {
                // One task per user keeps each user's notices in order.
                let mut by_user: BTreeMap<String, Vec<Row>> = BTreeMap::new();
                for r in rows {
                    by_user.entry(r.user_id.clone()).or_default().push(r);
                }
                let mut tasks = tokio::task::JoinSet::new();
                for (_, rows) in by_user {
                    let (ctx, db) = (ctx.clone(), db.clone());
                    tasks.spawn(async move {
                        for r in rows {
                            deliver(&ctx, &db, r).await;
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

/// Claims up to 64 due rows for this worker.
async fn claim(db: &Db) -> Result<Vec<Row>, sqlx::Error> {
    let now = now_ms();
    let ids: Vec<String> = on_db!(db, p => sqlx::query_scalar(
        "SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY created_at, id LIMIT 64",
    )
    .bind(now)
    .fetch_all(p)
    .await)?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let row: Option<Row> = on_db!(db, p => sqlx::query_as(
            "UPDATE outbox SET claimed_until = $2, attempts = attempts + 1 \
             WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until < $3) \
             RETURNING id, run_id, kind, user_id, payload, progress, attempts",
        )
        .bind(&id)
        .bind(now + CLAIM.as_millis() as i64)
        .bind(now)
        .fetch_optional(p)
        .await)?;
        rows.extend(row);
    }
    Ok(rows)
}

async fn deliver(ctx: &BotCtx, db: &Db, row: Row) {
    let Ok(chat) = row.user_id.parse::<i64>() else {
        finish(db, &row.id, Some("not a Telegram user id")).await;
        return;
    };
    let notice: Notice = match serde_json::from_str(&row.payload) {
        Ok(n) => n,
        Err(e) => {
            finish(db, &row.id, Some(&format!("payload: {e}"))).await;
            return;
        }
    };
    match send(ctx, db, &row, chat, &notice).await {
        Ok(()) => {
            finish(db, &row.id, None).await;
            ctx.metrics.telegram_update("delivery", "sent");
        }
        Err(BotError::Telegram(e)) if is_permanent(&e) => {
            tracing::info!(outbox = row.id, error = %e, "notice cannot be delivered");
            ctx.metrics.telegram_update("delivery", "undeliverable");
            finish(db, &row.id, Some(&e.to_string())).await;
        }
        Err(e) if row.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(outbox = row.id, error = %e, "notice given up");
            ctx.metrics.telegram_update("delivery", "gave_up");
            finish(db, &row.id, Some(&e.to_string())).await;
        }
        Err(e) => {
            tracing::warn!(outbox = row.id, attempts = row.attempts, error = %e, "notice not sent yet");
            let wait = 1000 * (1i64 << row.attempts.min(8));
            let _ = on_db!(db, p => sqlx::query(
                "UPDATE outbox SET claimed_until = NULL, next_at = $2, last_error = $3 WHERE id = $1",
            )
            .bind(&row.id)
            .bind(now_ms() + wait)
            .bind(e.to_string())
            .execute(p)
            .await
            .map(|_| ()));
        }
    }
}

/// Sent (`error` None) or given up.
async fn finish(db: &Db, id: &str, error: Option<&str>) {
    let sql = if error.is_some() {
        "UPDATE outbox SET failed_at = $2, claimed_until = NULL, last_error = $3 WHERE id = $1"
    } else {
        "UPDATE outbox SET sent_at = $2, claimed_until = NULL, last_error = $3 WHERE id = $1"
    };
    if let Err(e) = on_db!(db, p => sqlx::query(sql).bind(id).bind(now_ms()).bind(error).execute(p).await.map(|_| ()))
    {
        tracing::warn!(outbox = id, error = %e, "recording a delivery");
    }
}

async fn advance(db: &Db, id: &str, progress: i64) -> Result<(), BotError> {
    on_db!(db, p => sqlx::query("UPDATE outbox SET progress = $2 WHERE id = $1")
        .bind(id)
        .bind(progress)
        .execute(p)
        .await
        .map(|_| ()))?;
    Ok(())
}

async fn send(ctx: &BotCtx, db: &Db, row: &Row, chat: i64, n: &Notice) -> Result<(), BotError> {
    let lang = ctx.lang(chat).await;
    let text = lang.pick(n.text_ru.clone(), n.text_en.clone());
    if row.kind.starts_with("photos_rejected_") {
        await_replacements(ctx, chat, &row.run_id, &row.kind).await?;
    }
    let buttons = match row.kind.as_str() {
        "portraits" if !n.images.is_empty() => Some(keyboards::after_portraits(lang, &row.run_id)),
        "avatar_ready" | "avatar_failed" | "portrait_failed" => Some(keyboards::menu(lang)),
        _ => None,
    };
    if n.images.is_empty() {
        if row.progress < 1 {
            ctx.say(chat, text, buttons).await?;
        }
        return Ok(());
    }
    let mut files = Vec::with_capacity(n.images.len());
    for (i, key) in n.images.iter().enumerate() {
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
        advance(db, &row.id, 1).await?;
    }
    if row.progress < 2
        && let Some(b) = buttons
    {
        ctx.say(chat, lang.pick("Что дальше?", "What next?"), Some(b))
            .await?;
    }
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
