//! `aisha bench webhook`: signed FAL callbacks against the real webhook service (salvo over a
//! socket, JWKS fetched from the simulator, durable inbox in Postgres), closed loop for
//! throughput, then open loop at a fixed rate for latency. Figures, not pass/fail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_fal::inbox::Inbox;
use aisha_fal::signature::{HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID};
use aisha_fal::token::{Endpoint, WebhookToken};
use aisha_sim::fal::signing::WebhookSigner;
use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use serde_json::json;

use crate::app::{App, Startup};
use crate::bench::{drop_pg, fresh_pg, pct, process_cpu_ms as cpu_ms};
use crate::settings::Settings;

const DB_NAME: &str = "aisha_bench_webhook";

#[derive(Args, Debug, Clone)]
pub struct WebhookBench {
    /// Callbacks sent in the closed-loop (throughput) phase.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Requests in flight at once in the closed-loop phase.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Offered rate of the open-loop (latency) phase, callbacks per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Length of the open-loop phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Postgres server for the bench database `aisha_bench_webhook` (dropped and created anew).
    #[arg(
        long,
        env = "AISHA_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
}

struct Target {
    client: reqwest::Client,
    url: String,
    signer: WebhookSigner,
    token: WebhookToken,
    user_id: String,
}

impl Target {
    /// One signed callback for a run we make up; returns its latency in µs.
    async fn send(&self, started: Instant) -> anyhow::Result<i64> {
        let request_id = uuid_like();
        let run_id = uuid_like();
        let body = json!({
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": "OK",
            "payload": {"images": [{"url": "https://fal.media/files/x/image.jpg", "width": 1024, "height": 1024, "content_type": "image/jpeg", "file_name": "image.jpg", "file_size": 181234}], "seed": 42, "has_nsfw_concepts": [false]},
        })
        .to_string();
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = self
            .signer
            .sign(&request_id, &self.user_id, &ts, body.as_bytes());
        let url = self
            .token
            .webhook_url(&self.url, Endpoint::Portrait, &run_id, "submit");
        let resp = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(HEADER_REQUEST_ID, &request_id)
            .header(HEADER_USER_ID, &self.user_id)
            .header(HEADER_TIMESTAMP, ts)
            .header(HEADER_SIGNATURE, sig)
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("webhook answered {}", resp.status());
        }
        Ok(started.elapsed().as_micros() as i64)
    }
}

fn uuid_like() -> String {
    ulid::Ulid::generate().to_string().to_lowercase()
}

pub async fn run(args: WebhookBench) -> anyhow::Result<()> {
    if args.requests == 0 || args.concurrency == 0 || args.rate == 0 {
        bail!("--requests, --concurrency and --rate must be at least 1");
    }
    // Migrated by the app's own start-up.
    let url = fresh_pg(&args.postgres, DB_NAME).await?;
    let result = measure(&args, &url).await;
    drop_pg(&args.postgres, DB_NAME).await;
    result
}

/// The webhook as `aisha webhook` runs it (the binary's own wiring, on the bench database),
/// with FAL played by the built-in simulator, whose key signs the callbacks.
async fn measure(args: &WebhookBench, url: &str) -> anyhow::Result<()> {
    let data = tempfile::tempdir().context("a scratch DATA_DIR")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("a local port")?;
    let addr = listener.local_addr()?;
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", url.to_string()),
        ("QUEUE_BACKEND", "postgres".to_string()),
        ("DB_MAX_CONNECTIONS", "40".to_string()),
        ("DATA_DIR", data.path().display().to_string()),
        ("HTTP_BIND", addr.to_string()),
        ("WEBHOOK_SECRET", hex::encode(rand::random::<[u8; 32]>())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let settings = Settings::from_map(&vars)?;
    // `submits`: with no FAL configured, the built-in simulator is started (its key signs).
    let mut app = App::build(&settings, "bench", true, Startup::FailFast).await?;
    let sim = app.fal.sim.take().context("the built-in FAL simulator")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (webhook, handover_task) = app
        .fal
        .webhook(&app.engine, app.metrics.clone(), stopped)
        .await?;
    let inbox = webhook.handover.inbox().clone();
    let server = app.serve_public(&settings, listener, webhook, None)?;
    let target = Arc::new(Target {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?,
        url: format!("http://{}", server.addr),
        signer: sim.signer(),
        token: app.fal.token.clone(),
        user_id: sim.user_id().to_string(),
    });
    println!(
        "aisha bench webhook: Postgres inbox, salvo on {}, Ed25519 verification against the simulator's JWKS",
        server.addr
    );
    // Warm up: JWKS fetch, connections.
    for _ in 0..50 {
        target
            .send(Instant::now())
            .await
            .context("warm-up callback")?;
    }

    // Closed loop: as fast as `concurrency` clients go.
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    let mut lat: Vec<i64> = futures::stream::iter(0..args.requests)
        .map(|_| {
            let t = target.clone();
            async move { t.send(Instant::now()).await }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_ms() - cpu0;
    lat.sort_unstable();
    println!(
        "closed loop  {:>6} callbacks, {:>3} in flight: {:>7.0} verified+stored/s   p50 {:>6.2} ms   p99 {:>6.2} ms   CPU {:.2} ms/callback (server and client)",
        args.requests,
        args.concurrency,
        args.requests as f64 / wall,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        cpu / args.requests as f64,
    );

    caught_up(&inbox, "closed loop").await?;

    // Open loop: a callback every 1/rate s whatever the answers; latency counts from the
    // scheduled send time, so a stall is not hidden (no coordinated omission).
    let n = (args.rate * args.seconds) as usize;
    let every = Duration::from_secs_f64(1.0 / args.rate as f64);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let due = t0 + every * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let t = target.clone();
        tasks.push(tokio::spawn(async move { t.send(due).await }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.push(t.await??);
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "open loop    {:>6} callbacks at {:>5}/s offered: {:>7.0}/s done   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
        n,
        args.rate,
        n as f64 / wall,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
    );

    caught_up(&inbox, "open loop").await?;
    let _ = stop.send(true);
    let _ = handover_task.await;
    server.stop().await;
    sim.stop().await;
    app.pools.close().await;
    Ok(())
}

/// The hand-over to the engine runs behind the 200s: waits until it has caught up and prints
/// how long that took.
async fn caught_up(inbox: &Inbox, phase: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let start = inbox.backlog().await?;
    let mut backlog = start;
    while backlog > 0 && t0.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        backlog = inbox.backlog().await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "hand-over    {start:>6} callbacks of the {phase} not yet handed to the engine when it ended; caught up in {secs:.1} s ({:.0}/s)",
        start as f64 / secs.max(0.001)
    );
    Ok(())
}
