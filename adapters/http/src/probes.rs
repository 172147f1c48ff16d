use std::time::Duration;

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;

use crate::AppState;

fn state(depot: &Depot) -> Option<&AppState> {
    depot.get_typed::<AppState>().ok()
}

/// The process is alive.
#[handler]
pub async fn health(res: &mut Response) {
    res.render(Json(json!({"status": "ok"})));
}

/// How long `/ready` waits for a backend to answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The process can do its work: the database and the queue answer and none of its
/// supervised loops is down. 503 names what is not (in fixed words; the backend's own
/// error goes to the log), and it answers 200 again by itself once all is back.
#[handler]
pub async fn ready(depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    let (db, queue) = tokio::join!(
        answers("database", s.engine.db().ping()),
        answers("queue", s.engine.queue().ping())
    );
    let down: Vec<_> = s
        .engine
        .health()
        .down_loops()
        .into_iter()
        .map(|(name, reason)| json!({"loop": name.to_string(), "reason": reason}))
        .collect();
    let ok = db.is_none() && queue.is_none() && down.is_empty();
    if !ok {
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    }
    res.render(Json(json!({
        "status": if ok { "ok" } else { "unavailable" },
        "database": db.unwrap_or("ok"),
        "queue": queue.unwrap_or("ok"),
        "loops_down": down,
    })));
}

/// None when `ping` answers in time; else what to tell the caller (the error is logged).
async fn answers<E: std::fmt::Display>(
    what: &'static str,
    ping: impl std::future::Future<Output = Result<(), E>>,
) -> Option<&'static str> {
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(backend = what, error = %e, "readiness: backend does not answer");
            Some("does not answer")
        }
        Err(_) => {
            tracing::warn!(backend = what, "readiness: backend did not answer in time");
            Some("does not answer in time")
        }
    }
}

#[handler]
pub async fn metrics(depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    match s.metrics.render(&s.engine).await {
        Ok(body) => {
            let _ = res.add_header(
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
                true,
            );
            res.render(body);
        }
        Err(e) => {
            // The reason stays in our log: callers get a fixed word, never internal text.
            tracing::warn!(error = %e, "metrics scrape failed");
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            res.render("metrics unavailable");
        }
    }
}
