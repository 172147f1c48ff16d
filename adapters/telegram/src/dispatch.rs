//! Handling stored updates: in update order within a chat, chats in parallel. An update is
//! marked handled after its handler ran; a failing one is tried again (with a pause) and,
//! after [`MAX_ATTEMPTS`](super::updates::MAX_ATTEMPTS), given up with an apology to the user.

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::dptree;
use teloxide::types::Update;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use super::context::BotCtx;
use super::copy::copy;
use super::handlers::{Schema, schema};
use super::updates::{StoredUpdate, Updates, kind};

/// Handlers running at once, whatever the number of chats with news: bounds memory and the
/// database pool's queue.
const HANDLERS: usize = 16;
/// Updates read from the inbox and not yet handled: a backlog stays in the database, not in
/// memory.
const QUEUED: usize = 512;

/// An update on its way to be handled, holding one of the [`QUEUED`] slots.
type Queued = (StoredUpdate, OwnedSemaphorePermit);

/// The chats with updates in hand, each with those waiting behind the one being handled. A
/// chat is here exactly while a task works through it.
#[derive(Default)]
struct Busy(Mutex<HashMap<i64, VecDeque<Queued>>>);

impl Busy {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, VecDeque<Queued>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `row` behind its chat's, or gives it back when nobody works on that chat yet
    /// (the caller then does).
    fn enqueue(&self, chat: i64, row: Queued) -> Option<Queued> {
        let mut busy = self.lock();
        match busy.get_mut(&chat) {
            Some(waiting) => {
                waiting.push_back(row);
                None
            }
            None => {
                busy.insert(chat, VecDeque::new());
                Some(row)
            }
        }
    }

    /// The chat's next update, or None (and the chat is no longer busy).
    fn next(&self, chat: i64) -> Option<Queued> {
        let mut busy = self.lock();
        let next = busy.get_mut(&chat).and_then(VecDeque::pop_front);
        if next.is_none() {
            busy.remove(&chat);
        }
        next
    }
}

/// What the handlers share across lives of the dispatch loop: a restarted loop must not hand
/// out again an update a handler still holds, so the cursor and the per-chat queues outlive
/// it.
pub struct Dispatcher {
    ctx: Arc<BotCtx>,
    updates: Updates,
    stored: Arc<Notify>,
    schema: Arc<Schema>,
    permits: Arc<Semaphore>,
    queued: Arc<Semaphore>,
    busy: Arc<Busy>,
    cursor: AtomicI64,
}

impl Dispatcher {
    pub fn new(ctx: Arc<BotCtx>, updates: Updates, stored: Arc<Notify>) -> Dispatcher {
        Dispatcher {
            ctx,
            updates,
            stored,
            schema: Arc::new(schema()),
            permits: Arc::new(Semaphore::new(HANDLERS)),
            queued: Arc::new(Semaphore::new(QUEUED)),
            busy: Arc::new(Busy::default()),
            cursor: AtomicI64::new(0),
        }
    }

    /// One life of the loop: hands stored updates to the handlers until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), String> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let cursor = self.cursor.load(Ordering::Acquire);
            let batch = match self.updates.unhandled(cursor, 500).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "reading stored updates");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = self.stored.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return Ok(()),
                }
                continue;
            }
            for row in batch {
                let Ok(slot) = self.queued.clone().acquire_owned().await else {
                    return Err("the handler queue is closed".into());
                };
                self.cursor.fetch_max(row.update_id, Ordering::AcqRel);
                let chat = row.chat_id;
                let Some(first) = self.busy.enqueue(chat, (row, slot)) else {
                    continue;
                };
                let (ctx, schema, updates, permits, busy) = (
                    self.ctx.clone(),
                    self.schema.clone(),
                    self.updates.clone(),
                    self.permits.clone(),
                    self.busy.clone(),
                );
                tokio::spawn(async move {
                    let mut next = Some(first);
                    while let Some((row, _slot)) = next {
                        {
                            let _permit = permits.acquire().await;
                            handle(&ctx, &schema, &updates, row).await;
                        }
                        next = busy.next(chat);
                    }
                });
            }
        }
    }
}

async fn handle(ctx: &Arc<BotCtx>, schema: &Schema, updates: &Updates, row: StoredUpdate) {
    let update: Update = match serde_json::from_str(&row.payload) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(update_id = row.update_id, error = %e, "stored update does not parse");
            let _ = updates.failed(row.update_id, &e.to_string()).await;
            return;
        }
    };
    let k = kind(&update);
    let mut attempts = row.attempts;
    loop {
        let outcome = schema
            .dispatch(dptree::deps![update.clone(), ctx.clone()])
            .await;
        let error = match outcome {
            ControlFlow::Break(Err(e)) => e.to_string(),
            ControlFlow::Break(Ok(())) | ControlFlow::Continue(_) => {
                ctx.metrics.telegram_update(k, "handled");
                if let Err(e) = updates.handled(row.update_id).await {
                    tracing::warn!(update_id = row.update_id, error = %e, "marking an update handled");
                }
                return;
            }
        };
        attempts += 1;
        tracing::warn!(update_id = row.update_id, attempts, error = %error, "handling an update failed");
        match updates.failed(row.update_id, &error).await {
            Ok(true) => {
                ctx.metrics.telegram_update(k, "failed");
                apologise(ctx, row.chat_id).await;
                return;
            }
            Ok(false) => {
                tokio::time::sleep(Duration::from_millis(500 * (1 << attempts.min(5)))).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a failed update");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

async fn apologise(ctx: &BotCtx, chat: i64) {
    let lang = ctx.lang(chat).await;
    let text = copy(lang).apology();
    if let Err(e) = ctx.say(chat, text, None).await {
        tracing::warn!(error = %e, "apologising");
    }
}
