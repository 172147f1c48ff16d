//! The body FAL posts to a webhook (and what a poll hands the engine in its place):
//! `{request_id, gateway_request_id, status: "OK"|"ERROR", payload, error, payload_error}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackStatus {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ERROR")]
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub request_id: String,
    #[serde(default)]
    pub gateway_request_id: Option<String>,
    pub status: CallbackStatus,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub payload_error: Option<String>,
}

/// Why a finished FAL job gave us nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailed {
    #[error("FAL reported an error: {0}")]
    Error(String),
    #[error("FAL finished but its payload is unusable: {0}")]
    Payload(String),
}

impl CallbackBody {
    /// The typed result of an `OK` callback, or why there is none.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, JobFailed> {
        match self.status {
            CallbackStatus::Error => {
                let mut msg = self.error.clone().unwrap_or_else(|| "unknown error".into());
                if let Some(p) = &self.payload {
                    msg.push_str(&format!(" — {}", truncate(&p.to_string(), 500)));
                }
                Err(JobFailed::Error(msg))
            }
            CallbackStatus::Ok => match (&self.payload, &self.payload_error) {
                (Some(p), _) if !p.is_null() => {
                    serde_json::from_value(p.clone()).map_err(|e| JobFailed::Payload(e.to_string()))
                }
                (_, Some(err)) => Err(JobFailed::Payload(err.clone())),
                _ => Err(JobFailed::Payload("no payload".into())),
            },
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::FluxLoraOutput;

    #[test]
    fn the_three_shapes_fal_documents() {
        let ok: CallbackBody = serde_json::from_str(r#"{"request_id":"r","gateway_request_id":"g","status":"OK","payload":{"images":[{"url":"u","content_type":"image/png","file_name":"image.png","file_size":1824075,"width":1024,"height":1024}],"seed":196619188014358660}}"#).unwrap();
        let out: FluxLoraOutput = ok.output().unwrap();
        assert_eq!(out.images[0].width, Some(1024));
        let err: CallbackBody = serde_json::from_str(r#"{"request_id":"r","gateway_request_id":"g","status":"ERROR","error":"Invalid status code: 422","payload":{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}]}}"#).unwrap();
        let e = err.output::<FluxLoraOutput>().unwrap_err();
        assert!(e.to_string().contains("422") && e.to_string().contains("field required"));
        let bad: CallbackBody = serde_json::from_str(r#"{"request_id":"r","gateway_request_id":"g","status":"OK","payload":null,"payload_error":"Response payload is not JSON serializable."}"#).unwrap();
        assert!(matches!(
            bad.output::<FluxLoraOutput>(),
            Err(JobFailed::Payload(_))
        ));
    }
}
