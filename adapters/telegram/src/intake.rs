//! Updates in: long polling (getUpdates) or the webhook route both hand raw updates here.
//! They are committed to the inbox before Telegram is told we have them; pre-checkout
//! queries are answered at once instead (Telegram waits at most 10 seconds for them and
//! nothing is owed until the successful payment, which is stored like any update).

use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::{AnswerPreCheckoutQuerySetters, GetUpdatesSetters};
use teloxide::prelude::*;
use teloxide::types::{PreCheckoutQuery, Update, UpdateKind};
use tokio::sync::{Notify, watch};

use super::context::BotCtx;
use super::copy::copy;
use super::updates::{Updates, kind};

/// Long-poll timeout of getUpdates.
const POLL_TIMEOUT: Duration = Duration::from_secs(25);

pub struct Intake {
    ctx: Arc<BotCtx>,
    updates: Updates,
    /// Woken when updates were stored.
    pub stored: Arc<Notify>,
}

impl Intake {
    pub fn new(ctx: Arc<BotCtx>, updates: Updates) -> Intake {
        Intake {
            ctx,
            updates,
            stored: Arc::new(Notify::new()),
        }
    }

    /// Stores `batch` (answering pre-checkout queries instead); returns once it is durable.
    pub async fn take(&self, batch: Vec<Update>) -> Result<(), sqlx::Error> {
        let mut keep = Vec::with_capacity(batch.len());
        for u in batch {
            match &u.kind {
                UpdateKind::PreCheckoutQuery(q) => {
                    let (ctx, q) = (self.ctx.clone(), q.clone());
                    tokio::spawn(async move { pre_checkout(&ctx, q).await });
                }
                _ => match serde_json::to_string(&u) {
                    Ok(raw) => keep.push((u, raw)),
                    Err(e) => tracing::warn!(update_id = u.id.0, error = %e, "update not storable"),
                },
            }
        }
        let kinds: Vec<&'static str> = keep.iter().map(|(u, _)| kind(u)).collect();
        let new = self.updates.store(&keep).await?;
        for k in &kinds {
            self.ctx.metrics.telegram_update(k, "stored");
        }
        if (new as usize) < keep.len() {
            self.ctx.metrics.telegram_update("any", "duplicate");
        }
        if new > 0 {
            self.stored.notify_one();
        }
        Ok(())
    }

    /// getUpdates until `stop`: each batch is stored before the next call's offset confirms
    /// it to Telegram.
    pub async fn poll(&self, mut stop: watch::Receiver<bool>) {
        let bot = &self.ctx.tg.bot;
        if let Err(e) = self.ctx.tg.call(None, bot.delete_webhook()).await {
            tracing::warn!(error = %e, "deleteWebhook before polling");
        }
        let mut offset: Option<i32> = None;
        let mut failures = 0u32;
        loop {
            if offset.is_none() {
                match self.updates.last_id().await {
                    Ok(last) => offset = Some(last.map(|l| l as i32 + 1).unwrap_or(0)),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the last update id");
                        if sleep_or_stop(&mut stop, backoff(&mut failures)).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut req = bot
                .get_updates()
                .timeout(POLL_TIMEOUT.as_secs() as u32)
                .limit(100);
            if let Some(o) = offset.filter(|o| *o > 0) {
                req = req.offset(o);
            }
            let got = tokio::select! {
                r = self.ctx.tg.call(None, req) => r,
                _ = stop.changed() => return,
            };
            let batch = match got {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "getUpdates");
                    if sleep_or_stop(&mut stop, backoff(&mut failures)).await {
                        return;
                    }
                    continue;
                }
            };
            let next = batch.iter().map(|u| u.id.0 as i32 + 1).max();
            // Until it is stored, the batch is not confirmed: on failure the same offset
            // asks Telegram for it again.
            while let Err(e) = self.take(batch.clone()).await {
                tracing::warn!(error = %e, "storing updates");
                if sleep_or_stop(&mut stop, backoff(&mut failures)).await {
                    return;
                }
            }
            failures = 0;
            if let Some(n) = next {
                offset = Some(n.max(offset.unwrap_or(0)));
            }
        }
    }
}

fn backoff(failures: &mut u32) -> Duration {
    *failures = (*failures + 1).min(6);
    Duration::from_millis(250 << *failures)
}

/// True when stopped.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Yes only for our own invoice, from the user it was made for, for the amount it asked.
async fn pre_checkout(ctx: &BotCtx, q: PreCheckoutQuery) {
    let verdict = ctx.invoices.check(
        &q.invoice_payload,
        q.from.id.0 as i64,
        &q.currency,
        q.total_amount,
    );
    let lang = ctx.lang(q.from.id.0 as i64).await;
    let mut req = ctx
        .tg
        .bot
        .answer_pre_checkout_query(q.id.clone(), verdict.is_ok());
    if let Err(refused) = &verdict {
        tracing::warn!(user = q.from.id.0, %refused, "pre-checkout refused");
        req = req.error_message(copy(lang).invoice_refused());
    }
    let outcome = if verdict.is_ok() {
        "accepted"
    } else {
        "refused"
    };
    ctx.metrics.telegram_update("pre_checkout", outcome);
    if let Err(e) = ctx.tg.call(None, req).await {
        tracing::warn!(error = %e, "answerPreCheckoutQuery");
    }
}
