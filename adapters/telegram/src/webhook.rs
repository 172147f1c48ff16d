//! `POST /webhook/telegram` (TELEGRAM_MODE=webhook): Telegram's updates, accepted only with
//! our secret in `X-Telegram-Bot-Api-Secret-Token`, committed to the update inbox before the
//! 200 (Telegram redelivers anything else).

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;
use subtle::ConstantTimeEq;

use aisha_http::limits::{DeclaredLimit, read_body};

use crate::intake::Intake;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
const MAX_BODY: usize = 1 << 20;

pub struct TelegramWebhook {
    pub intake: Arc<Intake>,
    pub secret: String,
}

/// `POST /webhook/telegram`; mounted where the bot runs in webhook mode.
pub fn router(hook: Arc<TelegramWebhook>) -> Router {
    // A declared size past the limit is refused before the handler reads a byte.
    Router::with_path("webhook/telegram")
        .hoop(DeclaredLimit(MAX_BODY))
        .hoop(salvo::affix_state::inject(hook))
        .post(receive)
}

fn reject(res: &mut Response, status: StatusCode, error: &str) {
    res.status_code(status);
    res.render(Json(json!({ "error": error })));
}

#[handler]
async fn receive(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(hook) = depot.get_typed::<Arc<TelegramWebhook>>().ok().cloned() else {
        return reject(res, StatusCode::INTERNAL_SERVER_ERROR, "no webhook state");
    };
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(hook.secret.as_bytes())) {
        tracing::warn!("Telegram webhook without the right secret");
        return reject(res, StatusCode::UNAUTHORIZED, "bad secret");
    }
    let body = match read_body(req, depot, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => return refused.answer(res),
    };
    let update: teloxide::types::Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return reject(res, StatusCode::BAD_REQUEST, &format!("not an update: {e}")),
    };
    match hook.intake.take(vec![update]).await {
        Ok(()) => res.render(Json(json!({"status": "stored"}))),
        Err(e) => {
            tracing::error!(error = %e, "storing a Telegram update");
            reject(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot store right now",
            )
        }
    }
}
