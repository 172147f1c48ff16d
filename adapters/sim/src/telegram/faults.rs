//! Fault injection: the next calls of a method fail the way Telegram fails under load.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Body of `POST /_sim/faults` (one object or an array), e.g.
/// `{"kind": "retry_after", "method": "sendMessage", "count": 2, "seconds": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after`; teloxide turns it into `RequestError::RetryAfter`.
    RetryAfter {
        /// `None`: any sending method (send*, edit*, copy*, forward*, deleteMessage).
        #[serde(default)]
        method: Option<String>,
        #[serde(default = "one")]
        count: u32,
        seconds: u32,
    },
    /// Any error reply. Beware: teloxide sleeps 10 s before reading a 5xx reply.
    Error {
        #[serde(default)]
        method: Option<String>,
        #[serde(default = "one")]
        count: u32,
        code: u16,
        description: String,
    },
}

fn one() -> u32 {
    1
}

impl Fault {
    fn method(&self) -> Option<&str> {
        match self {
            Fault::RetryAfter { method, .. } | Fault::Error { method, .. } => method.as_deref(),
        }
    }

    fn count_mut(&mut self) -> &mut u32 {
        match self {
            Fault::RetryAfter { count, .. } | Fault::Error { count, .. } => count,
        }
    }

    fn matches(&self, method: &str) -> bool {
        match self.method() {
            Some(m) => m.eq_ignore_ascii_case(method),
            None => is_sending(method),
        }
    }

    fn error(&self) -> ApiError {
        match self {
            Fault::RetryAfter { seconds, .. } => ApiError::RetryAfter(*seconds),
            Fault::Error {
                code, description, ..
            } => ApiError::Injected {
                code: *code,
                description: description.clone(),
            },
        }
    }
}

/// The methods Telegram rate-limits: those that post or change messages.
pub(crate) fn is_sending(method: &str) -> bool {
    ["send", "edit", "copy", "forward"]
        .iter()
        .any(|p| method.starts_with(p))
        || method == "deleteMessage"
        || method == "deleteMessages"
}

/// Faults waiting for their calls, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    queue: VecDeque<Fault>,
}

impl FaultBook {
    pub fn add(&mut self, f: Fault) {
        self.queue.push_back(f);
    }

    /// The error this call of `method` must fail with, if a fault is waiting for it.
    pub fn take(&mut self, method: &str) -> Option<ApiError> {
        let i = self.queue.iter().position(|f| f.matches(method))?;
        let fault = self.queue.get_mut(i)?;
        let err = fault.error();
        let left = fault.count_mut();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.queue.remove(i);
        }
        Some(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_the_next_matching_calls_only() {
        let mut book = FaultBook::default();
        book.add(Fault::RetryAfter {
            method: None,
            count: 2,
            seconds: 5,
        });
        book.add(Fault::Error {
            method: Some("getfile".into()),
            count: 1,
            code: 400,
            description: "Bad Request: nope".into(),
        });
        assert_eq!(book.take("getUpdates"), None);
        assert_eq!(book.take("getFile").map(|e| e.code()), Some(400));
        assert_eq!(book.take("getFile"), None);
        assert_eq!(book.take("sendPhoto"), Some(ApiError::RetryAfter(5)));
        assert_eq!(book.take("deleteMessage"), Some(ApiError::RetryAfter(5)));
        assert_eq!(book.take("sendMessage"), None);
    }

    #[test]
    fn faults_parse_from_json() {
        let f: Fault = serde_json::from_str(r#"{"kind":"retry_after","seconds":3}"#).unwrap();
        assert_eq!(
            f,
            Fault::RetryAfter {
                method: None,
                count: 1,
                seconds: 3
            }
        );
    }
}
