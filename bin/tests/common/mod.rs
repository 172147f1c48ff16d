//! What the binary's tests share: a scratch directory, running `aisha` with a clean
//! environment, and child processes that die with the test.

#![allow(dead_code)]

pub mod world;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
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

/// `aisha ARGS` in `dir` with a clean environment plus `env`, its output discarded.
fn background(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Command {
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
    c
}

/// Starts `aisha ARGS` in the background with a clean environment plus `env`.
pub fn spawn(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Server {
    Server(background(dir, args, env).spawn().unwrap())
}

/// [`spawn`], then waits until the process announced each of `keys` on stdout (`KEY=value`,
/// as `serve`, `worker`, `webhook`, `bot` and the simulators print the addresses they bound):
/// with port 0 in their binds, that is how a test learns where they listen, without picking
/// a free port and letting go of it for another process to take.
pub fn spawn_announcing(
    dir: &Dir,
    args: &[&str],
    env: &[(&str, &str)],
    keys: &[&str],
) -> (Server, HashMap<String, String>) {
    let mut c = background(dir, args, env);
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let announced = announcements(&mut child, keys);
    (Server(child), announced)
}

/// Reads `child`'s piped stdout until each of `keys` was announced as `KEY=value`; kills it
/// and panics with what it saw when that takes over 30 s or the process ends first. The
/// stdout is read on until the process ends: a pipe closed under it would make its later
/// output fail.
pub fn announcements(child: &mut Child, keys: &[&str]) -> HashMap<String, String> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Once every key was found nobody listens any more; reading on is the point.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut found = HashMap::new();
    while let Some(missing) = keys.iter().find(|k| !found.contains_key(**k)) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some((k, v)) = line.split_once('=')
                    && keys.contains(&k)
                {
                    found.insert(k.to_string(), v.to_string());
                }
                seen.push(line);
            }
            Err(e) => {
                let status = child.try_wait();
                // The caller has not wrapped it in a `Server` yet: nothing else would stop it.
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "aisha did not announce {missing} ({e}; exit status: {status:?}); \
                     its stdout: {seen:#?}"
                )
            }
        }
    }
    found
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
