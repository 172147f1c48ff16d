//! Opening the system from settings: database, migrations, queue, engine with every workflow.

use std::sync::Arc;

use aisha_adapters::metrics::Metrics;
use std::time::Duration;

use aisha_engine::{Engine, Pools, QueueBackend};
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
    pools.db.migrate().await.context("applying migrations")?;
    Ok(pools)
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

/// `submits`: this process runs workflow steps (see [`crate::fal::open`]).
pub async fn open(
    settings: &Settings,
    role: &str,
    submits: bool,
    startup: Startup,
) -> anyhow::Result<App> {
    let (pools, queue) = open_backends(settings, startup).await?;
    let db = pools.db.clone();
    let metrics = Arc::new(Metrics::new(role).context("registering metrics")?);
    let fal = crate::fal::open(settings, &db, metrics.clone(), submits).await?;
    let blobs = crate::product::open_blobs(settings, &fal, submits).await?;
    let deps = crate::registry::Deps {
        fal: fal.jobs.clone(),
        apps: settings.fal.apps.clone(),
        product: crate::product::product(settings, &db, &blobs, &fal),
    };
    let engine =
        crate::registry::register(Engine::builder(db, queue, settings.engine.clone()), deps)
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
