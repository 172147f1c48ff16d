//! The bot role: the Telegram adapter over this process's engine and blob store.

use std::sync::Arc;

use aisha_telegram::webhook::TelegramWebhook;
use aisha_telegram::{BotParts, Mode, TelegramBot};
use aisha_workflows::photos::PhotoRules;
use anyhow::Context;
use tokio::sync::watch;

use crate::app::App;
use crate::settings::Settings;

pub struct BotRole {
    pub bot: TelegramBot,
    /// Set in webhook mode: the HTTP route's side of the bot.
    pub webhook: Option<Arc<TelegramWebhook>>,
    webhook_url: Option<String>,
}

pub fn open(settings: &Settings, app: &App) -> anyhow::Result<BotRole> {
    let config = settings
        .telegram
        .clone()
        .context("TELEGRAM_BOT_TOKEN: required by the bot role")?;
    let mode = config.mode;
    let secret = config.webhook_secret.clone();
    let bot = TelegramBot::new(config, parts(settings, app));
    let (webhook, webhook_url) = match (mode, secret) {
        (Mode::Webhook, Some(secret)) => (
            Some(Arc::new(TelegramWebhook {
                intake: bot.intake.clone(),
                secret,
            })),
            Some(format!(
                "{}/webhook/telegram",
                crate::fal::public_url(settings)
            )),
        ),
        _ => (None, None),
    };
    Ok(BotRole {
        bot,
        webhook,
        webhook_url,
    })
}

/// What the bot takes from this process: its engine, blob store, prices and metrics.
pub fn parts(settings: &Settings, app: &App) -> BotParts {
    BotParts {
        engine: app.engine.clone(),
        blobs: app.blobs.store.clone(),
        prices: settings.product.prices,
        photo_rules: PhotoRules::default(),
        metrics: app.metrics.clone(),
    }
}

impl BotRole {
    pub fn spawn(self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(e) = self.bot.run(self.webhook_url, stop).await {
                tracing::error!(error = %e, "the Telegram bot stopped");
            }
        })
    }
}
