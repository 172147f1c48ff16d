//! A local FAL: the queue API for the trainer, flux-lora and esrgan apps with FAL's JSON schemas,
//! signed webhooks (its own Ed25519 key, served as a JWKS) after a configurable delay, and
//! real output files (a safetensors LoRA, JPEG/PNG portraits cut from the training photos,
//! really enlarged images) served from its own URLs. Faults can be injected for every request, per request (header
//! `x-sim-fault`), or for the next submissions (`POST /_sim/faults`).

mod deliver;
mod faults;
mod progress;
mod render;
mod routes;
pub mod signing;
mod upscale;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use faults::{Fault, Faults};

use aisha_http::{BindError, HttpServer};
pub use signing::WebhookSigner;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (`127.0.0.1:0` picks a port).
    pub bind: String,
    /// The key callers must send (`Authorization: Key …`); `None` accepts any key.
    pub key: Option<String>,
    /// Submit → completion (a third of it in the queue, the rest in progress).
    pub delay: Duration,
    /// Faults applied to every request, by probability.
    pub faults: Faults,
    /// The `X-Fal-Webhook-User-Id` it signs with.
    pub user_id: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: "127.0.0.1:0".into(),
            key: None,
            delay: Duration::from_millis(300),
            faults: Faults::default(),
            user_id: "sim-user".into(),
        }
    }
}

/// What the simulator knows about one request.
#[derive(Debug, Clone)]
pub(crate) struct SimRequest {
    pub app: String,
    pub kind: AppKind,
    pub input: Value,
    pub submitted: Instant,
    pub delay: Duration,
    pub faults: Vec<Fault>,
    pub webhook: Option<String>,
    pub cancelled: bool,
    /// Set when the job finished: the payload (`Ok`) or the error text (`Err`).
    pub outcome: Option<Result<Value, String>>,
    pub callbacks_sent: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppKind {
    PortraitTrainer,
    FastTrainer,
    Generator,
    Upscaler,
}

impl AppKind {
    fn of(app: &str) -> Option<AppKind> {
        let name = app.rsplit('/').next()?;
        match name {
            "flux-lora-portrait-trainer" => Some(AppKind::PortraitTrainer),
            "flux-lora-fast-training" => Some(AppKind::FastTrainer),
            "flux-lora" => Some(AppKind::Generator),
            "esrgan" => Some(AppKind::Upscaler),
            _ => None,
        }
    }
}

/// A file the simulator serves.
#[derive(Debug, Clone)]
pub(crate) struct SimFile {
    pub content_type: &'static str,
    pub bytes: Arc<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct SimState {
    pub requests: HashMap<String, SimRequest>,
    pub files: HashMap<String, SimFile>,
    /// Training photos behind each LoRA file we made, for portraits that look like them.
    pub lora_photos: HashMap<String, Arc<Vec<image::DynamicImage>>>,
    /// One-shot faults for the next submissions, in order.
    pub next_faults: VecDeque<Vec<Fault>>,
    pub submits: u64,
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub base_url: String,
    pub signers: Mutex<Vec<WebhookSigner>>,
    pub state: Mutex<SimState>,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn signers(&self) -> MutexGuard<'_, Vec<WebhookSigner>> {
        self.signers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running simulator.
pub struct SimFal {
    pub addr: SocketAddr,
    /// Use as `FAL_QUEUE_URL`.
    pub base_url: String,
    /// Use as `FAL_JWKS_URL`.
    pub jwks_url: String,
    shared: Arc<Shared>,
    server: HttpServer,
}

/// A summary of one request, for tests and `GET /_sim/requests`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestInfo {
    pub request_id: String,
    pub app: String,
    pub done: bool,
    pub cancelled: bool,
    pub callbacks_sent: u32,
}

impl SimFal {
    pub async fn start(config: SimConfig) -> Result<SimFal, BindError> {
        // The port is known only after binding, and the routes need the base URL: bind a
        // listener first, then serve on exactly that address.
        let std_listener = std::net::TcpListener::bind(&config.bind)
            .map_err(|e| BindError::new(&config.bind, e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| BindError::new(&config.bind, e))?;
        drop(std_listener);
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            signers: Mutex::new(vec![WebhookSigner::generate()]),
            state: Mutex::new(SimState::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            config,
        });
        let server = HttpServer::start_with_limits(
            &addr.to_string(),
            routes::router(shared.clone()),
            crate::uncapped(),
        )
        .await?;
        Ok(SimFal {
            addr: server.addr,
            jwks_url: format!("{base_url}/.well-known/jwks.json"),
            base_url,
            shared,
            server,
        })
    }

    /// Publishes a new signing key beside the old one and signs with it from now on.
    pub fn rotate_key(&self) {
        self.shared.signers().push(WebhookSigner::generate());
    }

    /// Faults for the next submissions, one list per submission.
    pub fn push_faults(&self, next: impl IntoIterator<Item = Vec<Fault>>) {
        self.shared.state().next_faults.extend(next);
    }

    /// The key the simulator signs with now (for tests that forge or replay deliveries).
    pub fn signer(&self) -> WebhookSigner {
        self.shared
            .signers()
            .last()
            .cloned()
            .unwrap_or_else(WebhookSigner::generate)
    }

    pub fn user_id(&self) -> &str {
        &self.shared.config.user_id
    }

    pub fn requests(&self) -> Vec<RequestInfo> {
        routes::request_infos(&self.shared)
    }

    pub fn submits(&self) -> u64 {
        self.shared.state().submits
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
