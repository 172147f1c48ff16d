//! Our own token on the `fal_webhook` URL: an HMAC over the run id and the step, so a callback
//! routes to its run even before FAL's request id is recorded, and nobody can aim a callback
//! at a run without our secret.

use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Which webhook route a job calls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/webhook/fal/status`: training.
    Status,
    /// `/webhook/fal/portrait`: generation.
    Portrait,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Status => "/webhook/fal/status",
            Endpoint::Portrait => "/webhook/fal/portrait",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Status => "status",
            Endpoint::Portrait => "portrait",
        }
    }
}

/// `WEBHOOK_SECRET`: shared by every process that submits or receives.
#[derive(Clone)]
pub struct WebhookToken {
    keyed: HmacSha256,
}

impl std::fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookToken(***)")
    }
}

impl WebhookToken {
    pub fn new(secret: impl AsRef<[u8]>) -> Result<WebhookToken, hmac::digest::InvalidLength> {
        Ok(WebhookToken {
            keyed: HmacSha256::new_from_slice(secret.as_ref())?,
        })
    }

    fn mac(&self, run_id: &str, step: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(run_id.as_bytes());
        mac.update(b"\n");
        mac.update(step.as_bytes());
        mac
    }

    pub fn issue(&self, run_id: &str, step: &str) -> String {
        hex::encode(self.mac(run_id, step).finalize().into_bytes())
    }

    /// Constant-time check.
    pub fn check(&self, run_id: &str, step: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(raw) => self.mac(run_id, step).verify_slice(&raw).is_ok(),
            Err(_) => false,
        }
    }

    /// The URL we hand FAL as `fal_webhook`.
    pub fn webhook_url(
        &self,
        public_url: &str,
        endpoint: Endpoint,
        run_id: &str,
        step: &str,
    ) -> String {
        let base = format!("{}{}", public_url.trim_end_matches('/'), endpoint.path());
        match Url::parse(&base) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("run", run_id)
                    .append_pair("step", step)
                    .append_pair("token", &self.issue(run_id, step));
                url.to_string()
            }
            // PUBLIC_URL is checked at start-up; this only guards the type.
            Err(_) => base,
        }
    }
}

/// The deployment's webhook secret when `WEBHOOK_SECRET` is not set: made once, kept in the
/// database, so every replica signs and checks with the same one.
pub async fn stored_secret(db: &aisha_engine::Db) -> Result<String, sqlx::Error> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    aisha_engine::on_db!(db, p => sqlx::query(
        "INSERT INTO aisha_secrets (name, value) VALUES ('webhook_secret', $1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&fresh)
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    aisha_engine::on_db!(db, p => sqlx::query_scalar(
        "SELECT value FROM aisha_secrets WHERE name = 'webhook_secret'",
    )
    .fetch_one(p)
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_run_and_step() {
        let t = WebhookToken::new("s3cret").unwrap();
        let tok = t.issue("run-1", "submit");
        assert!(t.check("run-1", "submit", &tok));
        assert!(!t.check("run-2", "submit", &tok));
        assert!(!t.check("run-1", "other", &tok));
        assert!(!t.check("run-1", "submit", "zz"));
        assert!(
            !WebhookToken::new("other")
                .unwrap()
                .check("run-1", "submit", &tok)
        );
    }

    #[test]
    fn webhook_url_carries_run_step_and_token() {
        let t = WebhookToken::new("k").unwrap();
        let url = t.webhook_url(
            "https://aisha.example/",
            Endpoint::Portrait,
            "r 1",
            "submit",
        );
        let parsed = Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/webhook/fal/portrait");
        let q: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q[0], ("run".into(), "r 1".into()));
        assert!(t.check("r 1", "submit", &q[2].1));
    }
}
