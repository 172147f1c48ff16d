//! The HTTP face of every process, served by salvo on two listeners: the public one
//! (`HTTP_BIND`: the FAL and Telegram webhooks, `/health`, `/ready`, the local blob URLs) and
//! the private one for operators (`ADMIN_BIND`: `/metrics`, `/admin/*`), so that what is for
//! operators is never reachable where the webhooks are, whatever the proxy in front does.

mod admin;
mod blobs;
pub mod limits;
mod probes;
pub mod telegram;
pub mod webhook;

pub use limits::HttpLimits;

use std::net::SocketAddr;
use std::sync::Arc;

use aisha_engine::Engine;
use aisha_workflows::credits::CreditLimits;
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
    /// `MAX_GRANT` and `MAX_BALANCE`, for the admin API's grants.
    pub credit_limits: CreditLimits,
}

/// Largest body a route that takes none may declare (a stray empty form, say).
const NO_BODY: usize = 1024;

/// What `HTTP_BIND` serves: the webhooks, the probes, the local blob URLs.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .hoop(salvo::affix_state::inject(state))
        .hoop(crate::metrics::observe)
        .push(
            Router::new()
                .hoop(limits::DeclaredLimit(NO_BODY))
                .push(Router::with_path("health").get(probes::health))
                .push(Router::with_path("ready").get(probes::ready))
                .push(blobs::router()),
        )
        .push(webhook::router())
        .push(telegram::router())
}

/// What `ADMIN_BIND` serves: `/metrics` and the admin API.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .hoop(salvo::affix_state::inject(state))
        .hoop(crate::metrics::observe)
        .push(
            Router::with_path("metrics")
                .hoop(limits::DeclaredLimit(NO_BODY))
                .get(probes::metrics),
        )
        .push(admin::router())
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
    /// With the default [`HttpLimits`].
    pub async fn start(bind: &str, router: Router) -> Result<HttpServer, BindError> {
        HttpServer::start_with_limits(bind, router, HttpLimits::default()).await
    }

    pub async fn start_with_limits(
        bind: &str,
        router: Router,
        limits: HttpLimits,
    ) -> Result<HttpServer, BindError> {
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
        let server = Server::new(acceptor)
            .fuse_config(limits.fuse())
            .max_connections(limits.max_connections);
        let handle = server.handle();
        // Handlers find the read timeout in the depot (see `limits::read_body`).
        let router = Router::new()
            .hoop(salvo::affix_state::inject(limits))
            .push(router);
        let task = tokio::spawn(server.serve(router));
        tracing::info!(%addr, "http listening");
        Ok(HttpServer { addr, handle, task })
    }

    pub async fn stop(self) {
        self.handle.stop_graceful(std::time::Duration::from_secs(5));
        let _ = self.task.await;
    }
}
