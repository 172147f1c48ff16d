//! FAL jobs as workflow steps use them: submit once per (run, step) with a webhook that routes
//! back to the run, and poll the job when its callback is late.

use aisha_engine::{PollOutcome, StepError};
use aisha_workflows::provider::JobProgress;
use serde::Serialize;
use serde_json::Value;

use super::callback::{CallbackBody, CallbackStatus};
use super::client::{FalClient, QueueStatus};
use super::submissions::Submissions;
use super::token::{Endpoint, WebhookToken};

/// The engine's provider name for FAL waits.
pub const PROVIDER: &str = "fal";

#[derive(Clone, Debug)]
pub struct FalJobs {
    pub client: FalClient,
    pub store: Submissions,
    token: WebhookToken,
    public_url: String,
}

impl FalJobs {
    /// `public_url` is where FAL reaches our webhook routes (`PUBLIC_URL`).
    pub fn new(
        client: FalClient,
        store: Submissions,
        token: WebhookToken,
        public_url: &str,
    ) -> FalJobs {
        FalJobs {
            client,
            store,
            token,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// Submits `input` to `app` unless this (run, step) already did, and returns the request
    /// id to wait on (`Wait::new(PROVIDER, request_id, …)`).
    pub async fn submit<I: Serialize>(
        &self,
        run_id: &str,
        step: &str,
        endpoint: Endpoint,
        app: &str,
        input: &I,
    ) -> Result<String, StepError> {
        let sub = self
            .store
            .intent(run_id, step, app)
            .await
            .map_err(StepError::retryable)?;
        if let Some(request_id) = sub.request_id {
            tracing::info!(
                run_id,
                step,
                request_id,
                "already submitted to FAL; waiting for it"
            );
            return Ok(request_id);
        }
        let hook = self
            .token
            .webhook_url(&self.public_url, endpoint, run_id, step);
        let submitted = self
            .client
            .submit(app, input, &hook)
            .await
            .map_err(|e| e.into_step_error())?;
        self.store
            .record(&sub.id, &submitted)
            .await
            .map_err(StepError::retryable)?;
        tracing::info!(run_id, step, app, request_id = ?submitted.request_id, "submitted to FAL");
        Ok(submitted.request_id)
    }

    /// The wait of (run, step) is over: a later retry of that step submits afresh.
    pub async fn finish(&self, run_id: &str, step: &str) -> Result<(), StepError> {
        self.store
            .close(run_id, step)
            .await
            .map_err(StepError::retryable)
    }

    /// Asks FAL about a job whose callback is late. A finished job resolves the wait with
    /// the same body a webhook would have carried.
    pub async fn poll(&self, request_id: &str) -> PollOutcome {
        let sub = match self.store.by_request(request_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return PollOutcome::Failed(format!("no FAL submission {request_id}")),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read FAL submissions; will poll again");
                return PollOutcome::Pending;
            }
        };
        // Adopted from a webhook: the callback itself is on its way to the run.
        let (Some(status_url), Some(response_url)) = (&sub.status_url, &sub.response_url) else {
            return PollOutcome::Pending;
        };
        let failed = |error: String| {
            PollOutcome::Resolved(body(request_id, CallbackStatus::Error, None, Some(error)))
        };
        match self.client.status(&sub.app, status_url).await {
            Ok(QueueStatus::InQueue { .. } | QueueStatus::InProgress { .. }) => {
                PollOutcome::Pending
            }
            Ok(QueueStatus::Completed {
                error: Some(error),
                error_type,
                ..
            }) => failed(match error_type {
                Some(t) => format!("{error} ({t})"),
                None => error,
            }),
            Ok(QueueStatus::Completed { .. }) => {
                match self.client.result::<Value>(&sub.app, response_url).await {
                    Ok(payload) => PollOutcome::Resolved(body(
                        request_id,
                        CallbackStatus::Ok,
                        Some(payload),
                        None,
                    )),
                    Err(e) if e.is_permanent() => failed(e.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, request_id, "FAL result not readable yet");
                        PollOutcome::Pending
                    }
                }
            }
            Err(e) if e.is_permanent() => PollOutcome::Failed(e.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, request_id, "FAL status not readable; will poll again");
                PollOutcome::Pending
            }
        }
    }

    /// How far job `request_id` is, from its status with logs: the queue position while
    /// queued, the runner's progress bar while running, saving once completed. None when
    /// the submission or its status cannot be read now (asked again later).
    pub async fn progress(&self, request_id: &str) -> Option<JobProgress> {
        let sub = self.store.by_request(request_id).await.ok()??;
        let status_url = sub.status_url.as_ref()?;
        match self.client.status(&sub.app, status_url).await {
            Ok(QueueStatus::InQueue { queue_position }) => Some(JobProgress::Queued {
                position: queue_position.and_then(|p| u32::try_from(p).ok()),
            }),
            Ok(s @ QueueStatus::InProgress { .. }) => Some(JobProgress::Running {
                percent: s
                    .progress()
                    .map(|p| (p * 100.0).round().clamp(0.0, 100.0) as u8),
            }),
            Ok(QueueStatus::Completed { error: None, .. }) => Some(JobProgress::Saving),
            Ok(QueueStatus::Completed { .. }) => None,
            Err(e) => {
                tracing::debug!(error = %e, request_id, "FAL status not readable for progress");
                None
            }
        }
    }
}

fn body(
    request_id: &str,
    status: CallbackStatus,
    payload: Option<Value>,
    error: Option<String>,
) -> Value {
    serde_json::to_value(CallbackBody {
        request_id: request_id.to_string(),
        gateway_request_id: None,
        status,
        payload,
        error,
        payload_error: None,
    })
    .unwrap_or(Value::Null)
}
