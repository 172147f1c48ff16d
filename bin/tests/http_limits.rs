//! The public listener's limits over real sockets, against the real webhook routes: a
//! slow-body attack of a couple of hundred connections is cut within the read timeout while
//! FAL's callbacks keep being answered, and a declared body over the route's limit is a 413
//! before a byte of it is read.

mod common;

use std::time::{Duration, Instant};

use aisha_engine::QueueKind;
use aisha_http::HttpLimits;
use common::world::{World, fast_sim, start_probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slow connections held open at once.
const ATTACKERS: usize = 200;

fn head(method: &str, path: &str, length: u64) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// Sends a head declaring 1000 bytes, then one byte a second; returns how long the server
/// kept the connection, and what it said (if anything) before closing it.
async fn slow_body(addr: std::net::SocketAddr, path: &'static str) -> (Duration, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head("POST", path, 1000).as_bytes())
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // Bounded: the test fails rather than hangs if the server never cuts us off.
    while t0.elapsed() < Duration::from_secs(60) {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (t0.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_attack_is_cut_while_callbacks_are_answered() {
    let w = World::start(QueueKind::Sqlite, fast_sim(), |b, _| b).await;
    let addr = w.server.addr;
    let attack: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/webhook/fal/status"
            } else {
                "/webhook/telegram"
            };
            tokio::spawn(slow_body(addr, path))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Under attack, FAL's signed callback (sent by the simulator on its own connection) is
    // taken and resolves the run; the Telegram route answers too.
    let run = start_probe(&w, 600).await;
    w.wait_for(&run, "succeeded").await;
    let telegram = reqwest::Client::new()
        .post(format!("{}/webhook/telegram", w.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(telegram.status(), 404, "answered: no bot in this process");

    let limit = HttpLimits::default().read_timeout;
    for a in attack {
        let (held, answer) = a.await.unwrap();
        assert!(
            held < limit + Duration::from_secs(5),
            "a slow body held a connection {held:?} (read timeout {limit:?}): {answer}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 404"),
            "{answer}"
        );
    }
    assert_eq!(
        w.metric("aisha_callbacks_received_total", &["outcome=\"too_slow\""]),
        (ATTACKERS / 2) as f64
    );
    w.finish().await;
}

#[tokio::test]
async fn a_declared_10_gb_body_is_refused_at_once() {
    let w = World::start(QueueKind::Sqlite, fast_sim(), |b, _| b).await;
    for (method, path) in [
        ("POST", "/webhook/fal/status"),
        ("POST", "/webhook/fal/portrait"),
        ("POST", "/webhook/telegram"),
        ("GET", "/ready"),
    ] {
        let mut s = TcpStream::connect(w.server.addr).await.unwrap();
        s.write_all(head(method, path, 10_737_418_240).as_bytes())
            .await
            .unwrap();
        s.write_all(b"0123456789").await.unwrap();
        // Bounded wait: "at once" is long before the 10 s read timeout.
        let mut answer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
            .await
            .expect("no answer within 5 s")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(
            answer.to_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    w.finish().await;
}
