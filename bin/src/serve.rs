//! Running roles until SIGTERM/SIGINT.

use std::net::TcpListener;

use anyhow::Context;

use crate::app;
use crate::cli::Role;
use crate::settings::Settings;

pub async fn run(settings: &Settings, roles: &[Role], role_name: &str) -> anyhow::Result<()> {
    // Both listeners are bound before anything else, so that a port 0 in HTTP_BIND becomes
    // the real port everywhere it is used (FAL's callback URLs without PUBLIC_URL), and a port
    // taken is said at once. Their addresses are announced on stdout for whoever started us
    // with port 0 (the tests do: no free port is picked and let go of).
    let mut settings = settings.clone();
    let listeners = if roles.contains(&Role::Http) {
        let public = TcpListener::bind(&settings.http_bind).context("HTTP_BIND")?;
        let admin = TcpListener::bind(&settings.admin_bind).context("ADMIN_BIND")?;
        settings.http_bind = public.local_addr().context("HTTP_BIND")?.to_string();
        settings.admin_bind = admin.local_addr().context("ADMIN_BIND")?.to_string();
        println!("HTTP_BIND={}", settings.http_bind);
        println!("ADMIN_BIND={}", settings.admin_bind);
        Some((public, admin))
    } else {
        None
    };
    let settings = &settings;
    let app = app::App::build(
        settings,
        role_name,
        roles.contains(&Role::Worker),
        app::Startup::WaitForBackends,
    )
    .await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let bot = if roles.contains(&Role::Bot) {
        Some(crate::bot::open(settings, &app)?)
    } else {
        None
    };
    let mut handover = None;
    let mut servers = Vec::new();
    if let Some((public, admin)) = listeners {
        let (webhook, task) = app
            .fal
            .webhook(&app.engine, app.metrics.clone(), stopped.clone())
            .await?;
        handover = Some(task);
        let telegram = bot.as_ref().and_then(|b| b.webhook.clone());
        servers.push(
            app.serve_public(settings, public, webhook, telegram)
                .context("HTTP_BIND")?,
        );
        servers.push(app.serve_admin(settings, admin).context("ADMIN_BIND")?);
    }
    tracing::info!(
        roles = ?roles,
        database = %aisha_engine::db::redact_url(&settings.database_url),
        queue = settings.queue_backend.as_str(),
        fal = if app.fal.sim.is_some() { "simulator" } else { "configured" },
        "aisha started"
    );
    let bot_task = bot.map(|b| b.spawn(stopped.clone()));
    if roles.contains(&Role::Worker) {
        app.engine.run_until(crate::shutdown::signal()).await?;
    } else {
        crate::shutdown::signal().await;
    }
    for server in servers {
        server.stop().await;
    }
    let _ = stop.send(true);
    if let Some(t) = bot_task {
        let _ = t.await;
    }
    if let Some(t) = handover {
        let _ = t.await;
    }
    if let Some(sim) = app.fal.sim {
        sim.stop().await;
    }
    app.pools.close().await;
    tracing::info!("aisha stopped");
    Ok(())
}
