//! The two product workflows end to end: the engine, the FAL simulator over HTTP with signed
//! callbacks into the real webhook service, the ledger, the outbox, and a blob store — a
//! local folder (embedded default, SQLite) or a real S3 server (SeaweedFS, Postgres). Ledger
//! invariants are checked after every scenario.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aisha_engine::{QueueKind, StartOptions};
use aisha_sim::fal::{Fault, SimConfig};
use aisha_workflows::avatar::{self, AvatarInput, Preset};
use aisha_workflows::blob::{BlobKey, BlobStore};
use aisha_workflows::credits::{Kind, Ledger};
use aisha_workflows::gallery::Gallery;
use aisha_workflows::notice::Notice;
use aisha_workflows::outbox::{Outbox, Payload};
use aisha_workflows::photos::PhotoProblem;
use aisha_workflows::portrait::{self, PortraitInput};
use aisha_workflows::product::Waits;
use aisha_workflows::provider::Aspect;
use bytes::Bytes;
use common::world::World;

const USER: &str = "tg-1001";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Local,
    S3,
}

struct Shop {
    w: World,
    blobs: Arc<dyn BlobStore>,
    ledger: Ledger,
    outbox: Outbox,
    gallery: Gallery,
}

async fn shop(kind: QueueKind, store: Store, sim: SimConfig) -> Shop {
    // The S3 test server (started by scripts/test) must answer: the app makes the bucket.
    let s3 = match store {
        Store::S3 => Some(aisha_sim::s3::test_bucket()),
        Store::Local => None,
    };
    let w = World::start_with(
        kind,
        sim,
        |settings| {
            settings.product.s3 = s3;
            settings.product.waits = Waits {
                training_deadline: Duration::from_secs(60),
                training_poll: Duration::from_secs(2),
                generation_deadline: Duration::from_secs(60),
                generation_poll: Duration::from_secs(2),
                replacements: Duration::from_secs(60),
                ..Waits::default()
            };
        },
        |b, _| b,
    )
    .await;
    let db = w.engine.db().clone();
    Shop {
        blobs: w.blobs.clone(),
        ledger: Ledger::new(db.clone()),
        outbox: Outbox::new(db.clone()),
        gallery: Gallery::new(db),
        w,
    }
}

impl Shop {
    async fn upload(&self, bytes: Vec<u8>) -> BlobKey {
        let key = BlobKey::new(&["uploads", &ulid::Ulid::generate().to_string()]).unwrap();
        self.blobs
            .put(&key, Bytes::from(bytes), "image/png")
            .await
            .unwrap();
        key
    }

    async fn photos(&self, n: u8) -> Vec<BlobKey> {
        let mut keys = Vec::new();
        for i in 0..n {
            keys.push(self.upload(aisha_sim::photos::photo(640, 800, i)).await);
        }
        keys
    }

    async fn train(&self, photos: Vec<BlobKey>) -> String {
        let input = AvatarInput {
            user_id: USER.into(),
            name: "Me".into(),
            photos,
            preset: Preset::Fast,
        };
        avatar::start(&self.w.engine, &input, subject())
            .await
            .unwrap()
            .run_id
    }

    /// An order of `count` images of `avatar_id` in a style, or from a prompt.
    async fn order(&self, avatar_id: &str, choice: Choice, count: u32) -> String {
        self.order_seeded(avatar_id, choice, count, None).await
    }

    async fn order_seeded(
        &self,
        avatar_id: &str,
        choice: Choice,
        count: u32,
        seed: Option<u64>,
    ) -> String {
        let (style, prompt, aspect) = match choice {
            Choice::Style(s) => (Some(s.to_string()), None, None),
            Choice::Prompt(p, a) => (None, Some(p.to_string()), Some(a)),
        };
        let input = PortraitInput {
            user_id: USER.into(),
            avatar_id: avatar_id.into(),
            style,
            prompt,
            aspect,
            count,
            seed,
        };
        portrait::start(&self.w.engine, &input, subject())
            .await
            .unwrap()
            .run_id
    }

    /// The kinds of notices told, but a run's progress row (how many progress reports a run
    /// makes depends on how long FAL takes).
    async fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .outbox
            .list(Some(USER), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .filter(|k| k != "progress")
            .collect();
        k.sort();
        k
    }

    async fn finish(self) {
        let inv = self.ledger.check().await.unwrap();
        assert!(
            inv.balance_mismatches.is_empty() && inv.bad_runs.is_empty(),
            "{inv:?}"
        );
        assert_eq!(
            self.w.count("SELECT COUNT(*) FROM (SELECT run_id FROM credit_ledger WHERE kind = 'capture' GROUP BY run_id, reason HAVING COUNT(*) > 1) x").await,
            0,
            "a run captured twice"
        );
        self.w.finish().await;
    }
}

/// What a portrait is drawn from.
enum Choice {
    Style(&'static str),
    Prompt(&'static str, Aspect),
}

fn subject() -> StartOptions {
    StartOptions {
        subject: Some(USER.into()),
        ..StartOptions::default()
    }
}

fn fast_sim() -> SimConfig {
    SimConfig {
        delay: Duration::from_millis(100),
        ..SimConfig::default()
    }
}

async fn happy_path(kind: QueueKind, store: Store) {
    let s = shop(kind, store, fast_sim()).await;
    s.ledger
        .add(USER, Kind::Grant, 300, "test", "grant-1")
        .await
        .unwrap();
    let photos = s.photos(12).await;
    let avatar_id = s.train(photos).await;
    let done = s.w.wait_for(&avatar_id, "succeeded").await;
    assert!(done.state["trigger"].as_str().unwrap().starts_with("aisha"));
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 150);
    let lora = s
        .blobs
        .get(&BlobKey::new(&["avatars", &avatar_id, "lora.safetensors"]).unwrap())
        .await
        .unwrap();
    assert!(lora.len() > 8);
    assert_eq!(
        s.blobs
            .list(&format!("avatars/{avatar_id}/photos/"))
            .await
            .unwrap()
            .len(),
        12
    );

    let run = s.order(&avatar_id, Choice::Style("oil"), 2).await;
    let done = s.w.wait_for(&run, "succeeded").await;
    let stored = done.state["stored"].as_array().unwrap().clone();
    assert_eq!(stored.len(), 2);
    for k in &stored {
        let key = BlobKey::try_from(k.as_str().unwrap().to_string()).unwrap();
        let img = image::load_from_memory(&s.blobs.get(&key).await.unwrap()).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (768, 1024),
            "3:4 is FAL's portrait_4_3"
        );
    }
    assert_eq!(s.gallery.count_of_run(&run).await.unwrap(), 2);
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 140);
    assert_eq!(s.kinds().await, ["avatar_ready", "portraits"]);
    // The store step said "saving" last: the order's one progress row holds it. (The
    // training has its own, with the avatar's name and the time left.)
    let progress: Vec<String> = s
        .outbox
        .list(Some(USER), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "progress" && r.run_id == run)
        .map(|r| r.payload)
        .collect();
    assert_eq!(
        progress,
        [r#"{"notice":"progress","progress":{"stage":"saving"}}"#]
    );
    s.finish().await;
}

#[tokio::test]
async fn avatar_then_portraits_embedded_sqlite_local_folder() {
    happy_path(QueueKind::Sqlite, Store::Local).await;
}

#[tokio::test]
async fn avatar_then_portraits_postgres_s3() {
    happy_path(QueueKind::Postgres, Store::S3).await;
}

/// A ready avatar for `s`, trained on generated photos.
async fn ready_avatar(s: &Shop, credits: i64) -> String {
    s.ledger
        .add(USER, Kind::Grant, credits, "test", "grant-ready")
        .await
        .unwrap();
    let photos = s.photos(10).await;
    let id = s.train(photos).await;
    s.w.wait_for(&id, "succeeded").await;
    id
}

#[tokio::test]
async fn bad_photos_are_reported_one_by_one_and_the_run_waits_for_replacements() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    s.ledger
        .add(USER, Kind::Grant, 200, "test", "g")
        .await
        .unwrap();
    let mut photos = s.photos(12).await;
    photos[2] = s.upload(aisha_sim::photos::photo(300, 400, 99)).await;
    photos[4] = photos[0].clone();
    photos[6] = s.upload(b"definitely not a photo".to_vec()).await;
    let run = s.train(photos).await;
    s.w.wait_for(&run, "waiting").await;
    let rows = s.outbox.list(Some(USER), 10).await.unwrap();
    assert_eq!(rows[0].kind, "photos_rejected_1");
    let Ok(Payload::Notice(Notice::PhotosRejected { round, rejected })) =
        Payload::decode(&rows[0].payload)
    else {
        panic!("not a notice of refused photos: {}", rows[0].payload);
    };
    let refused: Vec<(usize, PhotoProblem)> =
        rejected.into_iter().map(|r| (r.photo, r.problem)).collect();
    assert_eq!(round, 1);
    assert_eq!(
        refused,
        [
            (
                3,
                PhotoProblem::TooSmall {
                    width: 300,
                    height: 400,
                    min: 512
                }
            ),
            (5, PhotoProblem::Duplicate { of: 1 }),
            (7, PhotoProblem::NotAnImage),
        ]
    );
    assert_eq!(
        s.ledger.balance(USER).await.unwrap(),
        200,
        "nothing charged for a refused set"
    );

    let mut replace = BTreeMap::new();
    for (n, seed) in [(3usize, 50u8), (5, 51), (7, 52)] {
        replace.insert(n, s.upload(aisha_sim::photos::photo(700, 700, seed)).await);
    }
    avatar::replace_photos(&s.w.engine, &run, 1, &replace)
        .await
        .unwrap();
    s.w.wait_for(&run, "succeeded").await;
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 50);
    s.finish().await;
}

/// A photo that is not in the blob store will not appear by trying again: the training fails
/// on its first attempt instead of retrying it eight times.
#[tokio::test]
async fn a_missing_photo_fails_the_training_at_once() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    s.ledger
        .add(USER, Kind::Grant, 200, "test", "g")
        .await
        .unwrap();
    let mut photos = s.photos(10).await;
    photos[4] = BlobKey::new(&["uploads", "never-stored"]).unwrap();
    let run = s.train(photos).await;
    let done = s.w.wait_for(&run, "failed").await;
    let validations = done
        .timeline
        .iter()
        .filter(|t| t.step == "validate")
        .count();
    assert_eq!(validations, 1, "{:#?}", done.timeline);
    assert!(
        done.run
            .error
            .unwrap_or_default()
            .contains("no blob uploads/never-stored")
    );
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 200);
    assert_eq!(s.kinds().await, ["avatar_failed"]);
    s.finish().await;
}

#[tokio::test]
async fn fal_error_refunds_and_tells_the_user() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    let avatar_id = ready_avatar(&s, 200).await;
    s.w.sim.push_faults([vec![Fault::Error]]);
    let run = s.order(&avatar_id, Choice::Style("anime"), 4).await;
    let done = s.w.wait_for(&run, "failed").await;
    assert!(
        done.run
            .error
            .unwrap_or_default()
            .contains("fault injected")
    );
    assert_eq!(
        s.ledger.balance(USER).await.unwrap(),
        50,
        "the 20 reserved came back"
    );
    assert_eq!(s.kinds().await, ["avatar_ready", "portrait_failed"]);
    s.finish().await;
}

#[tokio::test]
async fn nsfw_images_are_withheld_and_refunded() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    let avatar_id = ready_avatar(&s, 200).await;
    s.w.sim.push_faults([vec![Fault::Nsfw]]);
    let run = s
        .order(&avatar_id, Choice::Prompt("on a beach", Aspect::Square), 2)
        .await;
    let done = s.w.wait_for(&run, "succeeded").await;
    assert_eq!(done.state["stored"].as_array().unwrap().len(), 1);
    assert_eq!(done.state["withheld"], 1);
    assert_eq!(
        s.ledger.balance(USER).await.unwrap(),
        45,
        "one image of 5 charged"
    );
    let rows = s.outbox.list(Some(USER), 10).await.unwrap();
    assert!(
        matches!(
            Payload::decode(&rows[0].payload),
            Ok(Payload::Notice(Notice::PortraitsReady { ref images, withheld: 1, refunded: 5 }))
                if images.len() == 1
        ),
        "{}",
        rows[0].payload
    );
    s.finish().await;
}

#[tokio::test]
async fn not_enough_credits_fails_before_anything_is_submitted() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    s.ledger
        .add(USER, Kind::Grant, 100, "test", "g")
        .await
        .unwrap();
    let photos = s.photos(10).await;
    let run = s.train(photos).await;
    let done = s.w.wait_for(&run, "failed").await;
    assert!(
        done.run
            .error
            .unwrap_or_default()
            .contains("not enough credits: 150 needed, 100 available")
    );
    assert_eq!(s.w.sim.submits(), 0);
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 100);
    assert_eq!(s.kinds().await, ["avatar_failed"]);
    s.finish().await;
}

#[tokio::test]
async fn no_callback_the_poll_delivers() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    let avatar_id = ready_avatar(&s, 200).await;
    s.w.sim.push_faults([vec![Fault::NoCallback]]);
    let run = s.order(&avatar_id, Choice::Style("business"), 1).await;
    let done = s.w.wait_for(&run, "succeeded").await;
    assert_eq!(done.state["stored"].as_array().unwrap().len(), 1);
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 45);
    s.finish().await;
}

#[tokio::test]
async fn regenerate_is_a_new_run_linked_to_the_old_one() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    let avatar_id = ready_avatar(&s, 200).await;
    let first = s
        .order_seeded(&avatar_id, Choice::Style("fairytale"), 1, Some(7))
        .await;
    s.w.wait_for(&first, "succeeded").await;
    let again = portrait::regenerate(&s.w.engine, &first, None)
        .await
        .unwrap();
    assert!(again.created && again.run_id != first);
    let done = s.w.wait_for(&again.run_id, "succeeded").await;
    assert_eq!(done.parent_run_id.as_deref(), Some(first.as_str()));
    assert_eq!(done.state["style"], "fairytale");
    assert!(done.state["seed"].is_null(), "a new seed");
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 40);
    s.finish().await;
}

#[tokio::test]
async fn duplicate_callbacks_one_delivery_one_charge() {
    let s = shop(QueueKind::Postgres, Store::Local, fast_sim()).await;
    let avatar_id = ready_avatar(&s, 200).await;
    s.w.sim.push_faults([vec![Fault::Duplicate]]);
    let run = s.order(&avatar_id, Choice::Style("cinematic"), 3).await;
    s.w.wait_for(&run, "succeeded").await;
    // The second delivery must really have reached us (and been answered as a duplicate),
    // or this test would pass without testing anything.
    let t0 = std::time::Instant::now();
    while s
        .w
        .metric("aisha_callbacks_received_total", &["outcome=\"duplicate\""])
        < 1.0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the simulator's duplicate callback never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.gallery.count_of_run(&run).await.unwrap(), 3);
    let told = s.outbox.list(Some(USER), 100).await.unwrap();
    assert_eq!(told.iter().filter(|r| r.kind == "portraits").count(), 1);
    assert_eq!(s.ledger.balance(USER).await.unwrap(), 35);
    assert_eq!(s.w.sim.submits(), 2, "one training, one generation");
    s.finish().await;
}
