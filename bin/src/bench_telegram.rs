//! `aisha bench telegram`: updates per second through the real bot (teloxide client over
//! HTTP to a local Bot API server, getUpdates long polling, the durable update inbox, the
//! handler tree) into real runs on Postgres. Each update is a user's "2 images" button press
//! at the end of an order, which starts a `portrait_generation` run and answers "order
//! accepted"; an update counts as handled once that answer reached the Bot API server. The
//! Bot API server runs as its own process (`aisha sim-telegram`), so the memory figure is
//! the bot's (with the engine it starts runs on).

use std::time::{Duration, Instant};

use aisha_engine::on_db;
use aisha_sim::telegram::{SimUser, UserAction};
use aisha_telegram::dialogue::{Dialogues, State};
use aisha_telegram::users::Users;
use aisha_telegram::{TelegramBot, TelegramConfig};
use aisha_workflows::avatar::Preset;
use aisha_workflows::avatars::{Avatars, NewAvatar};
use aisha_workflows::blob::BlobKey;
use aisha_workflows::credits::{Kind, Ledger};
use aisha_workflows::provider::Aspect;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::bench::{drop_pg, fresh_pg};
use crate::settings::Settings;

const DB_NAME: &str = "aisha_bench_telegram";
const TOKEN: &str = "777:bench-bot-token";

#[derive(Args, Debug, Clone)]
pub struct TelegramBench {
    /// Users, each pressing once.
    #[arg(long, default_value_t = 5000)]
    pub users: usize,
    /// Postgres server (a scratch database is created and dropped).
    #[arg(
        long,
        env = "AISHA_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
}

pub async fn run(args: TelegramBench, base: &Settings) -> anyhow::Result<()> {
    if args.users == 0 {
        bail!("--users must be at least 1");
    }
    // Migrated by the app's own start-up.
    let url = fresh_pg(&args.postgres, DB_NAME).await?;
    let result = measure(&args, base, &url).await;
    drop_pg(&args.postgres, DB_NAME).await;
    result
}

async fn measure(args: &TelegramBench, base: &Settings, url: &str) -> anyhow::Result<()> {
    let mut settings = base.clone();
    settings.database_url = url.to_string();
    settings.queue_backend = aisha_engine::QueueKind::Postgres;
    settings.db_max_connections = 10;
    settings.product.s3 = None;
    settings.data_dir = std::env::temp_dir().join(format!("aisha-bench-tg-{}", std::process::id()));
    let app =
        crate::app::App::build(&settings, "bench", false, crate::app::Startup::FailFast).await?;
    let db = app.engine.db().clone();
    println!(
        "seeding {} users with a ready avatar, credits and an order waiting for its last button",
        args.users
    );
    seed(&db, args.users).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let sim_url = format!("http://127.0.0.1:{port}");
    let mut sim = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "sim-telegram",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--token",
            TOKEN,
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting aisha sim-telegram")?;
    let http = reqwest::Client::new();
    let stats = |http: reqwest::Client, url: String| async move {
        let v: serde_json::Value = http
            .get(format!("{url}/_sim/stats"))
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, reqwest::Error>(v)
    };
    let mut config = TelegramConfig::new(TOKEN.into(), reqwest::Url::parse(&sim_url)?);
    // The local server has no limits; Telegram's own would cap replies at 30/s.
    config.per_second = 100_000;
    config.chat_interval = Duration::ZERO;
    let bot = TelegramBot::new(config, crate::bot::parts(&settings, &app));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { bot.run(None, stopped).await });
    let t0 = Instant::now();
    loop {
        if let Ok(v) = stats(http.clone(), sim_url.clone()).await
            && v["calls"]["deleteWebhook"].as_u64().unwrap_or(0) > 0
        {
            // deleteWebhook comes right before the first getUpdates.
            tokio::time::sleep(Duration::from_millis(200)).await;
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("the bot never polled the Bot API server");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_before = crate::demo::rss_kib("VmRSS");
    let actions: Vec<UserAction> = (0..args.users)
        .map(|i| {
            let user = SimUser::new(user_id(i), format!("U{i}"));
            serde_json::from_value(
                json!({"user": user, "callback": {"data": "n:2", "message_id": 0}}),
            )
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    http.post(format!("{sim_url}/_sim/updates"))
        .json(&actions)
        .send()
        .await?
        .error_for_status()?;
    loop {
        let answered = stats(http.clone(), sim_url.clone()).await?["calls"]["sendMessage"]
            .as_u64()
            .unwrap_or(0) as usize;
        if answered >= args.users {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {answered} of {} updates answered in 600 s",
                args.users
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    let runs: i64 = on_db!(&db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM workflow_runs WHERE workflow = 'portrait_generation'"
    )
    .fetch_one(p)
    .await)?;
    let rss_peak = crate::demo::rss_kib("VmHWM");
    let _ = stop.send(true);
    let _ = task.await;
    let _ = sim.kill().await;
    app.pools.close().await;
    println!(
        "updates handled: {} in {:.2} s",
        args.users,
        took.as_secs_f64()
    );
    println!(
        "  {:.0} updates/s (each a button press → a portrait_generation run on Postgres + the answer sent)",
        args.users as f64 / took.as_secs_f64()
    );
    println!("  runs created: {runs}");
    println!(
        "  resident memory of the bot's process (bot and engine; the Bot API server runs apart): {:.1} MB polling, {:.1} MB peak",
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    if runs != args.users as i64 {
        bail!("{runs} runs for {} presses", args.users);
    }
    Ok(())
}

fn user_id(i: usize) -> i64 {
    1_000_000 + i as i64
}

/// Every user: a row, 100 credits, a ready avatar, and a dialogue at "how many images".
async fn seed(db: &aisha_engine::Db, users: usize) -> anyhow::Result<()> {
    let ledger = Ledger::new(db.clone());
    let avatars = Avatars::new(db.clone());
    let bot_users = Users::new(db.clone());
    let dialogues = Dialogues::new(db.clone());
    let lora = BlobKey::new(&["bench", "lora.safetensors"])?;
    for i in 0..users {
        let u = user_id(i);
        let avatar = format!("bench-avatar-{u}");
        ledger
            .add(
                &u.to_string(),
                Kind::Grant,
                100,
                "bench",
                &format!("bench:{u}"),
            )
            .await?;
        bot_users
            .seen(u, Some("ru"), "Bench")
            .await
            .context("seeding a user")?;
        let order = State::Order {
            avatar_id: avatar.clone(),
            style: Some("business".into()),
            prompt: None,
            aspect: Some(Aspect::Portrait),
        };
        dialogues
            .set(u, &order)
            .await
            .context("seeding a dialogue")?;
        avatars
            .create(&NewAvatar {
                id: &avatar,
                user_id: &u.to_string(),
                name: "Bench",
                trigger_phrase: &format!("bench{u}"),
                preset: Preset::Fast,
            })
            .await?;
        avatars.ready(&avatar, &lora).await?;
    }
    Ok(())
}
