//! What a status call with `?logs=1` shows of a job under way, the way FAL shows it: while
//! `IN_QUEUE`, the number of requests ahead of it (which falls as they start); while
//! `IN_PROGRESS`, the runner's log so far, one tqdm line per step as the model prints them.
//! A job spends the first third of its delay queued and the rest running.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{AppKind, SimRequest};

/// Where a job is at `now`.
pub(crate) enum Phase {
    Queued,
    /// The share of the run done, 0.0 to 1.0.
    Running(f64),
}

pub(crate) fn phase(r: &SimRequest, now: Instant) -> Phase {
    let queued = r.delay / 3;
    let elapsed = now.saturating_duration_since(r.submitted);
    if elapsed < queued {
        return Phase::Queued;
    }
    let running = (r.delay - queued).max(Duration::from_millis(1));
    Phase::Running(((elapsed - queued).as_secs_f64() / running.as_secs_f64()).min(1.0))
}

/// Requests submitted before `r` that are still waiting in the queue.
pub(crate) fn queue_position<'a>(
    r: &SimRequest,
    all: impl Iterator<Item = &'a SimRequest>,
    now: Instant,
) -> usize {
    all.filter(|o| {
        o.outcome.is_none()
            && !o.cancelled
            && o.submitted < r.submitted
            && matches!(phase(o, now), Phase::Queued)
    })
    .count()
}

/// The log lines of a run `done` (0.0 to 1.0) of the way through.
pub(crate) fn logs(kind: AppKind, done: f64) -> Vec<Value> {
    let (label, total) = match kind {
        AppKind::Generator => ("Generating", 28),
        AppKind::Upscaler => ("Upscaling tiles", 16),
        AppKind::PortraitTrainer | AppKind::FastTrainer => ("Training", 1000),
    };
    let steps = (done * total as f64).floor() as u64;
    let mut lines = vec![line(&format!("{label}: starting, {total} steps"))];
    // One line per tenth at most, as FAL's log buffering shows a long tqdm run.
    let every = (total / 10).max(1);
    lines.extend(
        (1..=steps)
            .filter(|s| s % every == 0 || *s == steps)
            .map(|s| line(&tqdm(label, s, total))),
    );
    lines
}

/// `Generating:  39%|███▉      | 11/28`
fn tqdm(label: &str, step: u64, total: u64) -> String {
    let pct = step * 100 / total;
    let filled = (step * 10 / total) as usize;
    let bar: String = "█".repeat(filled) + &" ".repeat(10 - filled);
    format!("{label}: {pct:>3}%|{bar}| {step}/{total}")
}

fn line(message: &str) -> Value {
    json!({
        "message": message,
        "level": "INFO",
        "source": "user",
        "timestamp": chrono::Utc::now().to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tqdm_lines_count_up_to_where_the_run_is() {
        let lines = logs(AppKind::Generator, 0.4);
        let last = lines.last().and_then(|l| l["message"].as_str()).unwrap();
        assert_eq!(last, "Generating:  39%|███       | 11/28");
        assert_eq!(logs(AppKind::Generator, 0.0).len(), 1);
        let done = logs(AppKind::FastTrainer, 1.0);
        assert_eq!(
            done.last().unwrap()["message"],
            "Training: 100%|██████████| 1000/1000"
        );
        assert_eq!(done.len(), 11);
    }
}
