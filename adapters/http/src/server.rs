//! The server itself and the two routers every process mounts its adapters' routes on.

use std::net::SocketAddr;

use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;
use salvo::server::ServerHandle;

use crate::limits::{DeclaredLimit, HttpLimits, NO_BODY};
use crate::metrics::Observe;
use crate::{AppState, admin, admin_ui, probes};

/// What `HTTP_BIND` serves: the probes, and the routes of the adapters this process runs (the
/// FAL webhook, the Telegram webhook, the local blob URLs), each adapter's own router.
pub fn public_router(state: AppState, adapters: Vec<Router>) -> Router {
    adapters.into_iter().fold(
        Router::new()
            .hoop(Observe(state.metrics.clone()))
            .hoop(salvo::affix_state::inject(state))
            .push(
                Router::new()
                    .hoop(DeclaredLimit(NO_BODY))
                    .push(Router::with_path("health").get(probes::health))
                    .push(Router::with_path("ready").get(probes::ready)),
            ),
        |router, adapter| router.push(adapter),
    )
}

/// What `ADMIN_BIND` serves: `/metrics`, the admin API and the admin web page.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .hoop(Observe(state.metrics.clone()))
        .hoop(salvo::affix_state::inject(state))
        .push(
            Router::with_path("metrics")
                .hoop(DeclaredLimit(NO_BODY))
                .get(probes::metrics),
        )
        .push(admin_ui::router())
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
        HttpServer::serve(acceptor, bind, router, limits)
    }

    /// Serves on a listener bound already (to port 0, say), so a caller that must know the
    /// address before the server is built — to tell FAL where to call back — never races
    /// another process for a port it has let go of.
    pub fn start_on(
        listener: std::net::TcpListener,
        router: Router,
        limits: HttpLimits,
    ) -> Result<HttpServer, BindError> {
        let bind = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let err = |source| BindError {
            addr: bind.clone(),
            source,
        };
        listener.set_nonblocking(true).map_err(err)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(err)?;
        let acceptor = TcpAcceptor::try_from(listener).map_err(err)?;
        HttpServer::serve(acceptor, &bind, router, limits)
    }

    fn serve(
        acceptor: TcpAcceptor,
        bind: &str,
        router: Router,
        limits: HttpLimits,
    ) -> Result<HttpServer, BindError> {
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
        // A service hoop runs for unrouted paths too (a router's hoops do not).
        let service = Service::new(router).hoop(DeclaredLimit(limits.max_body));
        let task = tokio::spawn(server.serve(service));
        tracing::info!(%addr, "http listening");
        Ok(HttpServer { addr, handle, task })
    }

    pub async fn stop(self) {
        self.handle.stop_graceful(std::time::Duration::from_secs(5));
        let _ = self.task.await;
    }
}
