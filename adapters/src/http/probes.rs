use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;

use super::AppState;

fn state(depot: &Depot) -> Option<&AppState> {
    depot.get_typed::<AppState>().ok()
}

/// The process is alive.
#[handler]
pub async fn health(res: &mut Response) {
    res.render(Json(json!({"status": "ok"})));
}

/// The process can do its work: the database and the queue answer.
#[handler]
pub async fn ready(depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    let db = s.engine.db().ping().await.map_err(|e| e.to_string());
    let queue = s.engine.queue().ping().await.map_err(|e| e.to_string());
    let ok = db.is_ok() && queue.is_ok();
    if !ok {
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    }
    res.render(Json(json!({
        "status": if ok { "ok" } else { "unavailable" },
        "database": db.err().unwrap_or_else(|| "ok".into()),
        "queue": queue.err().unwrap_or_else(|| "ok".into()),
    })));
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
            tracing::warn!(error = %e, "metrics scrape failed");
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            res.render(format!("metrics unavailable: {e}"));
        }
    }
}
