//! Gallery: the user's portraits, newest first, a page at a time, with delete and, beside
//! each, its enlarged version (sent as a file) or the button that makes it. Every query is
//! scoped to the asking user: nobody sees or deletes another's portraits.

use aisha_workflows::blob::BlobKey;
use aisha_workflows::gallery::Portrait;
use teloxide::payloads::SendMediaGroupSetters;
use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, InputMedia, InputMediaPhoto};

use super::Who;
use crate::context::{BotCtx, BotError};
use crate::copy::copy;
use crate::keyboards;

pub const PAGE: i64 = 5;

pub async fn show(ctx: &BotCtx, w: &Who, page: u32) -> Result<(), BotError> {
    let items = ctx
        .gallery
        .page(&w.user.to_string(), PAGE + 1, page as i64 * PAGE)
        .await?;
    if items.is_empty() {
        ctx.say(
            w.chat,
            copy(w.lang).gallery_empty(),
            Some(keyboards::menu(w.lang)),
        )
        .await?;
        return Ok(());
    }
    let more = items.len() as i64 > PAGE;
    let shown: Vec<&Portrait> = items.iter().take(PAGE as usize).collect();
    let mut media = Vec::new();
    for (i, it) in shown.iter().enumerate() {
        let Ok(key) = it.key() else {
            continue;
        };
        let bytes = ctx.blobs.get(&key).await?;
        let file = InputFile::memory(bytes).file_name(format!("{}.jpg", i + 1));
        media.push(InputMedia::Photo(
            InputMediaPhoto::new(file).caption(format!("{}", page as i64 * PAGE + i as i64 + 1)),
        ));
    }
    if media.len() >= 2 {
        ctx.tg
            .call(
                Some(w.chat),
                ctx.tg
                    .bot
                    .send_media_group(ChatId(w.chat), media)
                    .disable_notification(true),
            )
            .await?;
    } else if let Some(InputMedia::Photo(p)) = media.pop() {
        ctx.tg
            .call(Some(w.chat), ctx.tg.bot.send_photo(ChatId(w.chat), p.media))
            .await?;
    }
    let shown: Vec<Portrait> = shown.into_iter().cloned().collect();
    ctx.say(
        w.chat,
        copy(w.lang).gallery_page(page + 1),
        Some(keyboards::gallery(w.lang, page, &shown, more)),
    )
    .await?;
    Ok(())
}

pub async fn delete(ctx: &BotCtx, w: &Who, id: &str) -> Result<(), BotError> {
    let keys = ctx.gallery.delete(&w.user.to_string(), id).await?;
    let text = match keys {
        Some((original, upscaled)) => {
            for k in std::iter::once(original).chain(upscaled) {
                if let Ok(k) = BlobKey::try_from(k) {
                    ctx.blobs.delete(&k).await?;
                }
            }
            copy(w.lang).deleted()
        }
        None => copy(w.lang).no_such_portrait(),
    };
    ctx.say(w.chat, text, None).await?;
    Ok(())
}
