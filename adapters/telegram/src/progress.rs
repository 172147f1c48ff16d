//! Live progress, edited in place: the message that accepted an order or a training is
//! remembered against its run ([`crate::progress_messages`], with its buttons so an edit
//! keeps them), and each progress the workflow tells (an outbox row of kind `progress`,
//! latest wins) becomes an edit of that message — queue position, then "drawing… 40%" (a
//! training: "training… 40%, about 6 min left"), then "saving" (for portraits with
//! `sendChatAction upload_photo`). When the result is delivered the message is edited one
//! last time to a short final line and closed; a progress that arrives after that is not
//! shown.
//!
//! Edits go through [`crate::send::Tg::call`] like every message (the same per-chat
//! limiter). An edit identical to what the message shows is not sent; Telegram's "message is
//! not modified" counts as success; a user who blocked the bot ends the row quietly (the
//! delivery worker's permanent errors).

use aisha_workflows::notice::{Notice, TrainingEta};
use aisha_workflows::provider::JobProgress;
use teloxide::payloads::EditMessageTextSetters;
use teloxide::prelude::*;
use teloxide::types::{ChatAction, ChatId, MessageId};
use teloxide::{ApiError, RequestError};

use super::context::{BotCtx, BotError};
use super::copy::copy;
use super::progress_messages::ProgressMessage;
use super::send::is_permanent;

/// Shows `progress` of run `run_id` (of a training when `training`) by editing its accepted
/// message, if it has one still open.
pub async fn show(
    ctx: &BotCtx,
    run_id: &str,
    progress: &JobProgress,
    training: Option<&TrainingEta>,
) -> Result<(), BotError> {
    let Some(m) = ctx.progress.get(run_id).await? else {
        return Ok(());
    };
    if m.closed_at.is_some() {
        return Ok(());
    }
    let lang = ctx.lang(m.chat_id).await;
    let text = match training {
        Some(t) => copy(lang).training_progress(t, progress),
        None => {
            if *progress == JobProgress::Saving {
                upload_photo(ctx, run_id, &m).await?;
            }
            copy(lang).progress(progress)
        }
    };
    edit(ctx, run_id, &m, &text, false).await
}

async fn upload_photo(ctx: &BotCtx, run_id: &str, m: &ProgressMessage) -> Result<(), BotError> {
    let action = ctx
        .tg
        .bot
        .send_chat_action(ChatId(m.chat_id), ChatAction::UploadPhoto);
    if let Err(e) = ctx.tg.call(Some(m.chat_id), action).await {
        if is_permanent(&e) {
            ctx.progress.shown(run_id, &m.text, true).await?;
        }
        return Err(e.into());
    }
    Ok(())
}

/// The result of run `run_id` is being delivered: its accepted message says so one last time
/// (`last`: the result follows, or the order failed) and takes no more progress.
pub async fn close(ctx: &BotCtx, run_id: &str, last: Last) -> Result<(), BotError> {
    let Some(m) = ctx.progress.get(run_id).await? else {
        return Ok(());
    };
    if m.closed_at.is_some() {
        return Ok(());
    }
    let c = copy(ctx.lang(m.chat_id).await);
    let text = match last {
        Last::PortraitsDone => c.progress_done(),
        Last::PortraitsFailed => c.progress_stopped(),
        Last::TrainingDone => c.training_done(),
        Last::TrainingFailed => c.training_stopped(),
    };
    edit(ctx, run_id, &m, text, true).await
}

/// How an order ended, for its progress message's last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    PortraitsDone,
    PortraitsFailed,
    TrainingDone,
    TrainingFailed,
}

impl Last {
    /// The last line `notice` closes its run's progress message with, if it ends an order.
    pub fn of(notice: &Notice) -> Option<Last> {
        match notice {
            Notice::PortraitsReady { .. } => Some(Last::PortraitsDone),
            Notice::PortraitFailed { .. } => Some(Last::PortraitsFailed),
            Notice::AvatarReady { .. } => Some(Last::TrainingDone),
            Notice::AvatarFailed { .. } => Some(Last::TrainingFailed),
            _ => None,
        }
    }
}

async fn edit(
    ctx: &BotCtx,
    run_id: &str,
    m: &ProgressMessage,
    text: &str,
    close: bool,
) -> Result<(), BotError> {
    if m.text != text {
        let mut req = ctx.tg.bot.edit_message_text(
            ChatId(m.chat_id),
            MessageId(i32::try_from(m.message_id).unwrap_or_default()),
            text,
        );
        // Without them in the edit, Telegram takes the buttons off.
        if let Some(k) = m.keyboard() {
            req = req.reply_markup(k);
        }
        match ctx.tg.call(Some(m.chat_id), req).await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {}
            Err(e) => {
                // Blocked, or the message is gone: this message takes no more progress.
                if is_permanent(&e)
                    || matches!(
                        e,
                        RequestError::Api(
                            ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited
                        )
                    )
                {
                    ctx.progress.shown(run_id, &m.text, true).await?;
                }
                return Err(e.into());
            }
        }
    }
    ctx.progress.shown(run_id, text, close).await?;
    Ok(())
}
