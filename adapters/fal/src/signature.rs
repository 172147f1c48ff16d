//! FAL webhook signatures, as FAL specifies them: the message is the request id, the user id,
//! the timestamp and the hex SHA-256 of the raw body, joined by `\n`; it is valid when the
//! timestamp is within ±300 s and any Ed25519 key of FAL's JWKS verifies the hex signature.
//! Checked before anything of the body is parsed.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How far a webhook's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 300;

pub const HEADER_REQUEST_ID: &str = "x-fal-webhook-request-id";
pub const HEADER_USER_ID: &str = "x-fal-webhook-user-id";
pub const HEADER_TIMESTAMP: &str = "x-fal-webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "x-fal-webhook-signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("timestamp is not unix seconds")]
    BadTimestamp,
    #[error("timestamp is {0} s away from now (at most {MAX_SKEW_SECS} s allowed)")]
    Expired(i64),
    #[error("signature is not 64 hex-encoded bytes")]
    Malformed,
    #[error("no key of the JWKS verifies the signature")]
    NoKeyVerifies,
}

/// The signed headers of one webhook delivery.
#[derive(Debug, Clone, Default)]
pub struct WebhookHeaders<'a> {
    pub request_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// FAL's public keys (`{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "<base64url>"}]}`).
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<VerifyingKey>,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    x: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is not JSON of the expected shape: {0}")]
    Shape(String),
    #[error("JWKS has no usable Ed25519 key")]
    NoKeys,
}

impl Jwks {
    /// Parses a JWKS document; keys that are not Ed25519 (or do not decode) are skipped.
    pub fn parse(json: &[u8]) -> Result<Jwks, JwksError> {
        let doc: JwksDoc =
            serde_json::from_slice(json).map_err(|e| JwksError::Shape(e.to_string()))?;
        let keys: Vec<VerifyingKey> = doc
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| decode_x(&k.x))
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        Ok(Jwks { keys })
    }

    pub fn from_keys(keys: Vec<VerifyingKey>) -> Jwks {
        Jwks { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `x` is base64url, with or without padding.
fn decode_x(x: &str) -> Option<VerifyingKey> {
    let raw = URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(x))
        .ok()?;
    let bytes: [u8; 32] = raw.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The message FAL signs.
pub fn message(request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    format!("{request_id}\n{user_id}\n{timestamp}\n{digest}")
}

/// Verifies a delivery against `jwks` at unix time `now`.
pub fn verify(
    h: &WebhookHeaders<'_>,
    body: &[u8],
    jwks: &Jwks,
    now: i64,
) -> Result<(), SignatureError> {
    let request_id = h
        .request_id
        .ok_or(SignatureError::MissingHeader(HEADER_REQUEST_ID))?;
    let user_id = h
        .user_id
        .ok_or(SignatureError::MissingHeader(HEADER_USER_ID))?;
    let timestamp = h
        .timestamp
        .ok_or(SignatureError::MissingHeader(HEADER_TIMESTAMP))?;
    let signature = h
        .signature
        .ok_or(SignatureError::MissingHeader(HEADER_SIGNATURE))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = (now - ts).abs();
    if skew > MAX_SKEW_SECS {
        return Err(SignatureError::Expired(skew));
    }
    let sig: [u8; 64] = hex::decode(signature.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::Malformed)?;
    let sig = Signature::from_bytes(&sig);
    let msg = message(request_id, user_id, timestamp, body);
    if jwks
        .keys
        .iter()
        .any(|k| k.verify_strict(msg.as_bytes(), &sig).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::NoKeyVerifies)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn jwk(k: &SigningKey, padded: bool) -> serde_json::Value {
        let b = k.verifying_key().to_bytes();
        let x = if padded {
            URL_SAFE.encode(b)
        } else {
            URL_SAFE_NO_PAD.encode(b)
        };
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x})
    }

    fn signed(k: &SigningKey, ts: i64, body: &[u8]) -> (String, String) {
        let ts = ts.to_string();
        let sig = k.sign(message("req-1", "user-1", &ts, body).as_bytes());
        (ts, hex::encode(sig.to_bytes()))
    }

    fn headers<'a>(ts: &'a str, sig: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            request_id: Some("req-1"),
            user_id: Some("user-1"),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn valid_signature_from_any_key_of_the_set() {
        let (old, new) = (key(1), key(2));
        let doc = serde_json::json!({"keys": [jwk(&old, true), {"kty": "RSA", "n": "x"}, jwk(&new, false)]});
        let jwks = Jwks::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.len(), 2);
        let body = br#"{"request_id":"req-1","status":"OK"}"#;
        for k in [&old, &new] {
            let (ts, sig) = signed(k, NOW - 10, body);
            assert_eq!(verify(&headers(&ts, &sig), body, &jwks, NOW), Ok(()));
        }
    }

    #[test]
    fn every_kind_of_bad_delivery_is_rejected() {
        let k = key(3);
        let jwks = Jwks::from_keys(vec![k.verifying_key()]);
        let body = b"{}";
        let (ts, sig) = signed(&k, NOW, body);
        // Another body, another key, an old or future timestamp, garbage, a missing header.
        assert_eq!(
            verify(&headers(&ts, &sig), b"{ }", &jwks, NOW),
            Err(SignatureError::NoKeyVerifies)
        );
        let (_, other) = signed(&key(4), NOW, body);
        assert_eq!(
            verify(&headers(&ts, &other), body, &jwks, NOW),
            Err(SignatureError::NoKeyVerifies)
        );
        let (old_ts, old_sig) = signed(&k, NOW - 301, body);
        assert_eq!(
            verify(&headers(&old_ts, &old_sig), body, &jwks, NOW),
            Err(SignatureError::Expired(301))
        );
        let (new_ts, new_sig) = signed(&k, NOW + 400, body);
        assert_eq!(
            verify(&headers(&new_ts, &new_sig), body, &jwks, NOW),
            Err(SignatureError::Expired(400))
        );
        assert_eq!(
            verify(&headers("soon", &sig), body, &jwks, NOW),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(&headers(&ts, "zz"), body, &jwks, NOW),
            Err(SignatureError::Malformed)
        );
        let mut h = headers(&ts, &sig);
        h.user_id = None;
        assert_eq!(
            verify(&h, body, &jwks, NOW),
            Err(SignatureError::MissingHeader(HEADER_USER_ID))
        );
    }

    #[test]
    fn jwks_without_ed25519_keys_is_an_error() {
        assert_eq!(
            Jwks::parse(br#"{"keys": [{"kty": "RSA"}]}"#).unwrap_err(),
            JwksError::NoKeys
        );
        assert!(matches!(Jwks::parse(b"nope"), Err(JwksError::Shape(_))));
    }
}
