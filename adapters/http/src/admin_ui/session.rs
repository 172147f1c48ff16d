//! The operator's session: a stateless cookie, `<expiry>.<id>.<mac>`, where the MAC is an
//! HMAC-SHA256 over `<expiry>.<id>` with a key derived from `ADMIN_TOKEN`. Nothing is stored:
//! any replica behind the admin port accepts it, and changing `ADMIN_TOKEN` ends every session.
//! Logging out clears the cookie in the browser; a copied cookie stays valid until it expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name; its path is [`PATH`].
pub const COOKIE: &str = "aisha_admin";
/// Where the cookie is sent: the UI only, never the JSON API.
pub const PATH: &str = "/admin/ui";
/// How long a login lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// What the session key is derived for, so that the MAC is of no use anywhere else.
const PURPOSE: &[u8] = b"aisha admin-ui session v1";

type HmacSha256 = Hmac<Sha256>;

/// A valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random, names the session in the log (never the token, never the MAC).
    pub id: String,
    pub expires: u64,
}

impl Session {
    /// The id's random tail: enough to tell sessions apart in the log.
    pub fn tag(&self) -> &str {
        &self.id[self.id.len().saturating_sub(8)..]
    }
}

/// Signs and checks session cookies for one `ADMIN_TOKEN`.
pub struct Sessions {
    keyed: HmacSha256,
}

impl Sessions {
    /// `None` only if HMAC refused the key, which it does for no length.
    pub fn new(admin_token: &str) -> Option<Sessions> {
        let mut derive = HmacSha256::new_from_slice(admin_token.as_bytes()).ok()?;
        derive.update(PURPOSE);
        let key = derive.finalize().into_bytes();
        Some(Sessions {
            keyed: HmacSha256::new_from_slice(&key).ok()?,
        })
    }

    /// A new session from now, and its cookie value.
    pub fn issue(&self) -> (Session, String) {
        let session = Session {
            id: ulid::Ulid::generate().to_string().to_lowercase(),
            expires: now() + LIFETIME.as_secs(),
        };
        let payload = format!("{}.{}", session.expires, session.id);
        let value = format!("{payload}.{}", hex::encode(self.mac(&payload)));
        (session, value)
    }

    /// The session of a cookie value, when its MAC is ours and it has not expired.
    pub fn check(&self, value: &str) -> Option<Session> {
        let (payload, mac) = value.rsplit_once('.')?;
        let (expires, id) = payload.split_once('.')?;
        let given = hex::decode(mac).ok()?;
        if !bool::from(self.mac(payload).as_slice().ct_eq(&given)) {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        (expires > now()).then(|| Session {
            id: id.to_string(),
            expires,
        })
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// `Set-Cookie` for a session: HttpOnly, SameSite=Strict, `Secure` when the browser came over
/// HTTPS (the proxy says so in `X-Forwarded-Proto`).
pub fn set_cookie(value: &str, secure: bool) -> String {
    cookie(value, LIFETIME.as_secs(), secure)
}

/// `Set-Cookie` that removes the session from the browser.
pub fn clear_cookie(secure: bool) -> String {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The value of our cookie in a `Cookie` header.
pub fn from_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_valid_for_its_token_only() {
        let ours = Sessions::new("token-a").unwrap();
        let (session, value) = ours.issue();
        assert_eq!(ours.check(&value), Some(session));
        assert_eq!(Sessions::new("token-b").unwrap().check(&value), None);
    }

    #[test]
    fn a_changed_or_expired_cookie_is_refused() {
        let ours = Sessions::new("token-a").unwrap();
        let (session, value) = ours.issue();
        let (_, mac) = value.rsplit_once('.').unwrap();
        // A later expiry with the old MAC.
        let longer = format!("{}.{}.{mac}", session.expires + 3600, session.id);
        assert_eq!(ours.check(&longer), None);
        // A correctly signed cookie that has expired.
        let old = format!("{}.{}", now() - 1, session.id);
        let signed = format!("{old}.{}", hex::encode(ours.mac(&old)));
        assert_eq!(ours.check(&signed), None);
        for junk in ["", "x", "1.2", "1.2.zz", "..."] {
            assert_eq!(ours.check(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_cookie_header_is_read_and_written() {
        assert_eq!(from_header("a=1; aisha_admin=v.w.x; b=2"), Some("v.w.x"));
        assert_eq!(from_header("a=1"), None);
        let c = set_cookie("v", true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin/ui"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("v", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
