//! The admin HTTP API over a real socket, on the private listener (`ADMIN_BIND`): token
//! checks, every endpoint, errors, bounded grants, and what the log makes of hostile ids.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "test-admin-token-0123456789";

struct Server {
    child: std::process::Child,
    dir: std::path::PathBuf,
    /// The public listener (`HTTP_BIND`).
    public: String,
    /// What the process wrote to stderr (its log).
    log: std::path::PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_aisha"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `aisha serve` (text log at info) plus `env`; returns it and the private listener's URL.
async fn serve(env: &[(&str, &str)]) -> (Server, String) {
    let dir = std::env::temp_dir().join(format!("aisha-admin-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aisha"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HTTP_BIND", "127.0.0.1:0")
        .env("ADMIN_BIND", "127.0.0.1:0")
        .env("ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "info,sqlx=warn,apalis=warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let at = common::announcements(&mut child, &["HTTP_BIND", "ADMIN_BIND"]);
    let (public, base) = (
        format!("http://{}", at["HTTP_BIND"]),
        format!("http://{}", at["ADMIN_BIND"]),
    );
    let t0 = Instant::now();
    while reqwest::get(format!("{public}/health")).await.is_err()
        || reqwest::get(format!("{base}/metrics")).await.is_err()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server = Server {
        child,
        dir,
        public,
        log,
    };
    (server, base)
}

#[tokio::test]
async fn admin_api() {
    let (server, base) = serve(&[]).await;
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // Without the right token: 401 and nothing else.
    for token in [None, Some("wrong"), Some("test-admin-token-012345678")] {
        let r = get("/admin/runs", token).await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            serde_json::json!({"error": "unauthorized"})
        );
    }
    let r = http
        .post(format!("{base}/admin/queues/noop3/requeue-dead"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A long run to look at and cancel, a short one to see finished.
    let long = cli(
        &server.dir,
        &[
            "admin",
            "runs",
            "start",
            "noop3",
            "--input",
            r#"{"step_ms": 3000}"#,
            "--subject",
            "7",
            "--json",
        ],
    );
    let long = long["run_id"].as_str().unwrap().to_string();
    let short = cli(
        &server.dir,
        &["admin", "runs", "start", "noop3", "--input", "{}", "--json"],
    );
    let short = short["run_id"].as_str().unwrap().to_string();

    let t0 = Instant::now();
    loop {
        let d: Value = get(&format!("/admin/runs/{short}"), Some(TOKEN))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["status"] == "succeeded" {
            assert_eq!(d["timeline"].as_array().unwrap().len(), 3);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs: Value = get("/admin/runs?subject=7", Some(TOKEN))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["id"], long.as_str());
    let r = get("/admin/runs?status=bogus", Some(TOKEN)).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = get("/admin/runs/nope", Some(TOKEN)).await.unwrap();
    assert_eq!(r.status(), 404);

    let post = |path: String| http.post(format!("{base}{path}")).bearer_auth(TOKEN).send();
    let r = post(format!("/admin/runs/{short}/retry")).await.unwrap();
    assert_eq!(r.status(), 409, "only failed runs can be retried");
    let r = post(format!("/admin/runs/{long}/cancel")).await.unwrap();
    assert_eq!(r.status(), 200);
    let t0 = Instant::now();
    loop {
        let d: Value = get(&format!("/admin/runs/{long}"), Some(TOKEN))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["status"] == "cancelled" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = post(format!("/admin/runs/{long}/cancel")).await.unwrap();
    assert_eq!(r.status(), 409);

    let q: Value = get("/admin/queues", Some(TOKEN))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["queue"].as_str().unwrap())
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
    let r: Value = post("/admin/queues/noop3/requeue-dead".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["requeued"], 0);
    let r = post("/admin/queues/nope/requeue-dead".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Credits: without the token nothing; a keyed grant applies once; nonsense is a 400.
    let credits = format!("{base}/admin/users/tg-77/credits");
    let grant = serde_json::json!({"amount": 50, "reason": "goodwill", "key": "ticket-9"});
    let r = http.post(&credits).json(&grant).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for applied in ["new", "already"] {
        let r: Value = http
            .post(&credits)
            .bearer_auth(TOKEN)
            .json(&grant)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            r,
            serde_json::json!({"user_id": "tg-77", "applied": applied, "balance": 50})
        );
    }
    for bad in [
        serde_json::json!({"amount": 0, "reason": "x"}),
        serde_json::json!({"amount": 5, "reason": " "}),
        serde_json::json!({"amount": "lots"}),
    ] {
        let r = http
            .post(&credits)
            .bearer_auth(TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"aisha_credits_total{kind="granted"} 50"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"aisha_http_requests_total{method="POST",route="/admin/users/{id}/credits",status="401"} 1"#), "{metrics}");
}

/// The operator's surfaces are not on the public listener at all, whatever the token.
#[tokio::test]
async fn admin_and_metrics_are_absent_on_http_bind() {
    let (server, base) = serve(&[]).await;
    let http = reqwest::Client::new();
    for path in ["/metrics", "/admin/runs", "/admin/queues"] {
        let r = http
            .get(format!("{}{path}", server.public))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on HTTP_BIND");
    }
    let r = http
        .post(format!("{}/admin/users/u1/credits", server.public))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"amount": 5, "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{base}/admin/runs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "on ADMIN_BIND");
    for path in ["/health", "/ready"] {
        assert_eq!(
            reqwest::get(format!("{}{path}", server.public))
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

/// The probe's pair — the largest i64, then 1 — is refused naming the bound, the balance is
/// unchanged, and `/metrics` answers after it.
async fn overflowing_grants(env: &[(&str, &str)]) {
    let (_server, base) = serve(env).await;
    let http = reqwest::Client::new();
    let credits = format!("{base}/admin/users/tg-9/credits");
    let grant = |amount: i64, key: &str| {
        http.post(&credits)
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"amount": amount, "reason": "probe", "key": key}))
            .send()
    };
    let r: Value = grant(40, "first").await.unwrap().json().await.unwrap();
    assert_eq!(r["balance"], 40);
    for (amount, key) in [(i64::MAX, "max"), (1_000_001, "one-over")] {
        let r = grant(amount, key).await.unwrap();
        assert_eq!(r.status(), 400, "{amount}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("MAX_GRANT (1000000)"),
            "{body}"
        );
    }
    // Up to MAX_BALANCE (a second bound) and no further.
    for i in 0..100 {
        let r = grant(1_000_000, &format!("fill-{i}")).await.unwrap();
        if r.status() == 400 {
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("MAX_BALANCE"),
                "{body}"
            );
            assert_eq!(i, 99, "MAX_BALANCE is 100,000,000: 40 + 99 × 1,000,000 fit");
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let r = grant(1, "then-one").await.unwrap();
    let balance: Value = r.json().await.unwrap();
    assert_eq!(balance["balance"], 99_000_041, "{balance}");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"aisha_credits_total{kind="granted"} 99000041"#),
        "{text}"
    );
}

#[tokio::test]
async fn overflowing_grants_are_refused_sqlite() {
    overflowing_grants(&[]).await;
}

#[tokio::test]
async fn overflowing_grants_are_refused_postgres() {
    let db = aisha_engine::testkit::TestDb::new(aisha_engine::QueueKind::Postgres).await;
    overflowing_grants(&[("DATABASE_URL", db.url.as_str())]).await;
    db.drop_db().await;
}

/// A run id with a URL-encoded newline is one log line, the id escaped inside it.
#[tokio::test]
async fn a_hostile_run_id_cannot_forge_a_log_line() {
    let (server, base) = serve(&[]).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!(
            "{base}/admin/runs/r1%0A2026-12-04T00:00:00Z%20INFO%20forged/cancel"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let t0 = Instant::now();
    let line = loop {
        let log = server.log();
        if let Some(l) = log.lines().find(|l| l.contains("action=\"cancel\"")) {
            break l.to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        line.contains(r"r1\n2026-12-04T00:00:00Z INFO forged"),
        "{line}"
    );
    let log = server.log();
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-04T00:00:00Z")),
        "{log}"
    );
}
