//! What can go wrong talking to FAL, split the way a step needs it: retry later or give up.

use std::fmt;

use serde_json::Value;

/// A failed FAL call. Its text carries FAL's `X-Fal-Error-Type`, `error_type` and `detail`,
/// never the key or a URL (ours carry a webhook token, FAL's a request id only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FAL {op} {app}: {what}")]
pub struct FalError {
    pub op: &'static str,
    pub app: String,
    pub what: Failure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// FAL answered with an error status.
    Status {
        status: u16,
        error_type: Option<String>,
        detail: String,
    },
    /// No answer: connection refused, reset, timed out.
    Transport(String),
    /// An answer we could not read.
    Decode(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status {
                status,
                error_type,
                detail,
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(t) = error_type {
                    write!(f, " ({t})")?;
                }
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Failure::Transport(m) => write!(f, "no answer: {m}"),
            Failure::Decode(m) => write!(f, "unreadable answer: {m}"),
        }
    }
}

/// Statuses FAL's own SDKs retry: timeouts, conflicts, rate limits and ingress errors.
pub fn is_retried_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 502 | 503 | 504)
}

impl FalError {
    /// Whether the call is worth retrying by the client right away.
    pub fn is_transient(&self) -> bool {
        match &self.what {
            Failure::Status { status, .. } => is_retried_status(*status),
            Failure::Transport(_) => true,
            Failure::Decode(_) => false,
        }
    }

    /// Whether retrying can never help: validation errors (422, including
    /// `content_policy_violation`), and other 4xx answers such as a wrong key.
    pub fn is_permanent(&self) -> bool {
        match &self.what {
            Failure::Status {
                status, error_type, ..
            } => {
                error_type.as_deref() == Some("content_policy_violation")
                    || ((400..500).contains(status) && !is_retried_status(*status))
            }
            Failure::Transport(_) | Failure::Decode(_) => false,
        }
    }

    /// The engine's view: permanent errors fail the run, the rest are retried by the step's
    /// policy.
    pub fn into_step_error(self) -> aisha_engine::StepError {
        if self.is_permanent() {
            aisha_engine::StepError::Permanent(self.to_string())
        } else {
            aisha_engine::StepError::Retryable(self.to_string())
        }
    }

    /// Builds the error from FAL's answer: `X-Fal-Error-Type` and `{detail, error_type}`,
    /// where `detail` is a string or a list of `{loc, msg, type}`.
    pub(crate) fn from_answer(
        op: &'static str,
        app: &str,
        status: u16,
        header_type: Option<String>,
        body: &[u8],
    ) -> FalError {
        let doc: Option<Value> = serde_json::from_slice(body).ok();
        let body_type = doc
            .as_ref()
            .and_then(|d| d.get("error_type"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let detail = match doc.as_ref().and_then(|d| d.get("detail")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(describe_item)
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
            None => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        };
        let error_type = header_type.or(body_type).or_else(|| {
            doc.as_ref()?
                .get("detail")?
                .as_array()?
                .first()?
                .get("type")?
                .as_str()
                .map(str::to_string)
        });
        FalError {
            op,
            app: app.to_string(),
            what: Failure::Status {
                status,
                error_type,
                detail,
            },
        }
    }
}

fn describe_item(item: &Value) -> String {
    let loc = item
        .get("loc")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let msg = item.get("msg").and_then(Value::as_str).unwrap_or("");
    let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
    format!("{loc}: {msg} ({ty})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_detail_is_spelled_out_and_permanent() {
        let e = FalError::from_answer(
            "submit",
            "fal-ai/flux-lora",
            422,
            None,
            br#"{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}]}"#,
        );
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            "FAL submit fal-ai/flux-lora: HTTP 422 (value_error.missing): body.prompt: field required (value_error.missing)"
        );
    }

    #[test]
    fn header_error_type_wins_and_503_is_transient() {
        let e = FalError::from_answer(
            "status",
            "a/b",
            503,
            Some("runner_scheduling_failure".into()),
            br#"{"detail":"no runner","error_type":"x"}"#,
        );
        assert!(e.is_transient() && !e.is_permanent());
        assert!(
            e.to_string()
                .contains("(runner_scheduling_failure): no runner")
        );
    }

    #[test]
    fn content_policy_is_permanent_whatever_the_status() {
        let e = FalError::from_answer(
            "result",
            "a/b",
            500,
            None,
            br#"{"detail":"flagged","error_type":"content_policy_violation"}"#,
        );
        assert!(e.is_permanent());
    }
}
