//! What every handler is given, and the errors handlers return.

use std::sync::Arc;

use aisha_engine::{Engine, EngineError};
use aisha_workflows::avatars::{Avatars, AvatarsError};
use aisha_workflows::blob::{BlobError, BlobStore};
use aisha_workflows::credits::{CreditsError, Ledger};
use aisha_workflows::gallery::{Gallery, GalleryError};
use aisha_workflows::outbox::{Outbox, OutboxError};
use aisha_workflows::photos::PhotoRules;
use aisha_workflows::product::Prices;
use teloxide::RequestError;
use teloxide::types::{InlineKeyboardMarkup, Message};

use super::config::TelegramConfig;
use super::debounce::Debounce;
use super::dialogue::Dialogues;
use super::lang::Lang;
use super::payments::{Invoices, Payments};
use super::progress_messages::ProgressMessages;
use super::send::{DownloadError, Tg};
use super::users::Users;
use aisha_http::Metrics;

pub struct BotCtx {
    pub engine: Engine,
    pub tg: Tg,
    pub blobs: Arc<dyn BlobStore>,
    pub ledger: Ledger,
    pub avatars: Avatars,
    pub gallery: Gallery,
    pub outbox: Outbox,
    pub users: Users,
    /// The accepted messages edited with their order's progress.
    pub progress: ProgressMessages,
    pub dialogues: Dialogues,
    pub config: TelegramConfig,
    pub prices: Prices,
    pub photo_rules: PhotoRules,
    pub metrics: Arc<Metrics>,
    /// Pending "N photos so far" answers, sent once an album stops arriving.
    pub counts: Debounce,
    pub invoices: Invoices,
    pub payments: Payments,
}

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("Telegram: {0}")]
    Telegram(#[from] RequestError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("credits: {0}")]
    Credits(#[from] CreditsError),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Avatars(#[from] AvatarsError),
    #[error("{0}")]
    Gallery(#[from] GalleryError),
    #[error("{0}")]
    Outbox(#[from] OutboxError),
    #[error("{0}")]
    Download(#[from] DownloadError),
    /// Something the handler needs is not there yet; trying again later will do.
    #[error("not yet: {0}")]
    NotYet(String),
}

impl BotCtx {
    /// Says `text` in `chat`, with buttons.
    pub async fn say(
        &self,
        chat: i64,
        text: impl Into<String>,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> Result<Message, BotError> {
        use teloxide::payloads::SendMessageSetters;
        use teloxide::requests::Requester;
        let mut req = self
            .tg
            .bot
            .send_message(teloxide::types::ChatId(chat), text.into());
        if let Some(k) = keyboard {
            req = req.reply_markup(k);
        }
        Ok(self.tg.call(Some(chat), req).await?)
    }

    /// The user's language (Russian for strangers).
    pub async fn lang(&self, user_id: i64) -> Lang {
        self.users.lang(user_id).await.unwrap_or_default()
    }
}
