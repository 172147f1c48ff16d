//! The admin HTTP API over a real socket: token checks, every endpoint, errors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "test-admin-token-0123456789";

struct Server {
    child: std::process::Child,
    dir: std::path::PathBuf,
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

async fn serve() -> (Server, String) {
    let dir = std::env::temp_dir().join(format!("aisha-admin-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_aisha"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HTTP_BIND", &bind)
        .env("ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{bind}");
    let t0 = Instant::now();
    while reqwest::get(format!("{base}/health")).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Server { child, dir }, base)
}

#[tokio::test]
async fn admin_api() {
    let (server, base) = serve().await;
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
            "aisha.portrait_generation"
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
