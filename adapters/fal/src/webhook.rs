//! `POST /webhook/fal/status` (training) and `POST /webhook/fal/portrait` (generation).
//! Order matters: size, then FAL's signature over the raw body, then (with `FAL_USER_ID`)
//! the signed account id, then our token, then the JSON; only a delivery that passes all of
//! them is stored, and it is stored (committed) before the 200. Every rejection is a 4xx that
//! changes nothing.

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;

use std::sync::Arc;

use crate::callback::CallbackBody;
use crate::inbox::{Delivery, Handover};
use crate::jobs::PROVIDER;
use crate::jwks::{JwksCache, VerifyError};
use crate::signature::{
    HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID, WebhookHeaders,
};
use crate::token::{Endpoint, WebhookToken};
use aisha_http::Metrics;
use aisha_http::limits::{BodyRefused, read_body};

/// Largest callback body we read.
pub const MAX_BODY: usize = 1 << 20;

/// What the webhook routes need.
pub struct WebhookService {
    pub jwks: JwksCache,
    pub token: WebhookToken,
    pub handover: Handover,
    /// `FAL_USER_ID`: when set, only callbacks signed for this FAL account are taken (a
    /// valid signature alone proves FAL sent it, not that it was for us).
    pub fal_user_id: Option<String>,
    pub metrics: Arc<Metrics>,
}

/// `/webhook/fal/{status,portrait}`, served by `service`; mounted by the processes that take
/// FAL's callbacks.
pub fn router(service: Arc<WebhookService>) -> Router {
    Router::with_path("webhook/fal")
        .hoop(salvo::affix_state::inject(service))
        .push(Router::with_path("status").post(fal_status))
        .push(Router::with_path("portrait").post(fal_portrait))
}

#[handler]
async fn fal_status(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    receive(Endpoint::Status, req, depot, res).await;
}

#[handler]
async fn fal_portrait(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    receive(Endpoint::Portrait, req, depot, res).await;
}

fn reject(res: &mut Response, status: StatusCode, error: &str) {
    res.status_code(status);
    res.render(Json(json!({ "error": error })));
}

async fn receive(endpoint: Endpoint, req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(svc) = depot.get_typed::<Arc<WebhookService>>().ok().cloned() else {
        return reject(res, StatusCode::INTERNAL_SERVER_ERROR, "no webhook service");
    };
    let count = |outcome: &str| svc.metrics.callback_outcome(PROVIDER, outcome);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (request_id, user_id, timestamp, signature) = (
        header(HEADER_REQUEST_ID),
        header(HEADER_USER_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
    );
    let query = |name: &str| req.query::<String>(name).unwrap_or_default();
    let (run_id, step, token) = (query("run"), query("step"), query("token"));
    let body = match read_body(req, depot, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => {
            count(match refused {
                BodyRefused::TooLarge { .. } => "too_large",
                BodyRefused::TooSlow(_) => "too_slow",
                BodyRefused::Unreadable => "malformed",
            });
            return refused.answer(res);
        }
    };
    let headers = WebhookHeaders {
        request_id: request_id.as_deref(),
        user_id: user_id.as_deref(),
        timestamp: timestamp.as_deref(),
        signature: signature.as_deref(),
    };
    let now = chrono::Utc::now().timestamp();
    match svc.jwks.verify(&headers, &body, now).await {
        Ok(()) => {}
        Err(VerifyError::Signature(e)) => {
            count("bad_signature");
            tracing::warn!(endpoint = endpoint.label(), request_id = ?request_id, error = %e, "rejected a FAL webhook");
            return reject(res, StatusCode::UNAUTHORIZED, &e.to_string());
        }
        Err(e @ VerifyError::KeysUnavailable(_)) => {
            tracing::error!(error = %e, "cannot verify FAL webhooks");
            return reject(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot verify right now",
            );
        }
    }
    if let Some(ours) = &svc.fal_user_id
        && user_id.as_deref() != Some(ours.as_str())
    {
        count("foreign_user");
        tracing::warn!(endpoint = endpoint.label(), request_id = ?request_id, fal_user_id = ?user_id, "FAL webhook signed for another FAL account");
        return reject(res, StatusCode::UNAUTHORIZED, "not our FAL account");
    }
    if !svc.token.check(&run_id, &step, &token) {
        count("bad_token");
        tracing::warn!(endpoint = endpoint.label(), request_id = ?request_id, "FAL webhook with a bad token");
        return reject(res, StatusCode::UNAUTHORIZED, "bad token");
    }
    let parsed: CallbackBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            count("malformed");
            return reject(
                res,
                StatusCode::BAD_REQUEST,
                &format!("malformed callback: {e}"),
            );
        }
    };
    if request_id.as_deref() != Some(parsed.request_id.as_str()) {
        count("malformed");
        return reject(
            res,
            StatusCode::BAD_REQUEST,
            "request_id differs from the signed X-Fal-Webhook-Request-Id",
        );
    }
    let delivery = Delivery {
        request_id: parsed.request_id,
        endpoint: endpoint.label().to_string(),
        run_id,
        step,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    match svc.handover.inbox().store(&delivery).await {
        Ok(true) => {
            tracing::info!(endpoint = endpoint.label(), request_id = ?delivery.request_id, run_id = ?delivery.run_id, "FAL callback stored");
            svc.handover.enqueue(delivery);
            res.render(Json(json!({"status": "stored"})));
        }
        Ok(false) => {
            count("duplicate");
            tracing::info!(request_id = ?delivery.request_id, "duplicate FAL callback");
            res.render(Json(json!({"status": "duplicate"})));
        }
        Err(e) => {
            tracing::error!(request_id = ?delivery.request_id, error = %e, "cannot store a FAL callback");
            reject(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot store the callback right now",
            );
        }
    }
}
