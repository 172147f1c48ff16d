//! The UI's POSTs: log in, log out, retry a run, cancel a run. Each is logged with who did
//! it and what; the run ids come from the caller and are logged as escaped fields (`?`).
//! Origin was checked before any of these runs (see `csrf`).

use salvo::http::StatusCode;
use salvo::prelude::*;
use subtle::ConstantTimeEq;

use super::session::{self, Session};
use super::{MAX_BODY, html, https, pages, see_other, sessions, set_cookie, state, views, who};
use crate::limits::read_body;

/// `POST /admin/ui/login` with the form field `token`: the right `ADMIN_TOKEN` gets a session
/// cookie and a 303 to the runs; anything else gets the form again with a 401.
#[handler]
pub(super) async fn login(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let body = match read_body(req, depot, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => {
            res.status_code(refused.status());
            return html(
                res,
                refused.status(),
                views::login(Some(&refused.to_string())),
            );
        }
    };
    let given = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let expected = state(depot)
        .and_then(|s| s.admin_token.clone())
        .filter(|t| !t.is_empty());
    let (Some(expected), Some(sessions)) = (expected, sessions(depot)) else {
        tracing::warn!(who = %who(req, None), action = "login", outcome = "off", "admin UI: login while ADMIN_TOKEN is not set");
        let page = views::login(Some("The admin UI is off: ADMIN_TOKEN is not set."));
        return html(res, StatusCode::UNAUTHORIZED, page);
    };
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        tracing::warn!(who = %who(req, None), action = "login", outcome = "refused", "admin UI: wrong token");
        return html(
            res,
            StatusCode::UNAUTHORIZED,
            views::login(Some("Wrong token.")),
        );
    }
    let (session, cookie) = sessions.issue();
    tracing::info!(who = %who(req, Some(&session)), action = "login", outcome = "ok", "admin action");
    set_cookie(res, session::set_cookie(&cookie, https(req)));
    see_other(res, "/admin/ui");
}

/// `POST /admin/ui/logout`: the cookie is removed from the browser.
#[handler]
pub(super) async fn logout(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    tracing::info!(who = %who(req, depot.get_typed::<Session>().ok()), action = "logout", "admin action");
    set_cookie(res, session::clear_cookie(https(req)));
    see_other(res, "/admin/ui/login");
}

/// `POST /admin/ui/runs/{id}/retry`: the engine's retry (as `aisha admin runs retry`).
#[handler]
pub(super) async fn retry(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    tracing::info!(who = %who(req, depot.get_typed::<Session>().ok()), action = "retry", run_id = ?id, "admin action");
    match s.engine.retry_run(&id).await {
        Ok(_) => see_other(res, &format!("/admin/ui/runs/{}?done=retried", escape(&id))),
        Err(e) => pages::engine_problem(res, &e),
    }
}

/// `POST /admin/ui/runs/{id}/cancel`: the engine's cancel (as `aisha admin runs cancel`).
#[handler]
pub(super) async fn cancel(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let (Some(s), Some(id)) = (state(depot), req.param::<String>("id")) else {
        return;
    };
    tracing::info!(who = %who(req, depot.get_typed::<Session>().ok()), action = "cancel", run_id = ?id, "admin action");
    match s.engine.cancel_run(&id).await {
        Ok(_) => see_other(
            res,
            &format!("/admin/ui/runs/{}?done=cancelled", escape(&id)),
        ),
        Err(e) => pages::engine_problem(res, &e),
    }
}

/// A run id as a path segment of the `Location` we answer with.
fn escape(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
