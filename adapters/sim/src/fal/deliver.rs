//! Webhook delivery as FAL does it: one signed POST per finished request, retried on
//! failure (FAL retries 10 times over two hours; the simulator compresses that to seconds).

use std::time::Duration;

use super::Shared;
use aisha_fal::signature::{HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID};

const ATTEMPTS: u32 = 10;

/// Delivers `body` to `url`; true once a 2xx came back. A 4xx is final (the receiver
/// rejected the delivery itself); 5xx and connection errors are retried.
pub(crate) async fn deliver(shared: &Shared, url: &str, request_id: &str, body: &[u8]) -> bool {
    for attempt in 1..=ATTEMPTS {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signer = shared.signers().last().cloned();
        let Some(signer) = signer else { return false };
        let signature = signer.sign(request_id, &shared.config.user_id, &timestamp, body);
        let sent = shared
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(HEADER_REQUEST_ID, request_id)
            .header(HEADER_USER_ID, &shared.config.user_id)
            .header(HEADER_TIMESTAMP, &timestamp)
            .header(HEADER_SIGNATURE, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(
                    request_id,
                    status = r.status().as_u16(),
                    "sim-fal: webhook rejected"
                );
                return false;
            }
            Ok(r) => {
                tracing::warn!(
                    request_id,
                    status = r.status().as_u16(),
                    attempt,
                    "sim-fal: webhook failed; retrying"
                );
            }
            Err(e) => {
                tracing::warn!(request_id, error = %e.without_url(), attempt, "sim-fal: webhook unreachable; retrying");
            }
        }
        let wait = Duration::from_millis((200u64 << attempt.min(5)).min(5_000));
        tokio::time::sleep(wait).await;
    }
    false
}
