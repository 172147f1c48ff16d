//! Every call to the Bot API goes through [`Tg::call`]: it waits for a slot of Telegram's
//! limits, honours a 429's `retry_after` (then tries again), and counts the outcome in
//! `aisha_telegram_requests_total{method,outcome}`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use teloxide::net::Download;
use teloxide::requests::Payload;
use teloxide::requests::{HasPayload, Output, Request, Requester};
use teloxide::types::FileId;
use teloxide::{ApiError, Bot, RequestError};

use super::throttle::Limiter;
use aisha_http::Metrics;

/// How many 429s one call sits out before giving up.
const MAX_RETRY_AFTER: u32 = 5;

#[derive(Clone)]
pub struct Tg {
    pub bot: Bot,
    limiter: Arc<Limiter>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the file is {size} bytes, more than the {max} we take")]
    TooLarge { size: u64, max: u64 },
    #[error("Telegram: {0}")]
    Telegram(#[from] RequestError),
    #[error("downloading the file: {0}")]
    Transfer(String),
}

impl Tg {
    pub fn new(bot: Bot, limiter: Arc<Limiter>, metrics: Arc<Metrics>) -> Tg {
        Tg {
            bot,
            limiter,
            metrics,
        }
    }

    /// Sends `req` to `chat` (None: a call that is not a message, e.g. answerCallbackQuery),
    /// within Telegram's limits.
    pub async fn call<R>(&self, chat: Option<i64>, req: R) -> Result<Output<R>, RequestError>
    where
        R: Request<Err = RequestError> + HasPayload,
        R::Payload: Payload,
    {
        let method = api_name(<R::Payload as Payload>::NAME);
        let method = method.as_str();
        let limited = is_message(method);
        let mut retries = 0;
        loop {
            if limited {
                self.limiter.wait(chat).await;
            }
            match req.send_ref().await {
                Ok(out) => {
                    self.metrics.telegram_request(method, "ok");
                    return Ok(out);
                }
                Err(RequestError::RetryAfter(s)) if retries < MAX_RETRY_AFTER => {
                    self.metrics.telegram_request(method, "retry_after");
                    retries += 1;
                    let d = s.duration().max(Duration::from_millis(100));
                    tracing::warn!(method, retry_after_secs = d.as_secs_f64(), "Telegram: 429");
                    self.limiter.freeze(chat, d);
                    if !limited {
                        tokio::time::sleep(d).await;
                    }
                }
                Err(e) => {
                    let outcome = match &e {
                        RequestError::RetryAfter(_) => "retry_after",
                        RequestError::Api(_) | RequestError::MigrateToChatId(_) => "api_error",
                        _ => "network",
                    };
                    self.metrics.telegram_request(method, outcome);
                    return Err(e);
                }
            }
        }
    }

    /// Downloads a user's file (getFile, then the file URL), refusing more than `max` bytes.
    pub async fn download(&self, file_id: &str, max: u64) -> Result<Vec<u8>, DownloadError> {
        let file = self
            .call(None, self.bot.get_file(FileId(file_id.to_string())))
            .await?;
        if u64::from(file.meta.size) > max {
            return Err(DownloadError::TooLarge {
                size: file.meta.size.into(),
                max,
            });
        }
        let mut stream = self.bot.download_file_stream(&file.path);
        let mut bytes = Vec::with_capacity(file.meta.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| DownloadError::Transfer(e.to_string()))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(DownloadError::TooLarge {
                    size: bytes.len() as u64,
                    max,
                });
            }
        }
        self.metrics.telegram_request("downloadFile", "ok");
        Ok(bytes)
    }
}

/// teloxide names payloads `SendMessage`; the Bot API (and our metrics) say `sendMessage`.
fn api_name(payload: &str) -> String {
    let mut c = payload.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Calls that put a message in a chat count against Telegram's message limits.
fn is_message(method: &str) -> bool {
    method.starts_with("send") || method.starts_with("edit")
}

/// Errors after which sending to this chat again cannot help (blocked, deleted, no chat).
pub fn is_permanent(e: &RequestError) -> bool {
    matches!(
        e,
        RequestError::Api(
            ApiError::BotBlocked
                | ApiError::ChatNotFound
                | ApiError::UserDeactivated
                | ApiError::BotKicked
                | ApiError::CantInitiateConversation
                | ApiError::CantTalkWithBots
                | ApiError::MessageTextIsEmpty
                | ApiError::MessageIsTooLong
        )
    )
}
