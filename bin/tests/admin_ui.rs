//! The operator's web page `/admin/ui`, driven in a real headless Chromium (Debian's chromium
//! and chromedriver, over WebDriver) against the whole app in this process: a run fails because
//! the HTTP service its step calls is down; the operator is refused with a wrong token, logs
//! in, filters the runs by status, opens the failed run, and once the service is back presses
//! retry and sees the run succeed.
//! Besides, with plain HTTP: a cross-origin POST carrying a valid session is refused and
//! changes nothing, the pages need a session, carry the CSP and no inline script, and the
//! public listener has no `/admin/ui`.
//!
//! Screenshots of the list and of the run go to `$AISHA_SCREENSHOTS` (the committed ones:
//! `AISHA_SCREENSHOTS=$PWD/docs/img`), else to a temporary folder.

mod common;
#[path = "admin_ui/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aisha_engine::testkit::noop3;
use aisha_engine::{Next, QueueKind, RetryPolicy, StepCtx, StepError, StepResult, Workflow};
use aisha_http::{AppState, HttpServer, admin_router};
use aisha_workflows::credits::CreditLimits;
use common::world::{World, fast_sim, start_probe};
use reqwest::redirect::Policy;
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use webdriver::Browser;

const TOKEN: &str = "test-admin-token-0123456789";

/// `fetch_once`: one step that reads a URL, with one attempt, so a service that is down fails
/// the run at once (as a step whose retries ran out).
const FETCH: &str = "fetch_once";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fetch {
    url: String,
    #[serde(default)]
    answer: Option<String>,
}

fn fetch_once() -> Workflow<Fetch, reqwest::Client> {
    Workflow::new(FETCH, reqwest::Client::new())
        .default_policy(
            RetryPolicy::default()
                .attempts(1)
                .timeout(Duration::from_secs(5)),
        )
        .step("fetch", fetch)
}

async fn fetch(mut s: Fetch, ctx: StepCtx<reqwest::Client>) -> StepResult<Fetch> {
    let down = |e: reqwest::Error| StepError::retryable(format!("dependency down: {e}"));
    let answer = ctx
        .deps
        .get(&s.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(down)?;
    s.answer = Some(answer.text().await.map_err(down)?);
    Ok(Next::Done(s))
}

/// The service `fetch_once` reads, once it is up.
#[handler]
async fn price() -> &'static str {
    "42"
}

fn screenshots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var("AISHA_SCREENSHOTS") {
        Ok(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (PathBuf::from(dir), None)
        }
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

/// Reloads the run's page until its status reads `want` (bounded).
async fn until_status(b: &Browser, page: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        b.goto(page).await;
        let status = b.text("#status").await;
        if status == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run is still {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn admin_ui_in_a_real_browser() {
    // First: without a browser the test fails at once, saying how to install one.
    let b = Browser::start(1400, 900).await;
    let w = World::start(QueueKind::Postgres, fast_sim(), |b, _| {
        b.register(fetch_once())
    })
    .await;
    let admin = HttpServer::start(
        "127.0.0.1:0",
        admin_router(AppState {
            engine: w.engine.clone(),
            metrics: w.metrics.clone(),
            admin_token: Some(TOKEN.into()),
            credit_limits: CreditLimits::default(),
        }),
    )
    .await
    .unwrap();
    let ui = format!("http://{}/admin/ui", admin.addr);
    let (shots, _keep) = screenshots();

    // Runs to look at: two that succeed, and one whose service is down (nothing listens on
    // its address yet).
    let ok = w
        .engine
        .start(noop3::NAME, serde_json::json!({}), Default::default())
        .await
        .unwrap()
        .run_id;
    let good = start_probe(&w, 600).await;
    w.wait_for(&good, "succeeded").await;
    let service = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let input = serde_json::json!({"url": format!("http://{service}/price")});
    let failed = w
        .engine
        .start(FETCH, input, Default::default())
        .await
        .unwrap()
        .run_id;
    w.wait_for(&failed, "failed").await;
    w.wait_for(&ok, "succeeded").await;

    // Without a session: a page redirects to the login form, a POST is a 401.
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let r = http.get(&ui).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/ui/login");
    let r = http
        .post(format!("{ui}/runs/{failed}/retry"))
        .header("origin", format!("http://{}", admin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The cookie is `Secure` when the proxy says the browser came over HTTPS, and only then.
    for (proto, secure) in [(Some("https"), true), (None, false)] {
        let mut r = http
            .post(format!("{ui}/login"))
            .header("origin", format!("http://{}", admin.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}"));
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with("aisha_admin=") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
    }
    // Nothing of it on the public listener.
    let r = http
        .get(format!("{}/admin/ui", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    b.goto(&ui).await;
    assert!(
        b.url().await.ends_with("/admin/ui/login"),
        "{}",
        b.url().await
    );

    // A wrong token: the form again, with the reason, and no cookie.
    b.type_into("#token", "not-the-token").await;
    b.click("form.login button").await;
    assert_eq!(b.text("p.error").await, "Wrong token.");
    assert!(b.cookies().await.is_empty(), "{:?}", b.cookies().await);

    // The right one: the runs, and a session cookie the page's scripts could not read.
    b.type_into("#token", TOKEN).await;
    b.click("form.login button").await;
    assert!(b.url().await.ends_with("/admin/ui"), "{}", b.url().await);
    let cookies = b.cookies().await;
    let cookie = cookies
        .iter()
        .find(|c| c["name"] == "aisha_admin")
        .unwrap_or_else(|| panic!("no session cookie: {cookies:?}"));
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    let session = format!("aisha_admin={}", cookie["value"].as_str().unwrap());
    assert_eq!(b.all("#runs tbody tr").await.len(), 3);
    assert!(
        b.text("#queues").await.contains("noop3"),
        "the queues are listed"
    );
    b.screenshot(&shots.join("admin-ui-runs.png")).await;

    // Find the failed run through the filter.
    b.click("select[name=status] option[value=failed]").await;
    b.click("form.filter button").await;
    assert!(b.url().await.contains("status=failed"), "{}", b.url().await);
    assert_eq!(b.all("#runs tbody tr").await.len(), 1);
    assert_eq!(b.text("#runs a.run").await, failed);
    b.click("#runs a.run").await;
    assert_eq!(b.text("#status").await, "failed");
    assert!(
        b.text("#timeline").await.contains("dependency down"),
        "the timeline shows the step's error"
    );

    // A cross-origin POST with a valid session: 403, and the run stays failed.
    for origin in [Some("http://evil.example"), None] {
        let mut r = http
            .post(format!("{ui}/runs/{failed}/retry"))
            .header("cookie", &session);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        assert_eq!(r.send().await.unwrap().status(), 403, "origin {origin:?}");
    }
    assert_eq!(
        w.engine.show_run(&failed).await.unwrap().run.status,
        "failed"
    );

    // The pages themselves: a CSP without inline scripts, and none in the page.
    let r = http
        .get(format!("{ui}/runs/{failed}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );

    // The service comes up; retry in the browser: the run goes on from the failed step and
    // succeeds.
    let up = HttpServer::start(&service.to_string(), Router::with_path("price").get(price))
        .await
        .unwrap();
    b.click("#retry").await;
    assert!(b.url().await.contains("done=retried"), "{}", b.url().await);
    let page = format!("{ui}/runs/{failed}");
    until_status(&b, &page, "succeeded").await;
    b.screenshot(&shots.join("admin-ui-run.png")).await;
    let timeline = b.text("#timeline").await;
    assert!(
        timeline.contains("dependency down")
            && timeline
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("fetch 1 ok")),
        "the failed attempt stays in the timeline, the retried one follows: {timeline}"
    );
    // Nothing to press on a run that ended well.
    assert!(b.all("#retry").await.is_empty() && b.all("#cancel").await.is_empty());

    // Log out: the cookie is gone and the pages want a login again.
    b.click("form.logout button").await;
    assert!(
        b.url().await.ends_with("/admin/ui/login"),
        "{}",
        b.url().await
    );
    assert!(b.cookies().await.iter().all(|c| c["name"] != "aisha_admin"));
    b.goto(&ui).await;
    assert!(b.url().await.ends_with("/admin/ui/login"));

    b.quit().await;
    up.stop().await;
    admin.stop().await;
    w.finish().await;
}
