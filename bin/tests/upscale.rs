//! `portrait_upscale` end to end, on SQLite and on Postgres: the engine, the FAL simulator's
//! upscaler over HTTP (a real Lanczos resize) with signed callbacks into the real webhook
//! service on `/webhook/fal/portrait`, the ledger, the gallery, the outbox, the local blob
//! store.

mod common;

use std::time::Duration;

use aisha_engine::{QueueKind, StartOptions};
use aisha_sim::fal::{Fault, SimConfig};
use aisha_workflows::blob::BlobKey;
use aisha_workflows::credits::{Kind, Ledger};
use aisha_workflows::gallery::{Gallery, NewPortrait};
use aisha_workflows::notice::Notice;
use aisha_workflows::outbox::{Outbox, Payload};
use aisha_workflows::product::Prices;
use aisha_workflows::upscale::{self, UpscaleInput};
use bytes::Bytes;
use common::world::World;
use serde_json::json;

const USER: &str = "tg-2002";
const GRANT: i64 = 20;

struct Setup {
    w: World,
    ledger: Ledger,
    outbox: Outbox,
    gallery: Gallery,
    /// The generation run whose image 0 is upscaled.
    portrait_run: String,
}

/// A world whose user has `GRANT` credits and one 640×800 portrait in the gallery.
async fn setup(kind: QueueKind) -> Setup {
    let sim = SimConfig {
        delay: Duration::from_millis(50),
        ..SimConfig::default()
    };
    let w = World::start(kind, sim, |b, _| b).await;
    let db = w.engine.db().clone();
    let ledger = Ledger::new(db.clone());
    ledger
        .add(USER, Kind::Grant, GRANT, "test", "grant-1")
        .await
        .unwrap();
    let portrait_run = ulid::Ulid::generate().to_string();
    let key = BlobKey::new(&["portraits", &portrait_run, "0.png"]).unwrap();
    let png = aisha_sim::photos::photo(640, 800, 3);
    let size = png.len();
    w.blobs
        .put(&key, Bytes::from(png), "image/png")
        .await
        .unwrap();
    let gallery = Gallery::new(db.clone());
    gallery
        .add(&NewPortrait {
            user_id: USER,
            avatar_id: "a1",
            run_id: &portrait_run,
            idx: 0,
            key: &key,
            width: Some(640),
            height: Some(800),
            content_type: "image/png",
            bytes: size,
            prompt: "a portrait",
        })
        .await
        .unwrap();
    Setup {
        w,
        ledger,
        outbox: Outbox::new(db.clone()),
        gallery,
        portrait_run,
    }
}

impl Setup {
    /// Starts an upscale of image 0 as one press of the button `press` would.
    async fn press(&self, press: &str) -> (String, bool) {
        let input = UpscaleInput {
            user_id: USER.into(),
            portrait_run: self.portrait_run.clone(),
            idx: 0,
        };
        let opts = StartOptions {
            subject: Some(USER.into()),
            idempotency_key: Some(press.into()),
            parent_run_id: None,
        };
        let s = upscale::press(&self.w.engine, &input, opts).await.unwrap();
        (s.run_id, s.created)
    }

    async fn notices(&self) -> Vec<Notice> {
        self.outbox
            .list(Some(USER), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| match Payload::decode(&r.payload).unwrap() {
                Payload::Notice(n) => n,
                Payload::Rendered(r) => panic!("an untyped notice: {r:?}"),
            })
            .collect()
    }

    async fn finish(self) {
        let inv = self.ledger.check().await.unwrap();
        assert!(
            inv.balance_mismatches.is_empty() && inv.bad_runs.is_empty(),
            "{inv:?}"
        );
        self.w.finish().await;
    }
}

async fn upscaled_twice_as_large_charged_once(kind: QueueKind) {
    let s = setup(kind).await;
    let price = Prices::default().upscale;
    let (run, created) = s.press("tg-button:1:7:up:0:r").await;
    assert!(created);
    // The same button pressed again: the same run.
    let (again, created) = s.press("tg-button:1:7:up:0:r").await;
    assert_eq!((again.as_str(), created), (run.as_str(), false));
    let done = s.w.wait_for(&run, "succeeded").await;
    let steps: Vec<&str> = done.timeline.iter().map(|t| t.step.as_str()).collect();
    assert_eq!(steps, ["reserve", "submit", "store", "deliver"]);

    let notices = s.notices().await;
    let [
        Notice::UpscaleReady {
            document,
            width,
            height,
        },
    ] = notices.as_slice()
    else {
        panic!("one upscale notice expected: {notices:?}");
    };
    assert_eq!((*width, *height), (1280, 1600));
    let file = s.w.blobs.get(document).await.unwrap();
    let img = image::load_from_memory(&file).unwrap();
    assert_eq!((img.width(), img.height()), (1280, 1600));

    let row = s
        .gallery
        .of_run(USER, &s.portrait_run, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.upscaled().as_ref(), Some(document));
    assert_eq!(s.ledger.balance(USER).await.unwrap(), GRANT - price);
    assert_eq!(
        s.w.count("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'capture'")
            .await,
        1
    );
    assert_eq!(
        s.w.count("SELECT COUNT(*) FROM workflow_runs WHERE workflow = 'portrait_upscale'")
            .await,
        1
    );
    s.finish().await;
}

#[tokio::test]
async fn upscale_embedded_sqlite() {
    upscaled_twice_as_large_charged_once(QueueKind::Sqlite).await;
}

#[tokio::test]
async fn upscale_postgres() {
    upscaled_twice_as_large_charged_once(QueueKind::Postgres).await;
}

async fn a_failed_upscale_is_refunded(kind: QueueKind) {
    let s = setup(kind).await;
    s.w.sim.push_faults([vec![Fault::Error]]);
    let (run, _) = s.press("press-1").await;
    let done = s.w.wait_for(&run, "failed").await;
    assert!(
        done.run
            .error
            .unwrap_or_default()
            .contains("fault injected")
    );
    assert_eq!(s.ledger.balance(USER).await.unwrap(), GRANT);
    assert_eq!(
        s.notices().await,
        [Notice::UpscaleFailed {
            refunded: Prices::default().upscale
        }]
    );
    let row = s
        .gallery
        .of_run(USER, &s.portrait_run, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.upscaled_key, None);

    // The same button again: a new run (the failed one was refunded), charged once however
    // often it is pressed.
    let (retry, created) = s.press("press-1").await;
    assert!(created && retry != run);
    assert_eq!(s.press("press-1").await, (retry.clone(), false));
    s.w.wait_for(&retry, "succeeded").await;
    assert_eq!(
        s.ledger.balance(USER).await.unwrap(),
        GRANT - Prices::default().upscale
    );
    s.finish().await;
}

#[tokio::test]
async fn failed_upscale_refunds_sqlite() {
    a_failed_upscale_is_refunded(QueueKind::Sqlite).await;
}

#[tokio::test]
async fn failed_upscale_refunds_postgres() {
    a_failed_upscale_is_refunded(QueueKind::Postgres).await;
}

/// Someone else's portrait, or none: the run fails before reserving anything.
#[tokio::test]
async fn only_the_users_own_portrait_is_upscaled() {
    let s = setup(QueueKind::Sqlite).await;
    let input = UpscaleInput {
        user_id: "someone-else".into(),
        portrait_run: s.portrait_run.clone(),
        idx: 0,
    };
    let run = upscale::press(&s.w.engine, &input, StartOptions::default())
        .await
        .unwrap()
        .run_id;
    let done = s.w.wait_for(&run, "failed").await;
    assert!(
        done.run
            .error
            .unwrap_or_default()
            .contains("no such portrait")
    );
    assert_eq!(s.ledger.held_by_run(&run).await.unwrap(), 0);
    assert_eq!(s.w.sim.submits(), 0);
    s.finish().await;
}

/// The simulator keeps FAL's schema: a bad input is a 422 with FAL's validation body.
#[tokio::test]
async fn the_simulated_upscaler_answers_422_to_bad_input() {
    let s = setup(QueueKind::Sqlite).await;
    let http = reqwest::Client::new();
    let submit = |body: serde_json::Value| {
        http.post(format!("{}/fal-ai/esrgan", s.w.sim.base_url))
            .header("authorization", "Key test")
            .json(&body)
            .send()
    };
    let r = submit(json!({"scale": 2})).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "image_url"]));
    let r = submit(json!({"image_url": "http://127.0.0.1:9/x.png", "scale": 12}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "scale"]));
    s.finish().await;
}
