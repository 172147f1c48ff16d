//! `aisha`, the library behind the binary: settings, the wiring of every role ([`app::App`],
//! used by `main` and by every integration test), the CLI and its commands.

pub mod admin;
mod admin_product;
pub mod app;
mod bench;
mod bench_baseline;
mod bench_telegram;
mod bench_webhook;
pub mod bot;
pub mod cli;
mod demo;
pub mod fal;
pub mod product;
pub mod registry;
pub mod serve;
pub mod settings;
pub mod shutdown;
mod sim;
pub mod telemetry;

use crate::cli::{BenchCommand, Cli, Command, Role};
use crate::settings::Settings;

/// Runs what the command line asks for.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { roles } => {
            let roles = roles.unwrap_or_else(|| {
                let mut r = vec![Role::Worker, Role::Http];
                if settings.telegram.is_some() {
                    r.push(Role::Bot);
                }
                r
            });
            serve::run(&settings, &roles, "serve").await
        }
        Command::Bot => serve::run(&settings, &[Role::Bot, Role::Http], "bot").await,
        Command::Worker => serve::run(&settings, &[Role::Worker, Role::Http], "worker").await,
        Command::Webhook { bind } => {
            let mut settings = settings;
            if let Some(b) = bind {
                settings.http_bind = b;
            }
            serve::run(&settings, &[Role::Http], "webhook").await
        }
        Command::SimFal(args) => sim::run(args).await,
        Command::SimTelegram(args) => sim::run_telegram(args).await,
        Command::Demo => demo::run(&settings).await,
        Command::Migrate => {
            let (pools, _) = app::open_backends(&settings, app::Startup::FailFast).await?;
            pools.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command } => {
            let app = app::App::build(&settings, "admin", false, app::Startup::FailFast).await?;
            admin::run(&app.engine, &settings, command).await
        }
        Command::Bench { command } => match command {
            BenchCommand::Engine(args) => bench::run(args).await,
            BenchCommand::Webhook(args) => bench_webhook::run(args).await,
            BenchCommand::Telegram(args) => bench_telegram::run(args, &settings).await,
        },
    }
}
