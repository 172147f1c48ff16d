//! FAL's queue API over HTTP: submit with a webhook, status, result, cancel. Follow-up calls
//! use the URLs FAL returned, never rebuilt ones (they use only owner/app, not the endpoint's
//! sub-path). Transient failures are retried here with jittered exponential backoff; what
//! remains is the step's business.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{Failure, FalError};
use aisha_http::Metrics;

/// `FAL_KEY`: shown as `Key ***` wherever it is printed.
#[derive(Clone)]
pub struct FalKey(String);

impl FalKey {
    pub fn new(key: impl Into<String>) -> FalKey {
        FalKey(key.into())
    }

    fn header(&self) -> String {
        format!("Key {}", self.0)
    }
}

impl fmt::Debug for FalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FalKey(***)")
    }
}

/// How the client retries transient failures.
#[derive(Debug, Clone)]
pub struct HttpRetry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for HttpRetry {
    fn default() -> Self {
        HttpRetry {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl HttpRetry {
    /// Full jitter: a random wait up to `base · 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        let ms = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

/// What a submit returns: keep all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub request_id: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// `GET status_url?logs=1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueStatus {
    InQueue {
        #[serde(default)]
        queue_position: Option<u64>,
    },
    InProgress {
        #[serde(default)]
        logs: Option<Vec<LogEntry>>,
    },
    Completed {
        #[serde(default)]
        logs: Option<Vec<LogEntry>>,
        #[serde(default)]
        metrics: Option<serde_json::Value>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        error_type: Option<String>,
    },
}

impl QueueStatus {
    /// How far the runner says it is (0.0 to 1.0): the percentage of the last progress-bar
    /// line (`Generating:  40%|████      | 11/28`) its log shows; 1.0 once completed, `None`
    /// while queued or before it printed one.
    pub fn progress(&self) -> Option<f64> {
        let logs = match self {
            QueueStatus::InQueue { .. } => return None,
            QueueStatus::Completed { error: None, .. } => return Some(1.0),
            QueueStatus::Completed { logs, .. } | QueueStatus::InProgress { logs } => logs,
        };
        logs.as_deref()?.iter().rev().find_map(|l| {
            let (before, _) = l.message.split_once("%|")?;
            let digits = before.rsplit(|c: char| !c.is_ascii_digit()).next()?;
            digits.parse::<f64>().ok().map(|p| (p / 100.0).min(1.0))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelOutcome {
    CancellationRequested,
    AlreadyCompleted,
    NotFound,
}

/// The queue client. Cheap to clone.
#[derive(Clone)]
pub struct FalClient {
    http: reqwest::Client,
    queue_url: String,
    key: FalKey,
    retry: HttpRetry,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for FalClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FalClient")
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the FAL HTTP client: {0}")]
pub struct ClientBuildError(String);

impl FalClient {
    /// `queue_url` is `FAL_QUEUE_URL` (`https://queue.fal.run`, or the simulator's).
    pub fn new(
        queue_url: &str,
        key: FalKey,
        timeout: Duration,
    ) -> Result<FalClient, ClientBuildError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientBuildError(e.without_url().to_string()))?;
        Ok(FalClient {
            http,
            queue_url: queue_url.trim_end_matches('/').to_string(),
            key,
            retry: HttpRetry::default(),
            metrics: None,
        })
    }

    pub fn with_retry(mut self, retry: HttpRetry) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// `POST {queue}/{app}?fal_webhook=<webhook>`. FAL has no idempotency key: callers record
    /// their intent before this call and the request id right after it.
    pub async fn submit<I: Serialize>(
        &self,
        app: &str,
        input: &I,
        webhook: &str,
    ) -> Result<Submitted, FalError> {
        let mut url = self.url("submit", app, &format!("{}/{app}", self.queue_url))?;
        url.query_pairs_mut().append_pair("fal_webhook", webhook);
        let body = serde_json::to_vec(input).map_err(|e| decode("submit", app, e))?;
        let bytes = self
            .call("submit", app, Method::POST, url, Some(body))
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| decode("submit", app, e))
    }

    /// `GET status_url?logs=1`.
    pub async fn status(&self, app: &str, status_url: &str) -> Result<QueueStatus, FalError> {
        let mut url = self.url("status", app, status_url)?;
        url.query_pairs_mut().append_pair("logs", "1");
        let bytes = self.call("status", app, Method::GET, url, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| decode("status", app, e))
    }

    /// `GET response_url`, typed.
    pub async fn result<T: DeserializeOwned>(
        &self,
        app: &str,
        response_url: &str,
    ) -> Result<T, FalError> {
        let url = self.url("result", app, response_url)?;
        let bytes = self.call("result", app, Method::GET, url, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| decode("result", app, e))
    }

    /// `PUT cancel_url`.
    pub async fn cancel(&self, app: &str, cancel_url: &str) -> Result<CancelOutcome, FalError> {
        let url = self.url("cancel", app, cancel_url)?;
        match self.call("cancel", app, Method::PUT, url, None).await {
            Ok(bytes) => {
                #[derive(Deserialize)]
                struct Doc {
                    status: CancelOutcome,
                }
                let doc: Doc =
                    serde_json::from_slice(&bytes).map_err(|e| decode("cancel", app, e))?;
                Ok(doc.status)
            }
            // FAL answers 400 for a finished request and 404 for an unknown one.
            Err(FalError {
                what: Failure::Status { status: 400, .. },
                ..
            }) => Ok(CancelOutcome::AlreadyCompleted),
            Err(FalError {
                what: Failure::Status { status: 404, .. },
                ..
            }) => Ok(CancelOutcome::NotFound),
            Err(e) => Err(e),
        }
    }

    fn url(&self, op: &'static str, app: &str, raw: &str) -> Result<Url, FalError> {
        Url::parse(raw).map_err(|e| FalError {
            op,
            app: app.to_string(),
            what: Failure::Decode(format!("not a URL: {e}")),
        })
    }

    /// One call with the client's retries; returns the body of a 2xx answer.
    async fn call(
        &self,
        op: &'static str,
        app: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, FalError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.once(op, app, method.clone(), url.clone(), &body).await;
            self.observe(op, app, &result, started.elapsed());
            match result {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(op, app, attempt, error = %e, wait_ms = wait.as_millis() as u64, "FAL call failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn once(
        &self,
        op: &'static str,
        app: &str,
        method: Method,
        url: Url,
        body: &Option<Vec<u8>>,
    ) -> Result<Vec<u8>, FalError> {
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", self.key.header())
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.clone());
        }
        let transport = |e: reqwest::Error| FalError {
            op,
            app: app.to_string(),
            what: Failure::Transport(e.without_url().to_string()),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let header_type = resp
            .headers()
            .get("x-fal-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            Ok(bytes.to_vec())
        } else {
            Err(FalError::from_answer(op, app, status, header_type, &bytes))
        }
    }

    fn observe(
        &self,
        op: &'static str,
        app: &str,
        result: &Result<Vec<u8>, FalError>,
        took: Duration,
    ) {
        let Some(m) = &self.metrics else { return };
        let status = match result {
            Ok(_) => "ok".to_string(),
            Err(FalError {
                what: Failure::Status { status, .. },
                ..
            }) => status.to_string(),
            Err(FalError {
                what: Failure::Transport(_),
                ..
            }) => "transport".to_string(),
            Err(_) => "decode".to_string(),
        };
        m.fal_request(app, op, &status, took);
    }
}

fn decode(op: &'static str, app: &str, e: impl fmt::Display) -> FalError {
    FalError {
        op,
        app: app.to_string(),
        what: Failure::Decode(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_never_printed() {
        let k = FalKey::new("secret-123");
        assert_eq!(format!("{k:?}"), "FalKey(***)");
        let c = FalClient::new("http://127.0.0.1:9", k, Duration::from_secs(1)).unwrap();
        assert!(!format!("{c:?}").contains("secret-123"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = HttpRetry {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert!(r.backoff(1) <= Duration::from_millis(100));
        assert!(r.backoff(3) >= Duration::from_millis(200));
        assert!(r.backoff(9) <= Duration::from_secs(1));
    }

    #[test]
    fn progress_is_read_from_the_last_progress_bar_line() {
        let s: QueueStatus = serde_json::from_str(
            r#"{"status":"IN_PROGRESS","logs":[{"message":"Generating: starting, 28 steps"},{"message":"Generating:  21%|██        | 6/28"},{"message":"Generating:  42%|████      | 12/28"},{"message":"saving"}]}"#,
        )
        .unwrap();
        assert_eq!(s.progress(), Some(0.42));
        let none: QueueStatus =
            serde_json::from_str(r#"{"status":"IN_PROGRESS","logs":null}"#).unwrap();
        assert_eq!(none.progress(), None);
        let queued: QueueStatus =
            serde_json::from_str(r#"{"status":"IN_QUEUE","queue_position":3}"#).unwrap();
        assert_eq!(queued.progress(), None);
    }

    #[test]
    fn statuses_parse_as_fal_sends_them() {
        let s: QueueStatus =
            serde_json::from_str(r#"{"status":"IN_QUEUE","queue_position":3}"#).unwrap();
        assert_eq!(
            s,
            QueueStatus::InQueue {
                queue_position: Some(3)
            }
        );
        let s: QueueStatus = serde_json::from_str(
            r#"{"status":"COMPLETED","logs":[{"message":"done","level":"INFO"}],"metrics":{"inference_time":1.5}}"#,
        )
        .unwrap();
        assert!(matches!(s, QueueStatus::Completed { error: None, .. }));
    }
}
