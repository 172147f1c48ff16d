//! The UI's GET pages: the login form, the runs list with the queues, one run.

use aisha_engine::EngineError;
use aisha_engine::ops::RunFilter;
use salvo::http::StatusCode;
use salvo::prelude::*;

use super::{html, state, views};

/// What an engine error looks like on a page: the caller's mistake said, an outage a fixed
/// phrase (the detail goes to the log).
pub(super) fn engine_problem(res: &mut Response, e: &EngineError) {
    let (code, title, message) = match e {
        EngineError::UnknownRun(_) => (StatusCode::NOT_FOUND, "Not found", e.to_string()),
        EngineError::WrongStatus { .. } => {
            (StatusCode::CONFLICT, "Not possible now", e.to_string())
        }
        EngineError::Config(_)
        | EngineError::InvalidInput { .. }
        | EngineError::UnknownWorkflow(_) => {
            (StatusCode::BAD_REQUEST, "Bad request", e.to_string())
        }
        _ => {
            tracing::warn!(error = %e, "admin UI: cannot answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The database or the queue does not answer right now.".to_string(),
            )
        }
    };
    html(res, code, views::problem(title, &message, true));
}

#[handler]
pub(super) async fn login(res: &mut Response) {
    html(res, StatusCode::OK, views::login(None));
}

/// `GET /admin/ui?status=&workflow=&subject=`: the runs, newest first, and the queues.
#[handler]
pub(super) async fn runs(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else { return };
    let text = |name: &str| {
        req.query::<String>(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let status = match text("status").map(|v| v.parse()) {
        None => None,
        Some(Ok(st)) => Some(st),
        Some(Err(expected)) => {
            let message = format!("status: expected {expected}");
            return html(
                res,
                StatusCode::BAD_REQUEST,
                views::problem("Bad request", &message, true),
            );
        }
    };
    let filter = RunFilter {
        status,
        workflow: text("workflow"),
        subject: text("subject"),
        limit: Some(200),
    };
    let listed = match s.engine.list_runs(&filter).await {
        Ok(r) => r,
        Err(e) => return engine_problem(res, &e),
    };
    match s.engine.queue_depths().await {
        Ok(queues) => html(res, StatusCode::OK, views::runs(&filter, &listed, &queues)),
        Err(e) => engine_problem(res, &e),
    }
}

/// `GET /admin/ui/runs/{id}?done=retried|cancelled`: the run; `done` is what the last
/// button did (the POST redirects here).
#[handler]
pub(super) async fn run(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    let notice = match req.query::<String>("done").as_deref() {
        Some("retried") => Some("Retried: the run goes on from the step that failed."),
        Some("cancelled") => Some("Cancelled: the run's compensation runs, then it ends."),
        _ => None,
    };
    match s.engine.show_run(&id).await {
        Ok(d) => html(res, StatusCode::OK, views::run(&d, notice)),
        Err(e) => engine_problem(res, &e),
    }
}
