//! Cross-site request forgery: a POST to the UI must say where it comes from, and that must be
//! this very host. Browsers send `Origin` on every form POST (Chromium, Firefox and Safari do);
//! when it is missing, a `Referer` on this host is taken instead; with neither the POST is
//! refused. The session cookie is also `SameSite=Strict`, so a foreign page's form carries no
//! session in the first place: the two checks stand independently.

use salvo::http::header::{HOST, ORIGIN, REFERER};
use salvo::prelude::*;

/// Whether the request's `Origin` (or, without one, its `Referer`) names the host it was sent to.
pub fn same_origin(req: &Request) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let Some(host) = header(HOST) else {
        return false;
    };
    match (header(ORIGIN), header(REFERER)) {
        (Some(origin), _) => authority(origin).is_some_and(|a| a.eq_ignore_ascii_case(host)),
        (None, Some(referer)) => authority(referer).is_some_and(|a| a.eq_ignore_ascii_case(host)),
        (None, None) => false,
    }
}

/// `host[:port]` of an `http(s)://host[:port][/…]` URL; `None` for anything else ("null" too).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty() && !a.contains('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&'static str, &str)]) -> Request {
        let mut r = Request::new();
        for (k, v) in headers {
            r.headers_mut().insert(*k, v.parse().unwrap());
        }
        r
    }

    #[test]
    fn only_this_host_may_post() {
        let host = ("host", "127.0.0.1:8088");
        assert!(same_origin(&req(&[
            host,
            ("origin", "http://127.0.0.1:8088")
        ])));
        assert!(same_origin(&req(&[
            host,
            ("referer", "http://127.0.0.1:8088/admin/ui/runs/1")
        ])));
        for refused in [
            vec![host],
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:8089")],
            vec![host, ("origin", "http://127.0.0.1:8088.evil.example")],
            vec![host, ("referer", "http://evil.example/127.0.0.1:8088")],
            // A foreign Origin is not excused by a matching Referer.
            vec![
                host,
                ("origin", "http://evil.example"),
                ("referer", "http://127.0.0.1:8088/"),
            ],
            vec![("origin", "http://127.0.0.1:8088")],
        ] {
            assert!(!same_origin(&req(&refused)), "{refused:?}");
        }
    }
}
