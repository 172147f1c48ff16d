//! The admin HTTP API: the engine's operations for operators, behind a bearer token
//! (`ADMIN_TOKEN`, compared in constant time). The same JSON as `aisha admin … --json`.
//! Served on the private listener (`ADMIN_BIND`) only. Ids and reasons come from the caller:
//! they are logged as escaped fields (`?`), never spliced into a line.

use aisha_engine::EngineError;
use aisha_engine::ops::RunFilter;
use aisha_workflows::credits::{Kind, Ledger};
use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::limits::{DeclaredLimit, read_body};

/// Largest request body the admin API reads (a grant is a few dozen bytes).
const MAX_BODY: usize = 16 * 1024;

pub fn router() -> Router {
    Router::with_path("admin")
        .hoop(DeclaredLimit(MAX_BODY))
        .hoop(require_token)
        .push(Router::with_path("runs").get(list_runs))
        .push(Router::with_path("runs/{id}").get(show_run))
        .push(Router::with_path("runs/{id}/retry").post(retry_run))
        .push(Router::with_path("runs/{id}/cancel").post(cancel_run))
        .push(Router::with_path("queues").get(queues))
        .push(Router::with_path("queues/{queue}/requeue-dead").post(requeue_dead))
        .push(Router::with_path("users/{id}/credits").post(grant_credits))
}

fn state(depot: &Depot) -> Option<&AppState> {
    depot.get_typed::<AppState>().ok()
}

fn error(res: &mut Response, code: StatusCode, message: &str) {
    res.status_code(code);
    res.render(Json(json!({ "error": message })));
}

/// What the caller got wrong is said; an outage is a fixed phrase (the detail is logged).
fn engine_error(res: &mut Response, e: &EngineError) {
    let code = match e {
        EngineError::UnknownRun(_) | EngineError::UnknownWorkflow(_) => StatusCode::NOT_FOUND,
        EngineError::WrongStatus { .. } => StatusCode::CONFLICT,
        EngineError::Config(_) | EngineError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        _ => return unavailable(res, e),
    };
    error(res, code, &e.to_string());
}

fn unavailable(res: &mut Response, e: &dyn std::error::Error) {
    tracing::warn!(error = %e, "admin API: cannot answer");
    error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable right now",
    );
}

/// 401 unless `Authorization: Bearer <ADMIN_TOKEN>`; with no token configured the API is off.
#[handler]
async fn require_token(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let expected = state(depot).and_then(|s| s.admin_token.clone());
    let given = req
        .header::<String>("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
    let ok = match (expected, given) {
        (Some(e), Some(g)) => bool::from(e.as_bytes().ct_eq(g.as_bytes())),
        _ => false,
    };
    if !ok {
        tracing::warn!(path = ?req.uri().path(), "admin API: request without a valid token");
        error(res, StatusCode::UNAUTHORIZED, "unauthorized");
        ctrl.skip_rest();
    }
}

#[handler]
async fn list_runs(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else { return };
    let status = match req.query::<String>("status").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse() {
            Ok(st) => Some(st),
            Err(expected) => {
                return error(
                    res,
                    StatusCode::BAD_REQUEST,
                    &format!("status: expected {expected}"),
                );
            }
        },
    };
    let filter = RunFilter {
        status,
        workflow: req.query::<String>("workflow").filter(|v| !v.is_empty()),
        subject: req.query::<String>("subject").filter(|v| !v.is_empty()),
        limit: req.query::<i64>("limit"),
    };
    match s.engine.list_runs(&filter).await {
        Ok(runs) => res.render(Json(runs)),
        Err(e) => engine_error(res, &e),
    }
}

#[handler]
async fn show_run(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    match s.engine.show_run(&id).await {
        Ok(d) => res.render(Json(d)),
        Err(e) => engine_error(res, &e),
    }
}

#[handler]
async fn retry_run(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    tracing::info!(who = "admin-api", action = "retry", run_id = ?id, "admin action");
    match s.engine.retry_run(&id).await {
        Ok(r) => res.render(Json(r)),
        Err(e) => engine_error(res, &e),
    }
}

#[handler]
async fn cancel_run(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    tracing::info!(who = "admin-api", action = "cancel", run_id = ?id, "admin action");
    match s.engine.cancel_run(&id).await {
        Ok(r) => res.render(Json(r)),
        Err(e) => engine_error(res, &e),
    }
}

#[handler]
async fn queues(depot: &mut Depot, res: &mut Response) {
    let Some(s) = state(depot) else { return };
    match s.engine.queue_depths().await {
        Ok(d) => res.render(Json(d)),
        Err(e) => engine_error(res, &e),
    }
}

#[handler]
async fn requeue_dead(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(queue)) = (state(depot), req.param::<String>("queue")) else {
        return;
    };
    tracing::info!(
        who = "admin-api",
        action = "requeue-dead",
        ?queue,
        "admin action"
    );
    match s.engine.requeue_dead(&queue).await {
        Ok(n) => res.render(Json(json!({ "queue": queue, "requeued": n }))),
        Err(e) => engine_error(res, &e),
    }
}

#[derive(serde::Deserialize)]
struct Grant {
    amount: i64,
    reason: String,
    /// Makes the grant apply once however often it is sent.
    #[serde(default)]
    key: Option<String>,
}

/// `POST /admin/users/{id}/credits {"amount", "reason", "key"?}`: a grant (a goodwill refund
/// to a user is a grant with its reason).
#[handler]
async fn grant_credits(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(user)) = (state(depot).cloned(), req.param::<String>("id")) else {
        return;
    };
    let body = match read_body(req, depot, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => return refused.answer(res),
    };
    let grant: Grant = match serde_json::from_slice(&body) {
        Ok(g) => g,
        Err(e) => return error(res, StatusCode::BAD_REQUEST, &format!("body: {e}")),
    };
    if grant.reason.trim().is_empty() {
        return error(res, StatusCode::BAD_REQUEST, "reason: required");
    }
    let key = grant
        .key
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    tracing::info!(who = "admin-api", action = "grant-credits", user = ?user, amount = grant.amount, reason = ?grant.reason, "admin action");
    let ledger = Ledger::with_limits(s.engine.db().clone(), s.credit_limits);
    match ledger
        .add(&user, Kind::Grant, grant.amount, &grant.reason, &key)
        .await
    {
        Ok(applied) => match ledger.balance(&user).await {
            Ok(balance) => res.render(Json(
                json!({"user_id": user, "applied": applied, "balance": balance}),
            )),
            Err(e) => unavailable(res, &e),
        },
        // Names the bound (MAX_GRANT, MAX_BALANCE); nothing was written.
        Err(e) if e.is_out_of_bounds() => error(res, StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => unavailable(res, &e),
    }
}
