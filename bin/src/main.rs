//! `aisha`: every role of the system in one binary.

mod admin;
mod admin_product;
mod app;
mod bench;
mod bench_baseline;
mod bench_telegram;
mod bench_webhook;
mod bot;
mod cli;
mod demo;
mod fal;
mod product;
mod registry;
mod serve;
mod settings;
mod sim;
mod telemetry;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command, Role};
use crate::settings::Settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // reqwest and sqlx both bring rustls; one crypto provider for the whole process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    match run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
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
            let app = app::open(&settings, "admin", false, app::Startup::FailFast).await?;
            admin::run(&app.engine, &settings, command).await
        }
        Command::Bench { command } => match command {
            BenchCommand::Engine(args) => bench::run(args).await,
            BenchCommand::Webhook(args) => bench_webhook::run(args).await,
            BenchCommand::Telegram(args) => bench_telegram::run(args, &settings).await,
        },
    }
}
