//! What one request may cost a listener: its head and then its body must each arrive within
//! the read timeout, a body declared larger than the route takes is refused before a byte
//! of it is read, an idle connection is closed, and each listener holds a bounded number of
//! connections. A slow or oversized client thus ties up one connection for a bounded time,
//! never a handler or the whole server.

use std::time::Duration;

use bytes::Bytes;
use salvo::fuse::FuseConfig;
use salvo::http::StatusCode;
use salvo::http::errors::ParseError;
use salvo::http::header::{CONNECTION, CONTENT_LENGTH};
use salvo::prelude::*;
use serde_json::json;

/// Largest body a route that takes none may declare (a stray empty form, say).
pub const NO_BODY: usize = 1024;

/// Past this a declared body is refused by our servers before routing, so a path that no route
/// of the process serves (the Telegram webhook where the bot does not run) says 413 too. Twice
/// the largest any route takes (FAL's callbacks, Telegram's updates: 1 MiB), so that a route
/// refuses (and counts) a body over its own limit itself.
pub const ANY_ROUTE: usize = 2 << 20;

/// Per listener (`HTTP_READ_TIMEOUT_SECS`, `HTTP_IDLE_TIMEOUT_SECS`, `HTTP_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// For the request head, and again for the whole body after it.
    pub read_timeout: Duration,
    /// A connection with no byte in either direction this long is closed (keep-alive idle).
    pub idle_timeout: Duration,
    /// Connections held at once; past it the listener stops accepting until one closes.
    pub max_connections: usize,
    /// A declared body past this is refused before routing ([`ANY_ROUTE`] for our own
    /// listeners; the simulators, which must answer as FAL and Telegram do, lift it).
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_body: ANY_ROUTE,
        }
    }
}

impl HttpLimits {
    pub(super) fn fuse(&self) -> FuseConfig {
        FuseConfig::default()
            .with_http1_header_timeout(self.read_timeout)
            .with_connection_idle_timeout(self.idle_timeout)
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefused {
    #[error("body over {max} bytes")]
    TooLarge { max: usize },
    #[error("body not received within {0:?}")]
    TooSlow(Duration),
    #[error("unreadable body")]
    Unreadable,
}

impl BodyRefused {
    pub fn status(self) -> StatusCode {
        match self {
            BodyRefused::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefused::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyRefused::Unreadable => StatusCode::BAD_REQUEST,
        }
    }

    /// The error response; the connection closes after it, because the rest of the body
    /// is not worth reading (or waiting for).
    pub fn answer(self, res: &mut Response) {
        res.status_code(self.status());
        let _ = res.add_header(CONNECTION, "close", true);
        res.render(Json(json!({ "error": self.to_string() })));
    }
}

/// The whole body, at most `max` bytes, within the listener's read timeout. A declared
/// `Content-Length` over `max` is refused at once.
pub async fn read_body(req: &mut Request, depot: &Depot, max: usize) -> Result<Bytes, BodyRefused> {
    if declared_length(req).is_some_and(|n| n > max as u64) {
        return Err(BodyRefused::TooLarge { max });
    }
    let timeout = depot
        .get_typed::<HttpLimits>()
        .map(|l| l.read_timeout)
        .unwrap_or_else(|_| HttpLimits::default().read_timeout);
    match tokio::time::timeout(timeout, req.payload_with_max_size(max)).await {
        Ok(Ok(body)) => Ok(body.clone()),
        Ok(Err(ParseError::PayloadTooLarge)) => Err(BodyRefused::TooLarge { max }),
        Ok(Err(_)) => Err(BodyRefused::Unreadable),
        Err(_) => Err(BodyRefused::TooSlow(timeout)),
    }
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A hoop for routes that read no body: a declared body over `max` bytes is a 413 at once.
pub struct DeclaredLimit(pub usize);

#[async_trait]
impl Handler for DeclaredLimit {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if declared_length(req).is_some_and(|n| n > self.0 as u64) {
            BodyRefused::TooLarge { max: self.0 }.answer(res);
            ctrl.skip_rest();
        }
    }
}
