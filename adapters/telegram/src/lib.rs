//! The Telegram adapter: the bot (teloxide's client, types and handler tree), the outbox
//! delivery worker, Stars payments and the webhook route ([`router`]). Its local Bot API
//! server lives in `aisha-sim`.
//!
//! Updates are committed to our inbox before Telegram learns we have them, then handled in
//! order per chat (see `intake.rs`, `dispatch.rs`): a crash loses no update, not even a
//! `successful_payment`. That is why the bot does not run teloxide's `Dispatcher`, which
//! confirms updates to Telegram before its handlers ran.

mod actions;
pub mod config;
mod context;
pub mod copy;
mod debounce;
mod delivery;
pub mod dialogue;
mod dispatch;
mod handlers;
pub mod intake;
mod keyboards;
pub mod lang;
pub mod payments;
pub mod progress;
pub mod progress_messages;
pub mod send;
mod throttle;
pub mod updates;
pub mod users;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::supervisor::{supervise, unless_stopped};
use aisha_engine::{Engine, LoopName};
use aisha_workflows::avatars::Avatars;
use aisha_workflows::blob::BlobStore;
use aisha_workflows::credits::Ledger;
use aisha_workflows::gallery::Gallery;
use aisha_workflows::outbox::Outbox;
use aisha_workflows::photos::PhotoRules;
use aisha_workflows::product::Prices;
use teloxide::Bot;
use teloxide::payloads::SetWebhookSetters;
use teloxide::requests::Requester;
use tokio::sync::watch;

pub use config::{Mode, Pack, TelegramConfig};
use context::BotCtx;
pub use context::BotError;
use intake::Intake;
use updates::Updates;

use aisha_http::Metrics;
pub use webhook::{TelegramWebhook, router};

/// Handled updates are kept this long (for operators), then pruned.
const KEEP_UPDATES: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the bot needs from the rest of the system.
pub struct BotParts {
    pub engine: Engine,
    pub blobs: Arc<dyn BlobStore>,
    pub prices: Prices,
    pub photo_rules: PhotoRules,
    pub metrics: Arc<Metrics>,
}

/// A bot ready to run: its intake is what the webhook route hands updates to.
pub struct TelegramBot {
    ctx: Arc<BotCtx>,
    pub intake: Arc<Intake>,
    updates: Updates,
}

impl TelegramBot {
    pub fn new(config: TelegramConfig, parts: BotParts) -> TelegramBot {
        let db = parts.engine.db().clone();
        let client = teloxide::net::default_reqwest_settings()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        let bot =
            Bot::with_client(config.token.clone(), client).set_api_url(config.api_url.clone());
        let limiter = Arc::new(throttle::Limiter::new(
            config.chat_interval,
            config.per_second,
        ));
        let ctx = Arc::new(BotCtx {
            tg: send::Tg::new(bot, limiter, parts.metrics.clone()),
            ledger: Ledger::with_limits(db.clone(), config.credit_limits),
            avatars: Avatars::new(db.clone()),
            gallery: Gallery::new(db.clone()),
            outbox: Outbox::new(db.clone()),
            users: users::Users::new(db.clone()),
            progress: progress_messages::ProgressMessages::new(db.clone()),
            dialogues: dialogue::Dialogues::new(db.clone()),
            invoices: payments::Invoices::new(&config.token),
            payments: payments::Payments::new(db.clone()),
            counts: debounce::Debounce::default(),
            engine: parts.engine,
            blobs: parts.blobs,
            prices: parts.prices,
            photo_rules: parts.photo_rules,
            metrics: parts.metrics,
            config,
        });
        let updates = Updates::new(db);
        let intake = Arc::new(Intake::new(ctx.clone(), updates.clone()));
        TelegramBot {
            ctx,
            intake,
            updates,
        }
    }

    /// Runs until `stop`: the intake (polling, or the webhook registered at `webhook_url`),
    /// the handlers, the delivery worker and the inbox pruning.
    pub async fn run(
        self,
        webhook_url: Option<String>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), BotError> {
        // Telegram may not answer yet (network, a Bot API server starting): keep asking.
        let mut wait = Duration::from_millis(200);
        let mut stop_wait = stop.clone();
        let me = loop {
            match self.ctx.tg.call(None, self.ctx.tg.bot.get_me()).await {
                Ok(me) => break me,
                Err(e) => tracing::warn!(error = %e, "getMe failed; trying again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop_wait.changed() => return Ok(()),
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        };
        tracing::info!(bot = ?me.username(), mode = ?self.ctx.config.mode, "Telegram bot started");
        let mut tasks = tokio::task::JoinSet::new();
        match (self.ctx.config.mode, webhook_url) {
            (Mode::Webhook, Some(url)) => {
                let (ctx, mut stop) = (self.ctx.clone(), stop.clone());
                tasks.spawn(async move {
                    // Until Telegram takes it: updates wait on Telegram's side meanwhile.
                    let mut wait = Duration::from_secs(1);
                    loop {
                        match register_webhook(&ctx, &url).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::error!(error = %e, "setWebhook failed; trying again")
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => return,
                        }
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                });
            }
            _ => {
                let intake = self.intake.clone();
                tasks.spawn(self.supervised("telegram-intake", &stop, move |stop| {
                    let intake = intake.clone();
                    async move {
                        intake.poll(stop.clone()).await;
                        unless_stopped(&stop)
                    }
                }));
            }
        }
        let dispatcher = Arc::new(dispatch::Dispatcher::new(
            self.ctx.clone(),
            self.updates.clone(),
            self.intake.stored.clone(),
        ));
        tasks.spawn(self.supervised("telegram-dispatch", &stop, move |stop| {
            dispatcher.clone().run(stop)
        }));
        let ctx = self.ctx.clone();
        tasks.spawn(self.supervised("telegram-delivery", &stop, move |stop| {
            let ctx = ctx.clone();
            async move {
                delivery::run(ctx, stop.clone()).await;
                unless_stopped(&stop)
            }
        }));
        let updates = self.updates.clone();
        tasks.spawn(self.supervised("telegram-prune", &stop, move |mut stop| {
            let updates = updates.clone();
            async move {
                loop {
                    if let Err(e) = updates.prune(KEEP_UPDATES.as_millis() as i64).await {
                        tracing::warn!(error = %e, "pruning handled updates");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        _ = stop.changed() => return unless_stopped(&stop),
                    }
                }
            }
        }));
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// `life(stop)` kept running under the engine's supervisor as `name` (its state in
    /// `/ready` and the metrics).
    fn supervised<F, Fut>(
        &self,
        name: &'static str,
        stop: &watch::Receiver<bool>,
        mut life: F,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let stop = stop.clone();
        supervise(
            self.ctx.engine.health().clone(),
            LoopName::Background(name),
            stop.clone(),
            move |_| life(stop.clone()),
        )
    }
}

async fn register_webhook(ctx: &BotCtx, url: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("webhook URL: {e}"))?;
    let mut req = ctx.tg.bot.set_webhook(url);
    if let Some(s) = &ctx.config.webhook_secret {
        req = req.secret_token(s.clone());
    }
    ctx.tg
        .call(None, req)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// This crate's tables (Telegram updates, users, dialogues, payments), applied with
/// [`aisha_engine::Db::apply`]. Its first migration also added the outbox's delivery columns
/// (applied migrations are checksummed, so it stays as it was; see `migrations/README.md`).
pub static MIGRATIONS: aisha_engine::Migrations = aisha_engine::Migrations {
    postgres: || sqlx::migrate!("../../migrations/telegram/postgres"),
    sqlite: || sqlx::migrate!("../../migrations/telegram/sqlite"),
};
