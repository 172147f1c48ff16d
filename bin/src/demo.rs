//! `aisha demo`: the whole product on this machine, with nothing configured and no network —
//! SQLite, the local blob store, the FAL simulator, the real webhook service on localhost
//! with signed callbacks, and the real Telegram bot talking to a local Bot API server. A demo
//! user meets the bot as a Telegram user would: /start (welcome credits), an album of 12
//! photos drawn at run time, an avatar, portraits in two styles, one of them upscaled ×2;
//! every step and every message is shown as it happens, and the progress edits of each
//! order's message are listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aisha_engine::Engine;
use aisha_engine::ops::RunFilter;
use aisha_fal::inbox::Inbox;
use aisha_sim::telegram::{SentCall, SimConfig as TgSimConfig, SimTelegram, SimUser, UserAction};
use aisha_telegram::{TelegramBot, TelegramConfig};
use aisha_workflows::blob::BlobKey;
use aisha_workflows::credits::Ledger;
use aisha_workflows::outbox::Outbox;
use aisha_workflows::{avatar, portrait, upscale};
use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::app;
use crate::settings::Settings;

/// The demo user's Telegram id (and chat).
const DEMO_CHAT: i64 = 424242;
const USER: &str = "424242";
const DEMO_TOKEN: &str = "424242:demo-bot-token";
const STYLES: [&str; 2] = ["oil", "astronaut"];

pub async fn run(base: &Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = PathBuf::from("data/demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut settings = base.clone();
    settings.data_dir = dir.clone();
    settings.database_url = format!("sqlite:{}", dir.join("aisha.db").display());
    settings.queue_backend = aisha_engine::QueueKind::Sqlite;
    settings.http_bind = format!("127.0.0.1:{port}");
    settings.fal.key = None;
    settings.fal.queue_url = None;
    settings.fal.jwks_url = None;
    settings.fal.public_url = None;
    settings.product.s3 = None;
    // Simulated jobs long enough, and asked often enough, that the progress edits show.
    settings.fal.sim_delay = settings.fal.sim_delay.max(Duration::from_millis(1200));
    settings.product.waits.generation_progress = Duration::from_millis(150);

    let app = app::App::build(&settings, "demo", true, app::Startup::FailFast).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (webhook, handover) = app
        .fal
        .webhook(&app.engine, app.metrics.clone(), stopped.clone())
        .await?;
    let inbox = webhook.handover.inbox().clone();
    // Only the public listener: the demo drives everything through the library.
    let listener = std::net::TcpListener::bind(&settings.http_bind).context("HTTP_BIND")?;
    let server = app.serve_public(&settings, listener, webhook, None)?;
    let engine = app.engine.clone();
    let mut until = stopped.clone();
    let worker = tokio::spawn(async move {
        let _ = engine
            .run_until(async move {
                let _ = until.wait_for(|s| *s).await;
            })
            .await;
    });
    let idle_rss = rss_kib("VmRSS");
    println!(
        "aisha demo — SQLite, local blobs under {}, FAL simulator, webhook on http://{}",
        dir.display(),
        settings.http_bind
    );
    println!(
        "  resident memory once started: {:.1} MB",
        idle_rss as f64 / 1024.0
    );

    let result = scenario(&app, &inbox, &dir, &settings).await;

    let _ = stop.send(true);
    let _ = worker.await;
    server.stop().await;
    let _ = handover.await;
    if let Some(sim) = app.fal.sim {
        sim.stop().await;
    }
    app.pools.close().await;
    let summary = result?;
    println!();
    println!("summary");
    println!(
        "  runs {} · steps {} · retries {}",
        summary.runs, summary.steps, summary.retries
    );
    println!(
        "  credits: granted 300, spent {}, balance {}",
        300 - summary.balance,
        summary.balance
    );
    println!(
        "  callback received → images stored and delivery queued: {}",
        summary.handover
    );
    println!(
        "  resident memory: {:.1} MB once started, {:.1} MB at the peak",
        idle_rss as f64 / 1024.0,
        rss_kib("VmHWM") as f64 / 1024.0
    );
    println!("  portraits:");
    for p in &summary.portraits {
        println!("    {}", p.display());
    }
    println!("  finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

struct Summary {
    runs: usize,
    steps: usize,
    retries: usize,
    balance: i64,
    handover: String,
    portraits: Vec<PathBuf>,
}

async fn scenario(
    app: &app::App,
    inbox: &Inbox,
    dir: &Path,
    settings: &Settings,
) -> anyhow::Result<Summary> {
    let engine = &app.engine;
    let db = engine.db().clone();
    let ledger = Ledger::new(db.clone());
    let sim = SimTelegram::start(TgSimConfig {
        token: DEMO_TOKEN.into(),
        ..TgSimConfig::default()
    })
    .await?;
    let mut config = TelegramConfig::new(DEMO_TOKEN.into(), reqwest::Url::parse(&sim.base_url)?);
    config.welcome_credits = 300;
    config.chat_interval = Duration::from_millis(100);
    let bot = TelegramBot::new(config, crate::bot::parts(settings, app));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let bot_task = tokio::spawn(async move { bot.run(None, stopped).await });
    let mut user = Chat::new(&sim);
    println!("\n1. a Telegram user says /start to the bot (a local Bot API server plays Telegram)");
    user.send(json!({"text": "/start"}));
    user.wait_for("Привет").await?;

    println!("\n2. creates an avatar: name, preset, an album of 12 photos (drawn just now)");
    user.send(json!({"text": "/avatar"}));
    user.wait_for("Как назовём").await?;
    user.send(json!({"text": "Demo"}));
    let presets = user.wait_for("режим обучения").await?;
    user.press(&presets, "p:fast");
    user.wait_for("Пришлите").await?;
    for i in 0..12u8 {
        let b64 = base64::engine::general_purpose::STANDARD.encode(aisha_sim::photos::selfie(i));
        user.send(json!({"document": {"bytes_b64": b64, "file_name": format!("selfie-{i:02}.png"), "mime_type": "image/png"}, "media_group_id": "demo-album"}));
    }
    let count = user.wait_for("12 фото").await?;
    user.press(&count, "train");
    user.wait_for("в очереди").await?;
    let avatar_run = latest_run(engine, avatar::NAME).await?;
    watch(engine, &[("avatar", avatar_run.clone())]).await?;
    user.wait_for("готов").await?;

    println!(
        "\n3. orders portraits in two styles, two of each ({} credits an image)",
        settings.product.prices.image
    );
    let mut runs = Vec::new();
    let mut accepted_ids = Vec::new();
    for style in STYLES {
        user.send(json!({"text": "/generate"}));
        let styles = user.wait_for("Выберите стиль").await?;
        user.press(&styles, &format!("s:{style}"));
        let aspects = user.wait_for("Формат кадра").await?;
        user.press(&aspects, "r:3x4");
        let counts = user.wait_for("Сколько картинок").await?;
        user.press(&counts, "n:2");
        let accepted = user.wait_for("Заказ принят").await?;
        runs.push((style, latest_run(engine, portrait::NAME).await?));
        accepted_ids.push((style, accepted.message_ids));
    }
    let named: Vec<(&str, String)> = runs.iter().map(|(s, id)| (*s, id.clone())).collect();
    watch(engine, &named).await?;
    let mut what_next = Vec::new();
    for _ in STYLES {
        what_next.push(user.wait_for("Что дальше").await?);
    }
    println!("\n4. the \"order accepted\" message, edited in place while FAL drew:");
    let sent = sim.sent(Some(DEMO_CHAT), 0);
    for (style, ids) in &accepted_ids {
        let edits: Vec<&str> = sent
            .iter()
            .filter(|c| c.method == "editMessageText" && &c.message_ids == ids)
            .filter_map(|c| c.str("text"))
            .collect();
        println!("   {style}: {} → album", edits.join(" → "));
    }
    let upscaled = upscale_one(&mut user, engine, &what_next, &runs[0]).await?;
    let _ = stop.send(true);
    let _ = bot_task.await;
    sim.stop().await;

    let out = dir.join("portraits");
    std::fs::create_dir_all(&out)?;
    let mut portraits = Vec::new();
    let mut handovers = Vec::new();
    let mut all = vec![avatar_run.clone()];
    for (style, id) in &runs {
        all.push(id.clone());
        let d = engine.show_run(id).await?;
        for (i, k) in d.state["stored"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let key = BlobKey::try_from(k.as_str().unwrap_or_default().to_string())?;
            let path = out.join(format!("{style}-{}.jpg", i + 1));
            std::fs::write(&path, app.blobs.store.get(&key).await?)?;
            portraits.push(path);
        }
        handovers.push(handover_ms(inbox, &db, id).await?);
    }
    portraits.push(write_upscaled(app, &out, &upscaled).await?);
    all.push(upscaled.1);
    handovers.sort_by(f64::total_cmp);
    let mut steps = 0;
    let mut retries = 0;
    for id in &all {
        let d = engine.show_run(id).await?;
        steps += d.timeline.len();
        retries += d.timeline.iter().filter(|t| t.attempt > 1).count();
    }
    Ok(Summary {
        runs: all.len(),
        steps,
        retries,
        balance: ledger.balance(USER).await?,
        handover: format!(
            "{} ms (p50 of {} runs, 2 images each)",
            handovers
                .get(handovers.len() / 2)
                .map(|v| format!("{v:.0}"))
                .unwrap_or_default(),
            handovers.len()
        ),
        portraits,
    })
}

/// Presses "🔍 ×2" under the first portrait of `(style, run)` and waits for the file.
/// Returns the style and the upscale run.
async fn upscale_one<'a>(
    user: &mut Chat<'_>,
    engine: &Engine,
    what_next: &[SentCall],
    (style, run): &(&'a str, String),
) -> anyhow::Result<(&'a str, String)> {
    println!("\n5. upscales the first {style} portrait ×2: it comes back as a file");
    let button = format!("up:0:{run}");
    let message = what_next
        .iter()
        .find(|c| c.buttons().iter().any(|(_, data)| *data == button))
        .context("no upscale button under the portraits")?;
    user.press(message, &button);
    user.wait_for("×2 (").await?;
    let id = latest_run(engine, upscale::NAME).await?;
    watch(engine, &[("upscale", id.clone())]).await?;
    user.wait_for("Готово: портрет ×2").await?;
    Ok((style, id))
}

/// Writes the upscaled portrait beside its original as `<style>-1-upscaled.jpg`, checking
/// it is twice the original's width and height.
async fn write_upscaled(
    app: &app::App,
    out: &Path,
    (style, run): &(&str, String),
) -> anyhow::Result<PathBuf> {
    let state = app.engine.show_run(run).await?.state;
    let key = BlobKey::try_from(state["stored"].as_str().unwrap_or_default().to_string())?;
    let bytes = app.blobs.store.get(&key).await?;
    let original = image::open(out.join(format!("{style}-1.jpg")))?;
    let upscaled = image::load_from_memory(&bytes)?;
    let (w, h) = (original.width() * 2, original.height() * 2);
    if (upscaled.width(), upscaled.height()) != (w, h) {
        bail!(
            "the upscaled portrait is {}×{}, not {w}×{h}",
            upscaled.width(),
            upscaled.height()
        );
    }
    let path = out.join(format!("{style}-1-upscaled.jpg"));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// The newest run of `workflow` of the demo user.
async fn latest_run(engine: &Engine, workflow: &str) -> anyhow::Result<String> {
    let runs = engine
        .list_runs(&RunFilter {
            workflow: Some(workflow.into()),
            subject: Some(USER.into()),
            limit: Some(1),
            ..RunFilter::default()
        })
        .await?;
    runs.into_iter()
        .next()
        .map(|r| r.id)
        .context("the bot started no run")
}

/// The demo user's side of the chat: sends, presses buttons, and prints what the bot says.
struct Chat<'a> {
    sim: &'a SimTelegram,
    seen: u64,
}

impl<'a> Chat<'a> {
    fn new(sim: &'a SimTelegram) -> Chat<'a> {
        Chat { sim, seen: 0 }
    }

    fn who() -> SimUser {
        SimUser {
            id: DEMO_CHAT,
            first_name: "Demo".into(),
            language_code: Some("ru".into()),
            username: None,
        }
    }

    fn send(&self, action: Value) {
        let mut v = action;
        v["user"] = serde_json::to_value(Self::who()).unwrap_or_default();
        if let Ok(a) = serde_json::from_value::<UserAction>(v) {
            self.sim.push(a);
        }
    }

    fn press(&self, message: &SentCall, data: &str) {
        println!("  user  › [{data}]");
        self.send(json!({"callback": {"data": data, "message_id": message.message_ids.first().copied().unwrap_or(0)}}));
    }

    /// Prints the bot's messages until one says `needle`; returns that one.
    async fn wait_for(&mut self, needle: &str) -> anyhow::Result<SentCall> {
        let t0 = Instant::now();
        loop {
            for c in self.sim.sent(Some(DEMO_CHAT), self.seen) {
                self.seen = c.seq;
                let text = c.params["text"]
                    .as_str()
                    .or_else(|| c.params["caption"].as_str())
                    .or_else(|| c.params["media"][0]["caption"].as_str())
                    .unwrap_or_default();
                let files = if c.files.is_empty() {
                    String::new()
                } else {
                    format!(" [{} image(s)]", c.files.len())
                };
                if !text.is_empty() || !files.is_empty() {
                    println!("  bot   › {}{files}", text.replace('\n', "\n          "));
                }
                if text.contains(needle) {
                    return Ok(c);
                }
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("the bot never said “{needle}”");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// From the FAL callback's arrival in the inbox to the delivery row in the outbox.
async fn handover_ms(inbox: &Inbox, db: &aisha_engine::Db, run_id: &str) -> anyhow::Result<f64> {
    let received = inbox
        .first_received_at(run_id)
        .await?
        .with_context(|| format!("no FAL callback arrived for run {run_id}"))?;
    let queued = Outbox::new(db.clone())
        .queued_at(run_id, "portraits")
        .await?
        .with_context(|| format!("run {run_id} queued no portraits"))?;
    Ok((queued - received) as f64)
}

/// Prints each run's steps as they finish, until every run has ended.
async fn watch(engine: &Engine, runs: &[(&str, String)]) -> anyhow::Result<()> {
    let mut shown: HashMap<String, usize> = HashMap::new();
    let mut status: HashMap<String, aisha_engine::RunStatus> = HashMap::new();
    let t0 = Instant::now();
    loop {
        let mut open = 0;
        for (label, id) in runs {
            let d = engine.show_run(id).await?;
            let seen = shown.entry(id.clone()).or_default();
            let done = d
                .timeline
                .iter()
                .take_while(|t| t.outcome != "running")
                .count();
            for t in d.timeline.iter().take(done).skip(*seen) {
                let took = t.duration_ms.map(|m| format!("{m} ms")).unwrap_or_default();
                let err = t
                    .error
                    .as_deref()
                    .map(|e| format!(" — {e}"))
                    .unwrap_or_default();
                println!(
                    "  {:>9.1} s  {label:<10} {:<10} attempt {}  {:<8} {took}{err}",
                    t0.elapsed().as_secs_f64(),
                    t.step,
                    t.attempt,
                    t.outcome
                );
            }
            *seen = done;
            if status.get(id) != Some(&d.run.status) {
                if d.run.status == "waiting" {
                    println!(
                        "  {:>9.1} s  {label:<10} waiting for FAL's signed callback",
                        t0.elapsed().as_secs_f64()
                    );
                }
                status.insert(id.clone(), d.run.status);
            }
            match d.run.status.as_str() {
                "succeeded" => {}
                "failed" | "cancelled" => bail!(
                    "{label} run {id} {}: {}",
                    d.run.status,
                    d.run.error.unwrap_or_default()
                ),
                _ => open += 1,
            }
        }
        if open == 0 {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("the demo's runs did not finish in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This process's memory from /proc/self/status, in KiB (`VmRSS` now, `VmHWM` the peak).
pub(crate) fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
