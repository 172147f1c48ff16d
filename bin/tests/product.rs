//! The product through the binary: `aisha demo` end to end (an upscale included), and a worker killed with SIGKILL
//! between submitting to FAL and FAL's callback — the run completes, FAL was asked once, the
//! user was charged once.

mod common;

use aisha_blob::local::LocalBlobStore;
use aisha_engine::testkit::TestDb;
use aisha_engine::{Db, QueueKind};
use aisha_workflows::blob::{BlobKey, BlobStore};
use aisha_workflows::outbox::Outbox;
use common::{Dir, aisha, json, spawn, spawn_announcing, until_up, wait_for_run};
use serde_json::Value;

#[test]
fn demo_trains_an_avatar_and_writes_portraits() {
    let dir = Dir::new();
    let out = aisha(&dir, &["demo"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "bot   › Привет",
        "Аватар «Demo» готов",
        "[2 image(s)]",
        "summary",
        "credits: granted 300, spent 173, balance 127",
        "callback received → images stored",
        "5. upscales the first oil portrait ×2",
        "Готово: портрет ×2, 1536×2048",
        "data/demo/portraits/oil-1-upscaled.jpg",
    ] {
        assert!(stdout.contains(line), "demo output lacks {line}:\n{stdout}");
    }
    let folder = dir.0.join("data/demo/portraits");
    let portraits: Vec<_> = std::fs::read_dir(&folder).unwrap().flatten().collect();
    assert_eq!(portraits.len(), 5);
    for p in portraits {
        let img = image::open(p.path()).unwrap();
        assert!(img.width() >= 576 && img.height() >= 576);
    }
    // The upscaled portrait beside its original, twice as wide and as high.
    let original = image::open(folder.join("oil-1.jpg")).unwrap();
    let upscaled = image::open(folder.join("oil-1-upscaled.jpg")).unwrap();
    assert_eq!(
        (upscaled.width(), upscaled.height()),
        (original.width() * 2, original.height() * 2)
    );
}

fn start(dir: &Dir, env: &[(&str, &str)], workflow: &str, input: &str) -> String {
    let v = json(&aisha(
        dir,
        &[
            "admin",
            "runs",
            "start",
            workflow,
            "--input",
            input,
            "--subject",
            "u1",
            "--json",
        ],
        env,
    ));
    v["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn worker_killed_between_submit_and_callback() {
    let db = TestDb::new(QueueKind::Postgres).await;
    let dir = Dir::new();
    let (_sim, sim) = spawn_announcing(
        &dir,
        &["sim-fal", "--bind", "127.0.0.1:0", "--delay-ms", "1500"],
        &[],
        &["FAL_QUEUE_URL", "FAL_JWKS_URL"],
    );
    let (sim_url, jwks) = (&sim["FAL_QUEUE_URL"], &sim["FAL_JWKS_URL"]);
    until_up(jwks).await;
    let data = dir.0.join("data");
    let data_s = data.display().to_string();
    let mut env = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("DATA_DIR", data_s.as_str()),
        ("FAL_KEY", "k"),
        ("FAL_QUEUE_URL", sim_url.as_str()),
        ("FAL_JWKS_URL", jwks.as_str()),
        ("WEBHOOK_SECRET", "crash-test-webhook-secret-0123456789"),
    ];
    let (mut server, at) = spawn_announcing(
        &dir,
        &["serve"],
        &[env.as_slice(), &[("HTTP_BIND", "127.0.0.1:0")]].concat(),
        &["HTTP_BIND"],
    );
    // The restarted server below must listen where the first one did: FAL's callback for
    // the job in flight names this address. Every later command gets it.
    let bind = at["HTTP_BIND"].clone();
    env.push(("HTTP_BIND", bind.as_str()));
    until_up(&format!("http://{bind}/ready")).await;
    json(&aisha(
        &dir,
        &[
            "admin", "credits", "grant", "u1", "300", "--reason", "test", "--json",
        ],
        &env,
    ));
    let blobs = LocalBlobStore::new(&data.join("blobs"), "http://unused", b"unused").unwrap();
    let mut photos = Vec::new();
    for i in 0..10u8 {
        let key = BlobKey::new(&["uploads", &format!("p{i}.png")]).unwrap();
        let png = aisha_sim::photos::photo(600, 700, i);
        blobs.put(&key, png.into(), "image/png").await.unwrap();
        photos.push(key);
    }
    let input =
        serde_json::json!({"user_id": "u1", "name": "A", "photos": photos, "preset": "fast"})
            .to_string();
    let avatar = start(&dir, &env, "avatar_training", &input);
    wait_for_run(&dir, &avatar, "succeeded", &env).await;

    let order =
        serde_json::json!({"user_id": "u1", "avatar_id": avatar, "style": "oil", "count": 2})
            .to_string();
    let run = start(&dir, &env, "portrait_generation", &order);
    wait_for_run(&dir, &run, "waiting", &env).await;
    // FAL has the job; its callback is 1.5 s away. The whole process dies.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    // On the first server's address (in `env`), where FAL will call back.
    server = spawn(&dir, &["serve"], &env);
    let done = wait_for_run(&dir, &run, "succeeded", &env).await;
    assert_eq!(done["state"]["stored"].as_array().unwrap().len(), 2);

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let one = |sql: &'static str| {
        let pool = pool.clone();
        let run = run.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(run)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        one("SELECT COUNT(*) FROM fal_submissions WHERE run_id = $1").await,
        1
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM credit_ledger WHERE run_id = $1 AND kind = 'capture'").await,
        1
    );
    let told = Outbox::new(Db::Postgres(pool.clone()))
        .list(Some("u1"), 100)
        .await
        .unwrap();
    assert_eq!(
        told.iter()
            .filter(|r| r.run_id == run && r.kind == "portraits")
            .count(),
        1
    );
    let requests: Value = reqwest::get(format!("{sim_url}/_sim/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generations = requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["app"] == "fal-ai/flux-lora")
        .count();
    assert_eq!(generations, 1, "FAL was asked once: {requests}");
    let balance = json(&aisha(
        &dir,
        &["admin", "credits", "balance", "u1", "--json"],
        &env,
    ));
    assert_eq!(balance["balance"], 300 - 150 - 10);
    pool.close().await;
    drop(server);
    db.drop_db().await;
}
