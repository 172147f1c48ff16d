//! HTTP: the Bot API (`/bot<token>/<method>`), file downloads (`/file/bot<token>/<path>`)
//! and the test controls (`/_sim/...`).

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;
use super::model::{Pay, UserAction};
use super::params::Params;
use super::{Fault, Shared, methods, pay, users};

/// Pushed photos travel as base64 inside JSON.
const MAX_CONTROL_BODY: usize = 128 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .hoop(salvo::affix_state::inject(shared))
        .push(Router::with_path("_sim/updates").post(push_updates))
        .push(Router::with_path("_sim/pay").post(pay_invoice))
        .push(Router::with_path("_sim/sent").get(list_sent))
        .push(Router::with_path("_sim/faults").post(add_faults))
        .push(Router::with_path("_sim/stats").get(stats))
        .push(Router::with_path("file/{**rest}").get(download))
        .push(
            Router::with_path("{bot}/{method}")
                .get(bot_method)
                .post(bot_method),
        )
}

fn shared(depot: &Depot) -> Option<Arc<Shared>> {
    depot.get_typed::<Arc<Shared>>().ok().cloned()
}

fn answer(res: &mut Response, status: u16, body: Value) {
    res.status_code(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    res.render(Json(body));
}

fn api_error(res: &mut Response, e: &ApiError) {
    answer(res, e.code(), e.body());
}

/// Paths may percent-encode anything; teloxide even encodes the `/` inside file paths.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn token_ok(s: &Shared, segment: &str) -> bool {
    percent_decode(segment).strip_prefix("bot") == Some(s.config.token.as_str())
}

#[handler]
async fn bot_method(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let segment = req.param::<String>("bot").unwrap_or_default();
    if !token_ok(&s, &segment) {
        s.state().stats.errors += 1;
        return api_error(res, &ApiError::Unauthorized);
    }
    let name = percent_decode(&req.param::<String>("method").unwrap_or_default());
    let Some(method) = methods::canonical(&name) else {
        tracing::warn!(method = %name, "telegram sim: unknown Bot API method");
        s.state().stats.errors += 1;
        return api_error(res, &ApiError::MethodNotFound);
    };
    let params = match Params::read(req).await {
        Ok(p) => p,
        Err(e) => {
            s.state().stats.errors += 1;
            return api_error(res, &e);
        }
    };
    match methods::call(&s, method, params).await {
        Ok(result) => answer(res, 200, json!({"ok": true, "result": result})),
        Err(e) => {
            tracing::debug!(method, error = %e, "telegram sim: call refused");
            api_error(res, &e);
        }
    }
}

#[handler]
async fn download(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let raw = req.uri().path().trim_start_matches('/');
    let rest = raw.strip_prefix("file/").unwrap_or(raw);
    let (segment, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !token_ok(&s, segment) {
        return api_error(res, &ApiError::Unauthorized);
    }
    let found = s.state().files.at_path(&percent_decode(path));
    match found {
        Some(f) => {
            let ctype = f
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            res.add_header("content-type", ctype, true).ok();
            res.body(f.bytes.clone());
        }
        None => api_error(res, &ApiError::NotFound),
    }
}

/// A JSON body that is one `T` or an array of them; says which it was.
async fn one_or_many<T: DeserializeOwned>(req: &mut Request) -> Result<(Vec<T>, bool), String> {
    let v: Value = req
        .parse_json_with_max_size(MAX_CONTROL_BODY)
        .await
        .map_err(|e| format!("body is not JSON: {e}"))?;
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| serde_json::from_value(i).map_err(|e| e.to_string()))
            .collect::<Result<Vec<T>, _>>()
            .map(|v| (v, true)),
        one => serde_json::from_value(one)
            .map(|t| (vec![t], false))
            .map_err(|e| e.to_string()),
    }
}

#[handler]
async fn push_updates(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    match one_or_many::<UserAction>(req).await {
        Ok((actions, many)) => {
            let pushed: Vec<_> = actions.into_iter().map(|a| users::push(&s, a)).collect();
            let body = if many {
                json!(pushed)
            } else {
                json!(pushed.first())
            };
            answer(res, 200, body);
        }
        Err(e) => answer(res, 400, json!({"error": e})),
    }
}

#[handler]
async fn pay_invoice(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    match req.parse_json_with_max_size::<Pay>(1024 * 1024).await {
        Ok(p) => {
            let outcome = pay::pay(&s, p).await;
            answer(res, 200, json!(outcome));
        }
        Err(e) => answer(res, 400, json!({"error": e.to_string()})),
    }
}

#[handler]
async fn list_sent(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let chat_id = req.query::<i64>("chat_id");
    let after = req.query::<u64>("after").unwrap_or(0);
    let calls: Vec<_> = s
        .state()
        .sent
        .iter()
        .filter(|c| c.seq > after && (chat_id.is_none() || c.chat_id == chat_id))
        .cloned()
        .collect();
    answer(res, 200, json!(calls));
}

#[handler]
async fn add_faults(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    match one_or_many::<Fault>(req).await {
        Ok((faults, _)) => {
            let n = faults.len();
            let mut st = s.state();
            faults.into_iter().for_each(|f| st.faults.add(f));
            answer(res, 200, json!({"queued": n}));
        }
        Err(e) => answer(res, 400, json!({"error": e})),
    }
}

#[handler]
async fn stats(depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let st = s.state().stats.clone();
    answer(res, 200, json!(st));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(percent_decode("photos%2Ffile_7.jpg"), "photos/file_7.jpg");
        assert_eq!(percent_decode("a%zzb%4"), "a%zzb%4");
        assert_eq!(percent_decode("bot1%3Aabc"), "bot1:abc");
    }
}
