//! The operator's web page, `/admin/ui`, on the private listener (`ADMIN_BIND`) only: runs
//! filtered by status, workflow and subject, a run's step timeline with its errors, queue
//! depths and the oldest pending task's age, and retry / cancel buttons that call the engine's
//! own operations (the ones `aisha admin runs retry|cancel` and the JSON API call).
//!
//! Server-rendered HTML, no script. Login with `ADMIN_TOKEN` through a form sets a stateless,
//! HMAC-signed session cookie ([`session`]); every POST must come from this very host
//! ([`csrf`]); every page is sent with a CSP that allows no inline script or style.

mod actions;
mod csrf;
mod pages;
mod session;
mod views;

use maud::Markup;
use salvo::http::StatusCode;
use salvo::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use salvo::prelude::*;

use crate::AppState;
use crate::limits::DeclaredLimit;
use session::{Session, Sessions};

/// Largest form the UI reads (a token, a few dozen bytes).
const MAX_BODY: usize = 4 * 1024;

/// Scripts none at all, styles and images from this server only, forms to this server only,
/// never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("style.css");

pub fn router() -> Router {
    Router::with_path("admin/ui")
        .hoop(DeclaredLimit(MAX_BODY))
        .hoop(security_headers)
        .hoop(refuse_cross_origin_posts)
        .push(Router::with_path("style.css").get(style))
        .push(
            Router::with_path("login")
                .get(pages::login)
                .post(actions::login),
        )
        .push(
            Router::new()
                .hoop(require_session)
                .get(pages::runs)
                .push(Router::with_path("runs/{id}").get(pages::run))
                .push(Router::with_path("runs/{id}/retry").post(actions::retry))
                .push(Router::with_path("runs/{id}/cancel").post(actions::cancel))
                .push(Router::with_path("logout").post(actions::logout)),
        )
}

fn state(depot: &Depot) -> Option<&AppState> {
    depot.get_typed::<AppState>().ok()
}

/// The session signer of the configured `ADMIN_TOKEN`; `None` when the UI is off (no token).
fn sessions(depot: &Depot) -> Option<Sessions> {
    state(depot)
        .and_then(|s| s.admin_token.as_deref())
        .filter(|t| !t.is_empty())
        .and_then(Sessions::new)
}

/// Whether the browser talks to us over HTTPS (directly, or through a proxy that says so).
fn https(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .header::<String>("x-forwarded-proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Who acted, for the log: the client's address (the proxy's `X-Real-IP` when there is one)
/// and the session's tag. Never the token, never the cookie.
fn who(req: &Request, session: Option<&Session>) -> String {
    let client = req
        .header::<String>("x-real-ip")
        .unwrap_or_else(|| req.remote_addr().to_string());
    match session {
        Some(s) => format!("admin-ui {client} session {}", s.tag()),
        None => format!("admin-ui {client}"),
    }
}

fn html(res: &mut Response, code: StatusCode, page: Markup) {
    res.status_code(code);
    res.render(Text::Html(page.into_string()));
}

/// 303 to `to` (a path of ours).
fn see_other(res: &mut Response, to: &str) {
    res.status_code(StatusCode::SEE_OTHER);
    let _ = res.add_header(LOCATION, to, true);
}

fn set_cookie(res: &mut Response, value: String) {
    let _ = res.add_header(SET_COOKIE, value, false);
}

#[handler]
async fn security_headers(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        let _ = res.add_header(name, value, true);
    }
    if res.headers().get(CACHE_CONTROL).is_none() {
        let _ = res.add_header(CACHE_CONTROL, "no-store", true);
    }
}

/// A POST from anywhere but this host is a 403 before any handler runs: nothing changes.
#[handler]
async fn refuse_cross_origin_posts(req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
    if req.method() == salvo::http::Method::POST && !csrf::same_origin(req) {
        tracing::warn!(
            who = %who(req, None),
            action = "refused-cross-origin",
            path = ?req.uri().path(),
            origin = ?req.header::<String>("origin"),
            "admin UI: a POST from another origin"
        );
        html(
            res,
            StatusCode::FORBIDDEN,
            views::problem(
                "Refused",
                "This form was not sent from this page's own address (Origin check).",
                false,
            ),
        );
        ctrl.skip_rest();
    }
}

/// A valid session cookie, or: a GET goes to the login form (303), anything else is a 401.
#[handler]
async fn require_session(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let session = sessions(depot).and_then(|s| {
        req.headers()
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .find_map(|h| session::from_header(h).and_then(|v| s.check(v)))
    });
    match session {
        Some(s) => {
            depot.insert_typed(s);
        }
        None if req.method() == salvo::http::Method::GET => {
            see_other(res, "/admin/ui/login");
            ctrl.skip_rest();
        }
        None => {
            html(
                res,
                StatusCode::UNAUTHORIZED,
                views::problem("Not logged in", "Log in first.", false),
            );
            ctrl.skip_rest();
        }
    };
}

#[handler]
async fn style(res: &mut Response) {
    let _ = res.add_header(CACHE_CONTROL, "max-age=3600", true);
    res.render(Text::Css(STYLE));
}
