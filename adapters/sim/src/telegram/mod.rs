//! A local Telegram Bot API server that speaks the real wire format, so the production
//! teloxide code runs against it over real sockets: `Bot::new(token).set_api_url(base_url)`.
//!
//! The bot side (`/bot<token>/<method>`, `/file/bot<token>/<path>`) implements the methods
//! Aisha uses with Telegram's limits and error texts. The test side pushes what users do
//! (messages, photos, button presses, payments), reads back what the bot sent, and injects
//! faults — in process through [`SimTelegram`], or over HTTP under `/_sim/`:
//!
//! - `POST /_sim/updates` — a [`UserAction`] or an array of them → [`Pushed`] (or array)
//! - `POST /_sim/pay` — [`Pay`] → [`PayOutcome`]
//! - `GET /_sim/sent?chat_id=&after=` — [`SentCall`]s after a sequence number
//! - `POST /_sim/faults` — a [`Fault`] or an array of them
//! - `GET /_sim/stats` — [`Stats`]
//!
//! Not simulated: webhooks deliver nothing (but getUpdates answers 409 while one is set,
//! as Telegram does), groups and channels, inline mode, other media than photos and
//! documents, and payments in other currencies than Stars.

mod error;
mod faults;
mod files;
mod markup;
mod methods;
mod model;
mod params;
mod pay;
mod polling;
mod routes;
mod state;
mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

pub use faults::Fault;
pub use model::{
    ActionError, ActionKind, CallbackPress, DocumentUpload, Pay, PayOutcome, PaymentFacts,
    PhotoUpload, PreCheckoutFacts, Pushed, SentCall, SentFile, SimUser, Stats, UserAction,
};

use aisha_http::{BindError, HttpServer};
use state::SimState;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (`127.0.0.1:0` picks a port).
    pub bind: String,
    /// The token the bot must use; its numeric prefix becomes the bot's user id.
    pub token: String,
    pub bot_username: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: "127.0.0.1:0".into(),
            token: "7000000001:AAsim-token-for-local-tests-only00000".into(),
            bot_username: "aisha_bot".into(),
        }
    }
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub bot_id: i64,
    state: Mutex<SimState>,
    /// Woken on every change: long polls, `wait_sent` and `pay` re-check their condition.
    changed: Notify,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn touch(&self) {
        self.changed.notify_waiters();
    }

    /// The bot as the `from` of its messages.
    pub fn bot_user(&self) -> Value {
        json!({"id": self.bot_id, "is_bot": true, "first_name": "Aisha", "username": self.config.bot_username})
    }

    /// Waits until `check` finds something or the deadline passes (then checks once more).
    pub async fn wait_until<T>(
        &self,
        deadline: tokio::time::Instant,
        mut check: impl FnMut(&mut SimState) -> Option<T>,
    ) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between check and await still wakes us.
            notified.as_mut().enable();
            if let Some(v) = check(&mut self.state()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&mut self.state());
            }
        }
    }
}

/// A running simulator.
pub struct SimTelegram {
    pub addr: SocketAddr,
    /// What teloxide's `set_api_url` takes: `http://addr`.
    pub base_url: String,
    api_url: reqwest::Url,
    shared: Arc<Shared>,
    server: HttpServer,
}

impl SimTelegram {
    pub async fn start(config: SimConfig) -> Result<SimTelegram, BindError> {
        let bot_id = config
            .token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(7_000_000_001);
        let bind = config.bind.clone();
        let shared = Arc::new(Shared {
            config,
            bot_id,
            state: Mutex::new(SimState::default()),
            changed: Notify::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
        });
        let server =
            HttpServer::start_with_limits(&bind, routes::router(shared.clone()), crate::uncapped())
                .await?;
        let base_url = format!("http://{}", server.addr);
        let api_url = reqwest::Url::parse(&base_url)
            .map_err(|e| BindError::new(&bind, std::io::Error::other(e)))?;
        Ok(SimTelegram {
            addr: server.addr,
            base_url,
            api_url,
            shared,
            server,
        })
    }

    /// A teloxide bot talking to this simulator.
    pub fn bot(&self) -> teloxide::Bot {
        teloxide::Bot::new(&self.shared.config.token).set_api_url(self.api_url.clone())
    }

    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The bot's own user id (the token's numeric prefix).
    pub fn bot_id(&self) -> i64 {
        self.shared.bot_id
    }

    /// Ends pending long polls at once, then stops the server.
    pub async fn stop(self) {
        self.shared.state().stopping = true;
        self.shared.touch();
        self.server.stop().await;
    }

    /// Queues one update from a user.
    pub fn push(&self, u: UserAction) -> Pushed {
        users::push(&self.shared, u)
    }

    pub fn push_many(&self, us: Vec<UserAction>) -> Vec<Pushed> {
        us.into_iter().map(|u| self.push(u)).collect()
    }

    /// A user pays an invoice the bot sent: pre-checkout query, the bot's answer (waited
    /// for up to 10 s), then the `successful_payment` message if the bot said ok.
    pub async fn pay(&self, p: Pay) -> PayOutcome {
        pay::pay(&self.shared, p).await
    }

    /// The bot's successful calls after sequence number `after_seq`, optionally in one chat.
    pub fn sent(&self, chat_id: Option<i64>, after_seq: u64) -> Vec<SentCall> {
        self.shared
            .state()
            .sent
            .iter()
            .filter(|c| c.seq > after_seq && (chat_id.is_none() || c.chat_id == chat_id))
            .cloned()
            .collect()
    }

    /// The first call in the chat (from the start) matching `pred`, waiting up to `timeout`.
    pub async fn wait_sent(
        &self,
        chat_id: i64,
        pred: impl Fn(&SentCall) -> bool,
        timeout: Duration,
    ) -> Option<SentCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.shared
            .wait_until(deadline, |st| {
                st.sent
                    .iter()
                    .find(|c| c.chat_id == Some(chat_id) && pred(c))
                    .cloned()
            })
            .await
    }

    pub fn fail_next(&self, f: Fault) {
        self.shared.state().faults.add(f);
    }

    pub fn stats(&self) -> Stats {
        self.shared.state().stats.clone()
    }

    /// The bytes of any file the simulator knows (users' and the bot's).
    pub fn file_bytes(&self, file_id: &str) -> Option<bytes::Bytes> {
        self.shared
            .state()
            .files
            .get(file_id)
            .map(|f| f.bytes.clone())
    }
}
