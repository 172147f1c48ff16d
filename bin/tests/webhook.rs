//! The webhook service end to end: the engine runs `fal_probe` against the simulator, which
//! calls back over HTTP, signed; every kind of bad delivery is refused and changes nothing.

mod common;

use std::time::Duration;

use aisha_engine::{
    Next, QueueKind, RetryPolicy, StartOptions, StepCtx, StepError, StepResult, Wait, Workflow,
};
use aisha_fal::apps::{FluxLoraInput, FluxLoraOutput};
use aisha_fal::client::QueueStatus;
use aisha_fal::inbox::Inbox;
use aisha_fal::jobs::{FalJobs, PROVIDER};
use aisha_fal::signature::{HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID};
use aisha_fal::token::{Endpoint, WebhookToken};
use aisha_sim::fal::signing::WebhookSigner;
use aisha_sim::fal::{Fault, SimConfig};
use common::world::World;
use serde_json::{Value, json};

use common::world::{fast_sim, start_probe};

async fn probe_happy_path(kind: QueueKind) {
    let w = World::start(kind, fast_sim(), |b, _| b).await;
    let run = start_probe(&w, 600).await;
    let done = w.wait_for(&run, "succeeded").await;
    let state = &done.state;
    assert_eq!(state["image"]["width"], 512, "{state}");
    assert_eq!(
        w.count("SELECT COUNT(*) FROM fal_inbox WHERE outcome = 'resolved'")
            .await,
        1
    );
    assert_eq!(w.count("SELECT COUNT(*) FROM fal_submissions WHERE closed_at IS NOT NULL AND request_id IS NOT NULL").await, 1);
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"resolved\""]),
        1.0
    );
    assert!(
        w.metric(
            "aisha_fal_requests_total",
            &["op=\"submit\"", "status=\"ok\""]
        ) >= 1.0
    );
    // Retention: a handed-over delivery goes once it is older than the retention.
    let inbox = Inbox::start(w.engine.db(), w.engine.relaxed_db());
    assert_eq!(inbox.prune(Duration::from_secs(3600)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(inbox.prune(Duration::ZERO).await.unwrap(), 1);
    w.finish().await;
}

#[tokio::test]
async fn valid_callback_resolves_the_waiting_run_postgres() {
    probe_happy_path(QueueKind::Postgres).await;
}

#[tokio::test]
async fn valid_callback_resolves_the_waiting_run_sqlite() {
    probe_happy_path(QueueKind::Sqlite).await;
}

struct Delivery {
    url: String,
    request_id: String,
    timestamp: String,
    body: Vec<u8>,
    signer: WebhookSigner,
    user_id: String,
}

impl Delivery {
    async fn send(&self, client: &reqwest::Client) -> u16 {
        let sig = self
            .signer
            .sign(&self.request_id, &self.user_id, &self.timestamp, &self.body);
        client
            .post(&self.url)
            .header(HEADER_REQUEST_ID, &self.request_id)
            .header(HEADER_USER_ID, &self.user_id)
            .header(HEADER_TIMESTAMP, &self.timestamp)
            .header(HEADER_SIGNATURE, sig)
            .body(self.body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn bad_deliveries_are_refused_and_store_nothing_then_a_good_one_resolves() {
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| b).await;
    w.sim.push_faults([vec![Fault::NoCallback]]);
    let run = start_probe(&w, 600).await;
    w.wait_for(&run, "waiting").await;
    let sub = w.jobs.store.of_run(&run).await.unwrap().remove(0);
    let request_id = sub.request_id.clone().unwrap();
    // The job is done at the simulator; build the callback FAL would have sent.
    while !matches!(
        w.jobs
            .client
            .status("fal-ai/flux-lora", sub.status_url.as_deref().unwrap())
            .await
            .unwrap(),
        QueueStatus::Completed { .. }
    ) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payload: FluxLoraOutput = w
        .jobs
        .client
        .result("fal-ai/flux-lora", sub.response_url.as_deref().unwrap())
        .await
        .unwrap();
    let body = serde_json::to_vec(&json!({"request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": payload})).unwrap();
    let good = Delivery {
        url: w
            .token
            .webhook_url(&w.base, Endpoint::Portrait, &run, "submit"),
        request_id: request_id.clone(),
        timestamp: chrono::Utc::now().timestamp().to_string(),
        body,
        signer: w.sim.signer(),
        user_id: w.sim.user_id().to_string(),
    };
    let http = reqwest::Client::new();

    // No signature headers at all.
    let status = http
        .post(&good.url)
        .body(good.body.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    // Signed by a key FAL never published.
    let forged = Delivery {
        signer: WebhookSigner::generate(),
        ..clone(&good)
    };
    assert_eq!(forged.send(&http).await, 401);
    // A replay: a genuine signature, ten minutes old.
    let replay = Delivery {
        timestamp: (chrono::Utc::now().timestamp() - 600).to_string(),
        ..clone(&good)
    };
    assert_eq!(replay.send(&http).await, 401);
    // Signed body, then altered: the signature no longer matches.
    let mut altered = clone(&good);
    altered.body = br#"{"request_id":"x","status":"ERROR"}"#.to_vec();
    let sig = good
        .signer
        .sign(&good.request_id, &good.user_id, &good.timestamp, &good.body);
    let status = http
        .post(&good.url)
        .header(HEADER_REQUEST_ID, &good.request_id)
        .header(HEADER_USER_ID, &good.user_id)
        .header(HEADER_TIMESTAMP, &good.timestamp)
        .header(HEADER_SIGNATURE, sig)
        .body(altered.body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    // Our token: missing, or minted for another run.
    let no_token = Delivery {
        url: format!("{}/webhook/fal/portrait?run={run}&step=submit", w.base),
        ..clone(&good)
    };
    assert_eq!(no_token.send(&http).await, 401);
    let other_run = Delivery {
        url: w
            .token
            .webhook_url(&w.base, Endpoint::Portrait, "another-run", "submit")
            .replace("another-run", &run),
        ..clone(&good)
    };
    assert_eq!(other_run.send(&http).await, 401);
    // Signed, with a good token, but not JSON; or the body's request id is not the signed one.
    let not_json = Delivery {
        body: b"{not json".to_vec(),
        ..clone(&good)
    };
    assert_eq!(not_json.send(&http).await, 400);
    let mismatch = Delivery {
        body: br#"{"request_id":"other","status":"OK","payload":{}}"#.to_vec(),
        ..clone(&good)
    };
    assert_eq!(mismatch.send(&http).await, 400);
    // Signed by FAL, but for another FAL account than ours (FAL_USER_ID).
    let foreign = Delivery {
        user_id: "someone-else".into(),
        ..clone(&good)
    };
    assert_eq!(foreign.send(&http).await, 401);
    // Over 1 MiB.
    let huge = Delivery {
        body: vec![b' '; (1 << 20) + 1],
        ..clone(&good)
    };
    assert_eq!(huge.send(&http).await, 413);
    // Wrong method.
    assert_eq!(http.get(&good.url).send().await.unwrap().status(), 405);

    assert_eq!(w.count("SELECT COUNT(*) FROM fal_inbox").await, 0);
    assert_eq!(
        w.count("SELECT COUNT(*) FROM callbacks WHERE payload IS NOT NULL")
            .await,
        0
    );
    assert_eq!(w.engine.show_run(&run).await.unwrap().run.status, "waiting");
    assert_eq!(
        w.metric(
            "aisha_callbacks_received_total",
            &["outcome=\"bad_signature\""]
        ),
        4.0
    );
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"bad_token\""]),
        2.0
    );
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"malformed\""]),
        2.0
    );
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"too_large\""]),
        1.0
    );
    assert_eq!(
        w.metric(
            "aisha_callbacks_received_total",
            &["outcome=\"foreign_user\""]
        ),
        1.0
    );

    // The genuine delivery, then FAL's retry of it.
    assert_eq!(good.send(&http).await, 200);
    w.wait_for(&run, "succeeded").await;
    assert_eq!(good.send(&http).await, 200);
    assert_eq!(w.count("SELECT COUNT(*) FROM fal_inbox").await, 1);
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"duplicate\""]),
        1.0
    );
    w.finish().await;
}

fn clone(d: &Delivery) -> Delivery {
    Delivery {
        url: d.url.clone(),
        request_id: d.request_id.clone(),
        timestamp: d.timestamp.clone(),
        body: d.body.clone(),
        signer: d.signer.clone(),
        user_id: d.user_id.clone(),
    }
}

#[tokio::test]
async fn duplicate_callbacks_are_applied_once() {
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| b).await;
    w.sim.push_faults([vec![Fault::Duplicate]]);
    let run = start_probe(&w, 600).await;
    let done = w.wait_for(&run, "succeeded").await;
    let t0 = std::time::Instant::now();
    while w.sim.requests()[0].callbacks_sent < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "second delivery never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let checks = done.timeline.iter().filter(|t| t.step == "check").count();
    assert_eq!(checks, 1, "{done:#?}");
    assert_eq!(w.count("SELECT COUNT(*) FROM fal_inbox").await, 1);
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"duplicate\""]),
        1.0
    );
    w.finish().await;
}

#[tokio::test]
async fn no_callback_the_poll_finds_the_result() {
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| b).await;
    w.sim.push_faults([vec![Fault::NoCallback]]);
    let run = start_probe(&w, 4).await;
    let done = w.wait_for(&run, "succeeded").await;
    let state = &done.state;
    assert_eq!(state["image"]["height"], 512);
    assert_eq!(w.count("SELECT COUNT(*) FROM fal_inbox").await, 0);
    w.finish().await;
}

#[tokio::test]
async fn an_error_callback_fails_the_run_with_fals_reason() {
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| b).await;
    w.sim.push_faults([vec![Fault::Error]]);
    let run = start_probe(&w, 600).await;
    let done = w.wait_for(&run, "failed").await;
    let error = done.run.error.unwrap_or_default();
    assert!(error.contains("fault injected"), "{error}");
    // The failure closed the submission: a retry would submit afresh.
    assert_eq!(
        w.count("SELECT COUNT(*) FROM fal_submissions WHERE closed_at IS NULL")
            .await,
        0
    );
    w.finish().await;
}

#[tokio::test]
async fn rotated_keys_are_fetched_when_a_signature_is_unknown() {
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| b).await;
    let first = start_probe(&w, 600).await;
    w.wait_for(&first, "succeeded").await;
    w.sim.rotate_key();
    let second = start_probe(&w, 600).await;
    w.wait_for(&second, "succeeded").await;
    assert_eq!(
        w.metric(
            "aisha_callbacks_received_total",
            &["outcome=\"bad_signature\""]
        ),
        0.0
    );
    w.finish().await;
}

/// A submit step that dawdles after FAL answered: the callback arrives before the step's
/// wait is committed.
fn dawdling_submit(jobs: &FalJobs) -> Workflow<Value, FalJobs> {
    Workflow::new("dawdle", jobs.clone())
        .step("submit", |s: Value, ctx: StepCtx<FalJobs>| async move {
            let input = generation();
            let id = ctx
                .deps
                .submit(
                    &ctx.run_id,
                    "submit",
                    Endpoint::Portrait,
                    "fal-ai/flux-lora",
                    &input,
                )
                .await?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(Next::Wait(Wait::new(PROVIDER, id, "done", s)))
        })
        .step("done", done)
}

fn generation() -> FluxLoraInput {
    serde_json::from_value(json!({"prompt": "p", "image_size": {"width": 64, "height": 64}}))
        .unwrap()
}

async fn done(s: Value, ctx: StepCtx<FalJobs>) -> StepResult<Value> {
    ctx.deps.finish(&ctx.run_id, "submit").await?;
    let body = ctx
        .callback
        .ok_or_else(|| StepError::permanent("no callback"))?;
    Ok(Next::Done(json!({"in": s, "callback": body})))
}

#[tokio::test]
async fn a_callback_before_the_submit_step_committed_still_resolves_the_run() {
    let w = World::start(
        QueueKind::Postgres,
        SimConfig {
            delay: Duration::from_millis(10),
            ..SimConfig::default()
        },
        |b, f| b.register(dawdling_submit(&f.fal.jobs)),
    )
    .await;
    let run = w
        .engine
        .start("dawdle", json!({}), StartOptions::default())
        .await
        .unwrap()
        .run_id;
    let done = w.wait_for(&run, "succeeded").await;
    let state = &done.state;
    assert_eq!(state["callback"]["status"], "OK");
    assert_eq!(
        w.count("SELECT COUNT(*) FROM fal_inbox WHERE outcome = 'early'")
            .await,
        1
    );
    w.finish().await;
}

type LostDeps = (FalJobs, WebhookToken, String);

/// The submitting worker "dies" between FAL's answer and recording the request id (its first
/// attempt submits without recording, then fails). The callback carries our token, so the
/// request id is adopted and the retry waits for it instead of paying for a second job.
fn lost_record(deps: LostDeps) -> Workflow<Value, LostDeps> {
    let policy = RetryPolicy::default()
        .attempts(5)
        .backoff(Duration::from_millis(1500), Duration::from_millis(1500));
    Workflow::new("lost_record", deps)
        .default_policy(policy)
        .step("submit", |s: Value, ctx: StepCtx<LostDeps>| async move {
            let (jobs, token, base) = &*ctx.deps;
            let app = "fal-ai/flux-lora";
            if ctx.attempt == 1 {
                jobs.store
                    .intent(&ctx.run_id, "submit", app)
                    .await
                    .map_err(StepError::retryable)?;
                let hook = token.webhook_url(base, Endpoint::Portrait, &ctx.run_id, "submit");
                jobs.client
                    .submit(app, &generation(), &hook)
                    .await
                    .map_err(StepError::retryable)?;
                return Err(StepError::retryable(
                    "worker died before recording the request id",
                ));
            }
            let id = jobs
                .submit(
                    &ctx.run_id,
                    "submit",
                    Endpoint::Portrait,
                    app,
                    &generation(),
                )
                .await?;
            Ok(Next::Wait(Wait::new(PROVIDER, id, "done", s)))
        })
        .step("done", |s: Value, ctx: StepCtx<LostDeps>| async move {
            ctx.deps.0.finish(&ctx.run_id, "submit").await?;
            Ok(Next::Done(json!({"in": s, "callback": ctx.callback})))
        })
}

#[tokio::test]
async fn a_callback_before_the_request_id_was_recorded_routes_by_token() {
    let sim = SimConfig {
        delay: Duration::from_millis(10),
        ..SimConfig::default()
    };
    let w = World::start(QueueKind::Postgres, sim, |b, f| {
        b.register(lost_record((
            f.fal.jobs.clone(),
            f.fal.token.clone(),
            f.public_url.clone(),
        )))
    })
    .await;
    let run = w
        .engine
        .start("lost_record", json!({}), StartOptions::default())
        .await
        .unwrap()
        .run_id;
    let done = w.wait_for(&run, "succeeded").await;
    assert_eq!(w.sim.submits(), 1, "the retry must not submit again");
    let subs = w.jobs.store.of_run(&run).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].request_id.as_deref(),
        Some(w.sim.requests()[0].request_id.as_str())
    );
    let state = &done.state;
    assert_eq!(state["callback"]["status"], "OK");
    w.finish().await;
}
