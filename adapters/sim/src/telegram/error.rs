//! The Bot API's error replies, with the descriptions Telegram uses (teloxide maps many of
//! them to `ApiError` variants by exact text, so the wording matters).

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Not Found: method not found")]
    MethodNotFound,
    #[error("Not Found")]
    NotFound,
    /// The text after `Bad Request: `.
    #[error("Bad Request: {0}")]
    BadRequest(String),
    #[error("Conflict: {0}")]
    Conflict(&'static str),
    #[error("Request Entity Too Large")]
    TooLarge,
    #[error("Too Many Requests: retry after {0}")]
    RetryAfter(u32),
    /// Injected by a test: any code, any text.
    #[error("{description}")]
    Injected { code: u16, description: String },
}

impl ApiError {
    pub fn bad(text: impl Into<String>) -> ApiError {
        ApiError::BadRequest(text.into())
    }

    /// Telegram's answer to a callback or pre-checkout query it no longer knows.
    pub fn query_too_old() -> ApiError {
        ApiError::bad("query is too old and response timeout expired or query id is invalid")
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::MethodNotFound | ApiError::NotFound => 404,
            ApiError::BadRequest(_) => 400,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge => 413,
            ApiError::RetryAfter(_) => 429,
            ApiError::Injected { code, .. } => *code,
        }
    }

    pub fn body(&self) -> Value {
        let mut body =
            json!({"ok": false, "error_code": self.code(), "description": self.to_string()});
        if let ApiError::RetryAfter(seconds) = self {
            body["parameters"] = json!({"retry_after": seconds});
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_carries_its_parameters() {
        assert_eq!(
            ApiError::RetryAfter(3).body(),
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}})
        );
        assert_eq!(
            ApiError::bad("message is too long").to_string(),
            "Bad Request: message is too long"
        );
    }
}
