//! The FAL path through the binary: the embedded default (in-process simulator, webhook on
//! localhost), and a split deployment — `aisha sim-fal`, a worker and two stateless
//! `aisha webhook` replicas as separate processes on one Postgres database.

mod common;

use aisha_engine::QueueKind;
use aisha_engine::testkit::TestDb;
use common::{Dir, aisha, json, spawn, spawn_announcing, until_up, wait_for_run};

/// Starts `fal_probe`, waits for it to succeed with a 768×1024 image, and checks that the
/// webhook whose private listener is `admin` counted the callback.
async fn probe_succeeds(dir: &Dir, env: &[(&str, &str)], admin: &str) -> String {
    let id = start_probe(dir, env);
    let done = wait_for_run(dir, &id, "succeeded", env).await;
    assert_eq!(done["state"]["image"]["width"], 768, "{done}");
    assert_eq!(done["state"]["image"]["height"], 1024, "{done}");
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"aisha_callbacks_received_total{outcome="resolved",provider="fal"} 1"#),
        "{admin}: {metrics}"
    );
    metrics
}

fn start_probe(dir: &Dir, env: &[(&str, &str)]) -> String {
    let started = json(&aisha(
        dir,
        &[
            "admin",
            "runs",
            "start",
            "fal_probe",
            "--input",
            r#"{"prompt": "a portrait", "image_size": "portrait_4_3"}"#,
            "--json",
        ],
        env,
    ));
    started["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn embedded_default_goes_through_the_simulator_and_the_webhook() {
    let dir = Dir::new();
    let (_server, at) = spawn_announcing(
        &dir,
        &["serve"],
        &[
            ("HTTP_BIND", "127.0.0.1:0"),
            ("ADMIN_BIND", "127.0.0.1:0"),
            ("SIM_FAL_DELAY_MS", "100"),
        ],
        &["HTTP_BIND", "ADMIN_BIND"],
    );
    let (bind, admin) = (&at["HTTP_BIND"], &at["ADMIN_BIND"]);
    // The admin commands get the server's settings, its real addresses included.
    let env = [
        ("HTTP_BIND", bind.as_str()),
        ("ADMIN_BIND", admin.as_str()),
        ("SIM_FAL_DELAY_MS", "100"),
    ];
    let base = format!("http://{bind}");
    until_up(&format!("{base}/ready")).await;
    let metrics = probe_succeeds(&dir, &env, &format!("http://{admin}")).await;
    assert!(
        metrics.contains(
            r#"aisha_fal_requests_total{app="fal-ai/flux-lora",op="submit",status="ok"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn split_deployment_sim_fal_worker_and_two_webhook_replicas() {
    let db = TestDb::new(QueueKind::Postgres).await;
    let dir = Dir::new();
    let (_sim, sim) = spawn_announcing(
        &dir,
        &[
            "sim-fal",
            "--bind",
            "127.0.0.1:0",
            "--key",
            "split-test-key",
            "--delay-ms",
            "100",
        ],
        &[],
        &["FAL_QUEUE_URL", "FAL_JWKS_URL"],
    );
    let (sim_url, jwks) = (&sim["FAL_QUEUE_URL"], &sim["FAL_JWKS_URL"]);
    until_up(jwks).await;
    let common = [
        ("DATABASE_URL", db.url.as_str()),
        ("FAL_KEY", "split-test-key"),
        ("FAL_QUEUE_URL", sim_url.as_str()),
        ("FAL_JWKS_URL", jwks.as_str()),
        ("WEBHOOK_SECRET", "split-test-webhook-secret-0123456789"),
    ];
    assert!(aisha(&dir, &["migrate"], &common).status.success());
    // Each replica: a public address (given to FAL) and a private one (scraped).
    let mut replicas = Vec::new();
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut env = common.to_vec();
        env.push(("ADMIN_BIND", "127.0.0.1:0"));
        let (replica, at) = spawn_announcing(
            &dir,
            &["webhook", "--bind", "127.0.0.1:0"],
            &env,
            &["HTTP_BIND", "ADMIN_BIND"],
        );
        let (public, admin) = (at["HTTP_BIND"].clone(), at["ADMIN_BIND"].clone());
        until_up(&format!("http://{public}/ready")).await;
        running.push(replica);
        replicas.push((public, admin));
    }

    // A worker that tells FAL to call replica A, then one that names replica B.
    for (replica, admin) in &replicas {
        let public = format!("http://{replica}");
        let mut env = common.to_vec();
        env.push(("PUBLIC_URL", public.as_str()));
        let worker = spawn(&dir, &["serve", "--roles", "worker"], &env);
        probe_succeeds(&dir, &env, &format!("http://{admin}")).await;
        drop(worker);
    }
    drop(running);
    db.drop_db().await;
}

#[test]
fn bad_fal_settings_stop_start_up_naming_the_variable() {
    let dir = Dir::new();
    for (var, value) in [
        ("FAL_QUEUE_URL", "queue.fal.run"),
        ("WEBHOOK_SECRET", "short"),
        ("FAL_GENERATOR_APP", "flux lora"),
        ("PUBLIC_URL", "ftp://x"),
    ] {
        let out = aisha(&dir, &["serve"], &[(var, value)]);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}: {err}");
    }
}
