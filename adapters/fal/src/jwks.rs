//! FAL's public keys, fetched from `FAL_JWKS_URL` and cached: at most 24 h, and refreshed
//! early when a signature verifies with no cached key (FAL rotated), at most once a minute so
//! forged deliveries cannot turn into a flood of fetches.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::signature::{self, Jwks, SignatureError, WebhookHeaders};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
    /// We could not get FAL's keys: not the sender's fault, so it should retry.
    #[error("FAL's JWKS is unavailable: {0}")]
    KeysUnavailable(String),
}

#[derive(Default)]
struct Cached {
    jwks: Option<Arc<Jwks>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

pub struct JwksCache {
    http: reqwest::Client,
    url: String,
    max_age: Duration,
    min_refresh: Duration,
    cached: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(url: &str) -> JwksCache {
        JwksCache {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            url: url.to_string(),
            max_age: Duration::from_secs(24 * 3600),
            min_refresh: Duration::from_secs(60),
            cached: RwLock::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// How soon an unknown signature may trigger another fetch (tests shorten it).
    pub fn min_refresh(mut self, d: Duration) -> Self {
        self.min_refresh = d;
        self
    }

    /// Verifies a delivery, fetching the keys if they are missing, stale, or (rate-limited)
    /// if no cached key verifies it.
    pub async fn verify(
        &self,
        h: &WebhookHeaders<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let jwks = self.current().await?;
        match signature::verify(h, body, &jwks, now) {
            Err(SignatureError::NoKeyVerifies) => match self.refresh(false).await? {
                Some(fresh) => Ok(signature::verify(h, body, &fresh, now)?),
                None => Err(SignatureError::NoKeyVerifies.into()),
            },
            other => Ok(other?),
        }
    }

    async fn current(&self) -> Result<Arc<Jwks>, VerifyError> {
        if let Some(j) = self.fresh_cached() {
            return Ok(j);
        }
        match self.refresh(true).await? {
            Some(j) => Ok(j),
            None => self
                .read()
                .jwks
                .clone()
                .ok_or_else(|| VerifyError::KeysUnavailable("no keys fetched yet".into())),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh_cached(&self) -> Option<Arc<Jwks>> {
        let c = self.read();
        match (&c.jwks, c.fetched_at) {
            (Some(j), Some(at)) if at.elapsed() < self.max_age => Some(j.clone()),
            _ => None,
        }
    }

    /// Fetches the keys unless another fetch just happened. `needed` skips the rate limit
    /// when we have no usable keys at all. Returns the new keys if it fetched.
    async fn refresh(&self, needed: bool) -> Result<Option<Arc<Jwks>>, VerifyError> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let c = self.read();
            if let Some(last) = c.last_attempt {
                if needed {
                    // Someone fetched while we waited for the lock.
                    if let (Some(j), Some(at)) = (&c.jwks, c.fetched_at)
                        && at.elapsed() < self.max_age
                    {
                        return Ok(Some(j.clone()));
                    }
                    if last.elapsed() < Duration::from_secs(1) {
                        return Err(VerifyError::KeysUnavailable(
                            "the last fetch failed moments ago".into(),
                        ));
                    }
                } else if last.elapsed() < self.min_refresh {
                    return Ok(None);
                }
            }
        }
        let fetched = self.fetch().await;
        let mut c = self.cached.write().unwrap_or_else(|p| p.into_inner());
        c.last_attempt = Some(Instant::now());
        match fetched {
            Ok(jwks) => {
                let jwks = Arc::new(jwks);
                c.jwks = Some(jwks.clone());
                c.fetched_at = Some(Instant::now());
                tracing::info!(keys = jwks.len(), "fetched FAL's JWKS");
                Ok(Some(jwks))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch FAL's JWKS");
                if needed && c.jwks.is_none() {
                    Err(VerifyError::KeysUnavailable(e))
                } else {
                    Ok(None)
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Jwks, String> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Jwks::parse(&body).map_err(|e| e.to_string())
    }
}
