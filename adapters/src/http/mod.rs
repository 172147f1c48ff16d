//! The HTTP face of every process: `/health`, `/ready`, `/metrics`, the FAL webhook routes
//! and the admin API, served by salvo.

mod admin;
mod blobs;
mod probes;
pub mod telegram;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use aisha_engine::Engine;
use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;
use salvo::server::ServerHandle;

use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    /// Bearer token of the admin API; `None` turns the API off (every call is 401).
    pub admin_token: Option<String>,
    /// The FAL webhook routes; `None` in processes that do not take webhooks.
    pub webhook: Option<Arc<webhook::WebhookService>>,
    /// The embedded blob store, whose presigned URLs this server answers.
    pub blobs: Option<Arc<crate::blob::local::LocalBlobStore>>,
    /// `POST /webhook/telegram`; `None` unless the bot runs here in webhook mode.
    pub telegram: Option<Arc<telegram::TelegramWebhook>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .hoop(salvo::affix_state::inject(state))
        .hoop(crate::metrics::observe)
        .push(Router::with_path("health").get(probes::health))
        .push(Router::with_path("ready").get(probes::ready))
        .push(Router::with_path("metrics").get(probes::metrics))
        .push(admin::router())
        .push(webhook::router())
        .push(telegram::router())
        .push(blobs::router())
}

/// A running HTTP server.
pub struct HttpServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    addr: String,
    source: std::io::Error,
}

impl BindError {
    pub fn new(addr: &str, source: std::io::Error) -> BindError {
        BindError {
            addr: addr.to_string(),
            source,
        }
    }
}

impl HttpServer {
    pub async fn start(bind: &str, router: Router) -> Result<HttpServer, BindError> {
        let acceptor: TcpAcceptor = TcpListener::new(bind.to_string())
            .try_bind()
            .await
            .map_err(|source| BindError {
                addr: bind.to_string(),
                source: std::io::Error::other(source.to_string()),
            })?;
        let addr = acceptor.local_addr().map_err(|source| BindError {
            addr: bind.to_string(),
            source,
        })?;
        let server = Server::new(acceptor);
        let handle = server.handle();
        let task = tokio::spawn(server.serve(router));
        tracing::info!(%addr, "http listening");
        Ok(HttpServer { addr, handle, task })
    }

    pub async fn stop(self) {
        self.handle.stop_graceful(std::time::Duration::from_secs(5));
        let _ = self.task.await;
    }
}
