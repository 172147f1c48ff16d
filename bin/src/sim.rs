//! `aisha sim-fal`: the FAL simulator as its own process.

use std::time::Duration;

use aisha_sim::fal::{Faults, SimConfig, SimFal};
use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct SimFalArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9090")]
    bind: String,
    /// The key callers must send as `Authorization: Key …` (any key if unset).
    #[arg(long, env = "SIM_FAL_KEY")]
    key: Option<String>,
    /// Submit → completion.
    #[arg(long, default_value_t = 300)]
    delay_ms: u64,
    /// Share of jobs that fail (ERROR callback).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of jobs that never call back (only polling finds them).
    #[arg(long, default_value_t = 0.0)]
    no_callback_rate: f64,
    /// Share of callbacks delivered twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Share of callbacks delivered `--late-ms` late.
    #[arg(long, default_value_t = 0.0)]
    late_rate: f64,
    #[arg(long, default_value_t = 30_000)]
    late_ms: u64,
    /// Share of submits answered 503.
    #[arg(long, default_value_t = 0.0)]
    submit_5xx_rate: f64,
    /// Share of jobs whose answers take `--slow-ms` longer.
    #[arg(long, default_value_t = 0.0)]
    slow_rate: f64,
    #[arg(long, default_value_t = 2_000)]
    slow_ms: u64,
}

pub async fn run(a: SimFalArgs) -> anyhow::Result<()> {
    for (name, rate) in [
        ("--error-rate", a.error_rate),
        ("--no-callback-rate", a.no_callback_rate),
        ("--duplicate-rate", a.duplicate_rate),
        ("--late-rate", a.late_rate),
        ("--submit-5xx-rate", a.submit_5xx_rate),
        ("--slow-rate", a.slow_rate),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "{name}: expected a share from 0 to 1, got {rate}"
        );
    }
    let sim = SimFal::start(SimConfig {
        bind: a.bind.clone(),
        key: a.key,
        delay: Duration::from_millis(a.delay_ms),
        faults: Faults {
            error_rate: a.error_rate,
            no_callback_rate: a.no_callback_rate,
            duplicate_rate: a.duplicate_rate,
            late_rate: a.late_rate,
            submit_5xx_rate: a.submit_5xx_rate,
            slow_rate: a.slow_rate,
            late_ms: a.late_ms,
            slow_ms: a.slow_ms,
        },
        ..SimConfig::default()
    })
    .await
    .with_context(|| format!("--bind {}", a.bind))?;
    println!("FAL_QUEUE_URL={}", sim.base_url);
    println!("FAL_JWKS_URL={}", sim.jwks_url);
    crate::shutdown::signal().await;
    sim.stop().await;
    Ok(())
}

#[derive(Args, Debug)]
pub struct SimTelegramArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: String,
    /// The bot token it accepts (the bot's TELEGRAM_BOT_TOKEN).
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    token: String,
}

/// `aisha sim-telegram`: a local Bot API server for development; users are driven through
/// its `/_sim/` routes (see the README).
pub async fn run_telegram(a: SimTelegramArgs) -> anyhow::Result<()> {
    use aisha_sim::telegram::{SimConfig as TgConfig, SimTelegram};
    let sim = SimTelegram::start(TgConfig {
        bind: a.bind.clone(),
        token: a.token,
        ..TgConfig::default()
    })
    .await
    .with_context(|| format!("--bind {}", a.bind))?;
    println!("TELEGRAM_API_URL={}", sim.base_url);
    crate::shutdown::signal().await;
    sim.stop().await;
    Ok(())
}
