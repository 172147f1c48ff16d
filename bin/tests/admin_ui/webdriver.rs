//! Just enough of the W3C WebDriver protocol to drive a real headless Chromium through
//! Debian's chromedriver: open pages, find elements, type, click, read cookies, screenshots.
//! Without chromium or chromedriver the test fails saying how to install them.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const INSTALL: &str = "the admin UI test drives a real Chromium: apt-get install -y chromium \
                       chromium-driver (scripts/test and .ci/run do); or set CHROMIUM and CHROMEDRIVER";

/// A chromedriver process and one browser session in it; both end when this is dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    profile: tempfile::TempDir,
}

/// chromedriver leads its own process group, which the browser it starts joins: a test that
/// fails before `quit` still leaves no browser behind.
impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn binary(var: &str, candidates: &[&str]) -> String {
    if let Ok(p) = std::env::var(var) {
        assert!(
            Path::new(&p).exists(),
            "{var}={p} does not exist; {INSTALL}"
        );
        return p;
    }
    candidates
        .iter()
        .find(|c| Path::new(c).exists())
        .map(|c| c.to_string())
        .unwrap_or_else(|| panic!("{} not found; {INSTALL}", candidates[0]))
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = binary(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let chromedriver = binary("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}; {INSTALL}"));
        let profile = tempfile::tempdir().expect("profile dir");
        let mut b = Browser {
            driver,
            http: reqwest::Client::new(),
            session: String::new(),
            base: format!("http://127.0.0.1:{port}"),
            profile,
        };
        let t0 = Instant::now();
        loop {
            let ready = b.http.get(format!("{}/status", b.base)).send().await;
            if let Ok(r) = ready
                && r.json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--hide-scrollbars", "--force-device-scale-factor=1", "--disable-crash-reporter",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", b.profile.path().display()),
                ],
            },
        }}});
        let created = b.call("POST", "/session", caps).await;
        b.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        b
    }

    /// One command; answers its `value`, panics on a WebDriver error.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req
            .send()
            .await
            .expect("chromedriver")
            .json()
            .await
            .expect("JSON");
        let value = answer["value"].clone();
        assert!(
            value.get("error").is_none(),
            "WebDriver {method} {path}: {value}"
        );
        value
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.session("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.session("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Element ids of everything matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<String> {
        let found = self
            .session(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one element a selector names (panics if there is none).
    pub async fn find(&self, css: &str) -> String {
        let found = self.all(css).await;
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css}"))
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let t = self
            .session("GET", &format!("/element/{id}/text"), Value::Null)
            .await;
        t.as_str().unwrap_or_default().to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.session("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// The browser's cookies for the current page, HttpOnly ones too.
    pub async fn cookies(&self) -> Vec<Value> {
        self.session("GET", "/cookie", Value::Null)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The viewport as a PNG, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.session("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        std::fs::write(path, png).expect("write screenshot");
    }

    pub async fn quit(self) {
        self.session("DELETE", "", Value::Null).await;
    }
}
