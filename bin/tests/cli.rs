//! The binary as operators use it: embedded default, admin commands with --json, probes and
//! metrics over real HTTP, configuration errors.

mod common;

use std::time::{Duration, Instant};

use common::{Dir, aisha, json, spawn_announcing};

#[tokio::test]
async fn embedded_default_runs_and_reports() {
    let dir = Dir::new();
    let started = json(&aisha(
        &dir,
        &[
            "admin",
            "runs",
            "start",
            "noop3",
            "--input",
            r#"{"step_ms": 1}"#,
            "--subject",
            "42",
            "--json",
        ],
        &[],
    ));
    let id = started["run_id"].as_str().unwrap().to_string();
    assert_eq!(started["created"], true);
    assert!(
        dir.0.join("data/aisha.db").exists(),
        "no configuration means SQLite under ./data"
    );

    let (server, at) = spawn_announcing(
        &dir,
        &["serve"],
        &[("HTTP_BIND", "127.0.0.1:0"), ("ADMIN_BIND", "127.0.0.1:0")],
        &["HTTP_BIND", "ADMIN_BIND"],
    );
    let (bind, admin) = (&at["HTTP_BIND"], &at["ADMIN_BIND"]);
    let http = reqwest::Client::new();
    let base = format!("http://{bind}");
    let t0 = Instant::now();
    loop {
        let done = aisha(&dir, &["admin", "runs", "show", &id, "--json"], &[]);
        let d = json(&done);
        if d["status"] == "succeeded" {
            assert_eq!(d["subject"], "42");
            let steps: Vec<&str> = d["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["step"].as_str().unwrap())
                .collect();
            assert_eq!(steps, ["one", "two", "three"]);
            for key in [
                "id",
                "workflow",
                "status",
                "step",
                "attempts",
                "subject",
                "created_at",
                "updated_at",
            ] {
                assert!(d.get(key).is_some(), "show --json lacks {key}");
            }
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "run did not finish: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = json(&aisha(
        &dir,
        &["admin", "runs", "list", "--status", "succeeded", "--json"],
        &[],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let queues = json(&aisha(&dir, &["admin", "queues", "--json"], &[]));
    let names: Vec<&str> = queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "aisha.avatar_training",
            "aisha.fal_probe",
            "aisha.noop3",
            "aisha.portrait_generation",
            "aisha.portrait_upscale"
        ]
    );

    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "aisha_runs{",
        "aisha_queue_tasks{",
        "aisha_build_info{",
        "aisha_oldest_pending_seconds{",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    assert!(
        metrics.contains(r#"aisha_runs{status="succeeded",workflow="noop3"} 1"#),
        "{metrics}"
    );
    drop(server);
}

#[test]
fn unknown_run_is_an_error() {
    let dir = Dir::new();
    let out = aisha(
        &dir,
        &["admin", "runs", "show", "does-not-exist", "--json"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run with id `does-not-exist`"));
    let out = aisha(&dir, &["admin", "runs", "retry", "does-not-exist"], &[]);
    assert!(!out.status.success());
    let out = aisha(
        &dir,
        &["admin", "runs", "start", "nope", "--input", "{}"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workflow `nope`"));
    let out = aisha(
        &dir,
        &["admin", "runs", "start", "noop3", "--input", "not json"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input"));
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let dir = Dir::new();
    let out = aisha(&dir, &["serve"], &[("QUEUE_BACKEND", "kafka")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("QUEUE_BACKEND") && err.contains("postgres, redis, sqlite"),
        "{err}"
    );
    let out = aisha(
        &dir,
        &["worker"],
        &[("DATABASE_URL", "mysql://root:hunter2@db/x")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DATABASE_URL") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn bad_limits_stop_start_up_naming_the_variable_and_the_rule() {
    let dir = Dir::new();
    for (env, var, rule) in [
        (vec![("ADMIN_BIND", "9091")], "ADMIN_BIND", "host:port"),
        (
            vec![
                ("HTTP_BIND", "127.0.0.1:8088"),
                ("ADMIN_BIND", "0.0.0.0:8088"),
            ],
            "ADMIN_BIND",
            "a port other than HTTP_BIND's",
        ),
        (vec![("MAX_GRANT", "0")], "MAX_GRANT", "from 1 to"),
        (
            vec![("MAX_GRANT", "lots")],
            "MAX_GRANT",
            "whole number of credits",
        ),
        (
            vec![("MAX_GRANT", "5000"), ("MAX_BALANCE", "4999")],
            "MAX_BALANCE",
            "from MAX_GRANT (5000)",
        ),
        (
            vec![("MAX_BALANCE", "9223372036854775807")],
            "MAX_BALANCE",
            "to 1000000000000000",
        ),
        (
            vec![("HTTP_READ_TIMEOUT_SECS", "0")],
            "HTTP_READ_TIMEOUT_SECS",
            "from 1 to 300",
        ),
        (
            vec![("HTTP_IDLE_TIMEOUT_SECS", "soon")],
            "HTTP_IDLE_TIMEOUT_SECS",
            "seconds",
        ),
        (
            vec![("HTTP_MAX_CONNECTIONS", "2")],
            "HTTP_MAX_CONNECTIONS",
            "from 16 to 100000",
        ),
        (vec![("FAL_USER_ID", "a b")], "FAL_USER_ID", "no spaces"),
        (
            vec![("PRICE_UPSCALE", "0")],
            "PRICE_UPSCALE",
            "from 1 to 1000000",
        ),
        (
            vec![("PRICE_UPSCALE", "cheap")],
            "PRICE_UPSCALE",
            "whole number of credits",
        ),
        (
            vec![("FAL_UPSCALE_APP", "esrgan")],
            "FAL_UPSCALE_APP",
            "a FAL app id",
        ),
        (
            vec![
                ("TELEGRAM_BOT_TOKEN", "123456:ABCDEFGH-test"),
                ("MAX_GRANT", "100"),
                ("TELEGRAM_STAR_PACKS", "50:10,500:100"),
            ],
            "TELEGRAM_STAR_PACKS",
            "at most MAX_GRANT (100)",
        ),
    ] {
        let out = aisha(&dir, &["serve"], &env);
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && err.contains(rule), "{env:?}: {err}");
    }
}
