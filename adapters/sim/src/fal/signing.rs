//! Signing webhooks the way FAL does: used by the simulator and the webhook benchmark, and the
//! reason the verifier's tests exercise FAL's exact message format.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use aisha_fal::signature::message;

/// An Ed25519 key that signs webhook deliveries.
#[derive(Clone)]
pub struct WebhookSigner {
    key: SigningKey,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSigner(***)")
    }
}

impl WebhookSigner {
    pub fn generate() -> WebhookSigner {
        WebhookSigner::from_seed(rand::random())
    }

    pub fn from_seed(seed: [u8; 32]) -> WebhookSigner {
        WebhookSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The hex signature FAL puts in `X-Fal-Webhook-Signature`.
    pub fn sign(&self, request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> String {
        let msg = message(request_id, user_id, timestamp, body);
        hex::encode(self.key.sign(msg.as_bytes()).to_bytes())
    }

    /// The public half as a JWK (`x` unpadded base64url, as FAL publishes it).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
        })
    }
}

/// A JWKS document with these keys.
pub fn jwks_document(signers: &[WebhookSigner]) -> Value {
    json!({"keys": signers.iter().map(WebhookSigner::jwk).collect::<Vec<_>>()})
}
