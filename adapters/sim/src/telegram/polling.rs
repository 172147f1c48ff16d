//! getUpdates: offsets confirm, long polls wait for the next update, and a newer call ends
//! an older one with 409 as Telegram does (two bot instances show up this way).

use std::time::Duration;

use serde_json::Value;

use super::Shared;
use super::error::ApiError;
use super::methods::Reply;
use super::params::Params;

/// Telegram caps the long-poll timeout at 50 s.
const MAX_TIMEOUT_SECS: i64 = 50;

pub(crate) async fn get_updates(s: &Shared, p: &Params) -> Result<Reply, ApiError> {
    let offset = p.int("offset")?;
    let limit = p.int("limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let timeout = p.int("timeout")?.unwrap_or(0).clamp(0, MAX_TIMEOUT_SECS) as u64;
    let generation = {
        let mut st = s.state();
        st.stats.get_updates_calls += 1;
        if !st.webhook_url.is_empty() {
            return Err(ApiError::Conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        if let Some(o) = offset {
            st.confirm(o);
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    // Wakes an older long poll so that it sees it was superseded.
    s.touch();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let outcome = s
        .wait_until(deadline, |st| {
            if st.poll_generation != generation {
                return Some(Err(ApiError::Conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running",
                )));
            }
            let batch = st.pending(limit);
            (!batch.is_empty() || st.stopping).then_some(Ok(batch))
        })
        .await;
    match outcome {
        None => Ok(Reply::value(Value::Array(vec![]))),
        Some(r) => r.map(|b| Reply::value(Value::Array(b))),
    }
}
