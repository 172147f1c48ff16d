//! Opening the system from settings: database, migrations, queue, engine with every workflow.

use std::sync::Arc;

use aisha_adapters::metrics::Metrics;
use aisha_engine::{Db, Engine, QueueBackend};
use anyhow::Context;

use crate::settings::Settings;

pub struct App {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub fal: crate::fal::Fal,
    pub blobs: crate::product::Blobs,
}

pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("DATA_DIR: cannot create {}", settings.data_dir.display()))?;
    }
    let db = Db::connect(&settings.database_url, settings.db_max_connections)
        .await
        .with_context(|| {
            format!(
                "DATABASE_URL: cannot connect to {}",
                aisha_engine::db::redact_url(&settings.database_url)
            )
        })?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// `submits`: this process runs workflow steps (see [`crate::fal::open`]).
pub async fn open(settings: &Settings, role: &str, submits: bool) -> anyhow::Result<App> {
    let db = open_db(settings).await?;
    let queue = QueueBackend::open(settings.queue_backend, &db, settings.redis_url.as_deref())
        .await
        .context("opening the queue (QUEUE_BACKEND)")?;
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
        metrics,
        fal,
        blobs,
    })
}
