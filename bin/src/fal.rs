//! Wiring FAL from settings: the queue client (the real FAL, or the built-in simulator when no
//! FAL is configured), the webhook token and the webhook service.

use std::sync::Arc;

use aisha_engine::{Db, Engine};
use aisha_fal::client::{FalClient, FalKey, HttpRetry};
use aisha_fal::inbox::Handover;
use aisha_fal::jobs::FalJobs;
use aisha_fal::jwks::JwksCache;
use aisha_fal::submissions::Submissions;
use aisha_fal::token::{WebhookToken, stored_secret};
use aisha_fal::webhook::WebhookService;
use aisha_http::metrics::Metrics;
use aisha_sim::fal::{SimConfig, SimFal};
use anyhow::Context;

use crate::settings::Settings;
use crate::settings::fal::{DEFAULT_JWKS_URL, DEFAULT_QUEUE_URL};

pub struct Fal {
    pub jobs: FalJobs,
    /// The deployment's shared secret (`WEBHOOK_SECRET` or the stored one).
    pub secret: String,
    pub token: WebhookToken,
    pub jwks_url: String,
    /// `FAL_USER_ID`: the only account whose callbacks are taken, when set.
    pub user_id: Option<String>,
    /// The built-in simulator, when no FAL is configured.
    pub sim: Option<SimFal>,
    /// How soon the webhook may fetch FAL's keys again after meeting an unknown key id
    /// (a minute; tests that rotate the simulator's key set it to zero).
    pub jwks_min_refresh: std::time::Duration,
}

/// Where FAL reaches us: `PUBLIC_URL`, or this process's own HTTP address.
pub fn public_url(settings: &Settings) -> String {
    settings.fal.public_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            settings.http_bind.replace("0.0.0.0", "127.0.0.1")
        )
    })
}

/// `submits`: this process runs workflow steps (and so, with no FAL configured, needs the
/// simulator).
pub async fn open(
    settings: &Settings,
    db: &Db,
    metrics: Arc<Metrics>,
    submits: bool,
) -> anyhow::Result<Fal> {
    let f = &settings.fal;
    let (sim, queue_url, jwks_url, key) = if f.simulated() && submits {
        let defaults = SimConfig::default();
        let sim = SimFal::start(SimConfig {
            delay: f.sim_delay,
            // The simulator signs as the account we are told is ours.
            user_id: f.user_id.clone().unwrap_or(defaults.user_id.clone()),
            ..defaults
        })
        .await
        .context("starting the built-in FAL simulator")?;
        tracing::info!(url = %sim.base_url, "no FAL_KEY: using the built-in FAL simulator");
        let (q, j) = (sim.base_url.clone(), sim.jwks_url.clone());
        (
            Some(sim),
            q,
            f.jwks_url.clone().unwrap_or(j),
            "simulated".to_string(),
        )
    } else {
        (
            None,
            f.queue_url
                .clone()
                .unwrap_or_else(|| DEFAULT_QUEUE_URL.into()),
            f.jwks_url
                .clone()
                .unwrap_or_else(|| DEFAULT_JWKS_URL.into()),
            f.key.clone().unwrap_or_default(),
        )
    };
    let client = FalClient::new(&queue_url, FalKey::new(key), f.timeout)
        .context("FAL client")?
        .with_retry(HttpRetry {
            attempts: f.retries,
            ..HttpRetry::default()
        })
        .with_metrics(metrics);
    let secret = match &f.webhook_secret {
        Some(s) => s.clone(),
        None => stored_secret(db)
            .await
            .context("reading the stored webhook secret")?,
    };
    let token = WebhookToken::new(&secret).context("WEBHOOK_SECRET")?;
    let jobs = FalJobs::new(
        client,
        Submissions::new(db.clone()),
        token.clone(),
        &public_url(settings),
    );
    Ok(Fal {
        jobs,
        secret,
        token,
        jwks_url,
        user_id: f.user_id.clone(),
        sim,
        jwks_min_refresh: std::time::Duration::from_secs(60),
    })
}

impl Fal {
    /// The webhook routes' service; its hand-over runs until `shutdown` fires.
    pub async fn webhook(
        &self,
        engine: &Engine,
        metrics: Arc<Metrics>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<(Arc<WebhookService>, tokio::task::JoinHandle<()>)> {
        let (handover, task) = Handover::start(engine.clone(), metrics.clone(), shutdown)
            .await
            .context("starting the callback inbox")?;
        let svc = WebhookService {
            jwks: JwksCache::new(&self.jwks_url).min_refresh(self.jwks_min_refresh),
            token: self.token.clone(),
            handover,
            fal_user_id: self.user_id.clone(),
            metrics,
        };
        Ok((Arc::new(svc), task))
    }
}
