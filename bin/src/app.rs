//! The one wiring of the system, used by `main` and by every integration test: from settings
//! to the database (migrated), the queue, the FAL adapter, the blob store and the engine with
//! every workflow ([`App::build`]), and the routes each role mounts ([`App::public_routes`]).

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::{Db, Engine, EngineBuilder, Pools, QueueBackend};
use aisha_http::limits::{DeclaredLimit, NO_BODY};
use aisha_http::{AppState, BindError, HttpServer, Metrics, admin_router, public_router};
use anyhow::Context;

use crate::settings::Settings;

pub struct App {
    pub engine: Engine,
    pub pools: Pools,
    pub metrics: Arc<Metrics>,
    pub fal: crate::fal::Fal,
    pub blobs: crate::product::Blobs,
}

/// How a process meets a database or queue that does not answer at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Serving roles: keep trying with backoff, saying so in the log (an orchestrator starts
    /// them together with the backends).
    WaitForBackends,
    /// One-shot commands: fail at once with the reason.
    FailFast,
}

/// Connects within `DB_MAX_CONNECTIONS` and applies the migrations.
pub async fn open_pools(settings: &Settings) -> anyhow::Result<Pools> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("DATA_DIR: cannot create {}", settings.data_dir.display()))?;
    }
    let pools = Pools::connect(&settings.database_url, settings.db_max_connections)
        .await
        .with_context(|| {
            format!(
                "DATABASE_URL: cannot connect to {}",
                aisha_engine::db::redact_url(&settings.database_url)
            )
        })?;
    migrate(&pools.db).await.context("applying migrations")?;
    Ok(pools)
}

/// Every owner's migrations, in the order their tables depend on each other: the engine's,
/// then the product's (workflows), then the adapters'.
pub async fn migrate(db: &Db) -> Result<(), aisha_engine::EngineError> {
    db.migrate().await?;
    for owner in [
        &aisha_workflows::MIGRATIONS,
        &aisha_fal::MIGRATIONS,
        &aisha_telegram::MIGRATIONS,
    ] {
        db.apply(owner).await?;
    }
    Ok(())
}

/// The database (migrated) and the queue, retried per `startup`.
pub async fn open_backends(
    settings: &Settings,
    startup: Startup,
) -> anyhow::Result<(Pools, QueueBackend)> {
    let mut attempt: i64 = 1;
    loop {
        let opened = async {
            let pools = open_pools(settings).await?;
            let queue = QueueBackend::open(
                settings.queue_backend,
                &pools,
                settings.redis_url.as_deref(),
            )
            .await
            .context("opening the queue (QUEUE_BACKEND)")?;
            anyhow::Ok((pools, queue))
        }
        .await;
        match opened {
            Ok(b) => return Ok(b),
            Err(e) if startup == Startup::FailFast || is_config_error(&e) => return Err(e),
            Err(e) => {
                attempt += 1;
                let wait = aisha_engine::RetryPolicy::default()
                    .backoff(Duration::from_millis(500), Duration::from_secs(30))
                    .backoff_for(attempt);
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait,
                    "the database or the queue does not answer yet; trying again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Errors that waiting cannot mend (a bad URL, a budget below the minimum).
fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<aisha_engine::EngineError>(),
            Some(aisha_engine::EngineError::Config(_))
        )
    })
}

/// What a caller of [`App::build_with`] may give workflows of its own.
pub struct Wiring<'a> {
    pub db: &'a Db,
    /// Where FAL calls back (`PUBLIC_URL`, or this process's own address).
    pub public_url: String,
    pub fal: &'a crate::fal::Fal,
    pub blobs: &'a crate::product::Blobs,
}

impl App {
    /// Everything a process of `role` needs, from `settings`. `submits`: this process runs
    /// workflow steps (see [`crate::fal::open`]).
    pub async fn build(
        settings: &Settings,
        role: &str,
        submits: bool,
        startup: Startup,
    ) -> anyhow::Result<App> {
        App::build_with(settings, role, submits, startup, |b, _| b).await
    }

    /// [`App::build`], with `extra` registering workflows beyond the product's (tests do).
    pub async fn build_with(
        settings: &Settings,
        role: &str,
        submits: bool,
        startup: Startup,
        extra: impl FnOnce(EngineBuilder, &Wiring<'_>) -> EngineBuilder,
    ) -> anyhow::Result<App> {
        let (pools, queue) = open_backends(settings, startup).await?;
        let db = pools.db.clone();
        let metrics = Arc::new(
            Metrics::new(role)
                .context("registering metrics")?
                .with_providers(&[aisha_fal::PROVIDER, aisha_workflows::avatar::USER]),
        );
        let fal = crate::fal::open(settings, &db, metrics.clone(), submits).await?;
        let blobs = crate::product::open_blobs(settings, &fal, submits).await?;
        let deps = crate::registry::Deps {
            fal: fal.jobs.clone(),
            apps: settings.fal.apps.clone(),
            product: crate::product::product(settings, &db, &blobs, &fal),
        };
        let builder = crate::registry::register(
            Engine::builder(db.clone(), queue, settings.engine.clone()),
            deps,
        );
        let wiring = Wiring {
            db: &db,
            public_url: crate::fal::public_url(settings),
            fal: &fal,
            blobs: &blobs,
        };
        let engine = extra(builder, &wiring)
            .observer(metrics.clone())
            .build()
            .await
            .context("starting the engine")?;
        Ok(App {
            engine,
            pools,
            metrics,
            fal,
            blobs,
        })
    }

    /// The public listener on `listener` (bound to `HTTP_BIND`): the probes and, per role,
    /// FAL's webhook (with its service), the local blob URLs when the embedded store is in
    /// use, and Telegram's webhook when the bot runs here in webhook mode.
    pub fn serve_public(
        &self,
        settings: &Settings,
        listener: std::net::TcpListener,
        fal_webhook: Arc<aisha_fal::WebhookService>,
        telegram: Option<Arc<aisha_telegram::TelegramWebhook>>,
    ) -> Result<HttpServer, BindError> {
        let mut routes = vec![aisha_fal::router(fal_webhook)];
        if let Some(local) = &self.blobs.local {
            routes.push(
                salvo::Router::new()
                    .hoop(DeclaredLimit(NO_BODY))
                    .push(aisha_blob::router(local.clone())),
            );
        }
        routes.extend(telegram.map(aisha_telegram::router));
        let router = public_router(self.http_state(settings), routes);
        HttpServer::start_on(listener, router, settings.http_limits)
    }

    /// The private listener on `listener` (bound to `ADMIN_BIND`): `/metrics` and the admin API.
    pub fn serve_admin(
        &self,
        settings: &Settings,
        listener: std::net::TcpListener,
    ) -> Result<HttpServer, BindError> {
        let router = admin_router(self.http_state(settings));
        HttpServer::start_on(listener, router, settings.http_limits)
    }

    fn http_state(&self, settings: &Settings) -> AppState {
        AppState {
            engine: self.engine.clone(),
            metrics: self.metrics.clone(),
            admin_token: settings.admin_token.clone(),
            credit_limits: settings.credit_limits,
        }
    }
}
