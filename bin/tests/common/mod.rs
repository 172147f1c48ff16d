//! What the binary's tests share: a scratch directory, running `aisha` with a clean
//! environment, and child processes that die with the test.

#![allow(dead_code)]

pub mod world;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Dir(pub std::path::PathBuf);

impl Dir {
    pub fn new() -> Dir {
        let p = std::env::temp_dir().join(format!("aisha-cli-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Processes of parallel tests must not all take the default private port (127.0.0.1:9091):
/// each takes a free one unless the test names one in its `env`.
const ANY_ADMIN_PORT: (&str, &str) = ("ADMIN_BIND", "127.0.0.1:0");

pub fn aisha(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aisha"));
    c.args(args)
        .current_dir(&dir.0)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env(ANY_ADMIN_PORT.0, ANY_ADMIN_PORT.1);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `127.0.0.1:` a port free right now.
pub fn free_bind() -> String {
    format!("127.0.0.1:{}", free_port())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `aisha admin runs show` until the run has `status`.
pub async fn wait_for_run(dir: &Dir, id: &str, status: &str, env: &[(&str, &str)]) -> Value {
    let t0 = Instant::now();
    loop {
        let d = json(&aisha(dir, &["admin", "runs", "show", id, "--json"], env));
        if d["status"] == status {
            return d;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "run {id} is not {status}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `aisha ARGS` in the background with a clean environment plus `env`.
pub fn spawn(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aisha"));
    c.args(args)
        .current_dir(&dir.0)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env(ANY_ADMIN_PORT.0, ANY_ADMIN_PORT.1)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Server(c.spawn().unwrap())
}

/// Waits until `url` answers 2xx.
pub async fn until_up(url: &str) {
    let t0 = Instant::now();
    while reqwest::get(url)
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{url} never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
