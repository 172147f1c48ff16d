//! Keeps a background loop alive for as long as the process lives: a loop that returns an
//! error, ends on its own or panics is started again after a jittered exponential backoff
//! (capped at 10 s), and its state is kept in [`Health`] for `/ready` and the metrics.
//!
//! An outage is logged twice: a warning when the loop first stops and a note when it has run
//! again for [`STABLE_AFTER`]; the restarts in between are only debug lines (and counted).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::health::{Health, LoopName};
use crate::retry_policy::RetryPolicy;

/// A loop that has run this long without stopping counts as recovered (its backoff starts
/// over).
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Backoff between restarts: from 250 ms doubling to 10 s, each a random point in
/// `[cap/2, cap]`. The cap is what a loop may lag behind its backend's return; a restart that
/// fails costs one refused connection, so 10 s is cheap.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn backoff() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(250), MAX_BACKOFF)
}

/// Why a generation of a loop stopped, in our words (what `/ready` shows).
const ERRORED: &str = "stopped with an error; restarting";
const ENDED: &str = "ended unexpectedly; restarting";
const PANICKED: &str = "panicked; restarting";

/// Runs `generation(n)` for n = 0, 1, 2, … until `stop` is true. Each generation is one life
/// of the loop: it returns `Ok` when its work is over for good (its input closed, or `stop`),
/// and an error when it cannot go on (then it is started again); a panic counts as an error.
/// [`unless_stopped`] turns "a loop that should never end just ended" into that error.
pub async fn supervise<F, Fut>(
    health: Health,
    name: LoopName,
    mut stop: watch::Receiver<bool>,
    mut generation: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let policy = backoff();
    let mut failures: i64 = 0;
    let mut outage: Option<Instant> = None;
    for n in 0.. {
        if *stop.borrow() {
            break;
        }
        health.up(&name);
        let life = AssertUnwindSafe(generation(n)).catch_unwind();
        tokio::pin!(life);
        let stable = tokio::time::sleep(STABLE_AFTER);
        tokio::pin!(stable);
        let mut marked_stable = false;
        let result = loop {
            tokio::select! {
                r = &mut life => break r,
                _ = &mut stable, if !marked_stable => {
                    marked_stable = true;
                    failures = 0;
                    if let Some(since) = outage.take() {
                        info!(%name, down_for = ?since.elapsed(), "background loop recovered");
                    }
                }
            }
        };
        if *stop.borrow() {
            break;
        }
        let (reason, detail) = match result {
            Ok(Ok(())) => break,
            Ok(Err(e)) if e == ENDED_TEXT => (ENDED, e),
            Ok(Err(e)) => (ERRORED, e),
            Err(panic) => (PANICKED, panic_text(&panic)),
        };
        health.down(&name, reason);
        health.restarted(&name);
        failures += 1;
        let wait = policy.backoff_for(failures + 1);
        if outage.is_none() {
            outage = Some(Instant::now());
            warn!(%name, error = %detail, retry_in = ?wait, "background loop stopped; restarting it with backoff");
        } else {
            debug!(%name, error = %detail, retry_in = ?wait, "background loop stopped again");
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    health.gone(&name);
}

const ENDED_TEXT: &str = "the loop ended on its own";

/// For a loop that ends only when `stop` is set: `Ok` if it was, an error otherwise.
pub fn unless_stopped(stop: &watch::Receiver<bool>) -> Result<(), String> {
    if *stop.borrow() {
        Ok(())
    } else {
        Err(ENDED_TEXT.to_string())
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn restarts_a_failing_loop_until_it_holds_then_stops_on_request() {
        let health = Health::default();
        let (stop_tx, stop) = watch::channel(false);
        let lives = Arc::new(AtomicU64::new(0));
        let name = LoopName::Background("probe");
        let task = {
            let (health, lives, name) = (health.clone(), lives.clone(), name.clone());
            let own_stop = stop.clone();
            tokio::spawn(supervise(health, name, stop, move |n| {
                lives.fetch_add(1, Ordering::SeqCst);
                // A life ends on `stop` by itself: the supervisor waits for it (a graceful
                // shutdown is the life's to do), it does not cut it off.
                let mut own_stop = own_stop.clone();
                async move {
                    match n {
                        0 => Err("first life fails".to_string()),
                        1 => panic!("second life panics"),
                        2 => unless_stopped(&watch::channel(false).1),
                        _ => {
                            let _ = own_stop.wait_for(|s| *s).await;
                            Ok(())
                        }
                    }
                }
            }))
        };
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(
            lives.load(Ordering::SeqCst),
            4,
            "three stops, then a life that holds"
        );
        let snap = health.snapshot();
        assert_eq!(snap.len(), 1);
        assert!(snap[0].1.up);
        assert_eq!(snap[0].1.restarts, 3);
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(health.snapshot().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_whose_work_is_over_is_not_restarted() {
        let health = Health::default();
        let (_stop_tx, stop) = watch::channel(false);
        let lives = Arc::new(AtomicU64::new(0));
        let l = lives.clone();
        supervise(
            health.clone(),
            LoopName::Background("once"),
            stop,
            move |_| {
                l.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            },
        )
        .await;
        assert_eq!(lives.load(Ordering::SeqCst), 1);
        assert!(health.snapshot().is_empty());
    }
}
