//! Product settings: where blobs live (S3 with `S3_ENDPOINT`, else a folder under DATA_DIR)
//! and what things cost.

use aisha_blob::s3::S3Settings;
use std::time::Duration;

use aisha_workflows::product::{Prices, Waits};

use super::{Env, SettingsError};

#[derive(Debug, Clone)]
pub struct ProductSettings {
    pub s3: Option<S3Settings>,
    pub prices: Prices,
    /// FAL's usual times (see `Waits::default`); tests shorten them. Only how often a
    /// waiting order asks for its progress is a variable (`GENERATION_PROGRESS_MS`,
    /// `TRAINING_PROGRESS_MS`).
    pub waits: Waits,
}

impl ProductSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<ProductSettings, SettingsError> {
        let s3 = match env.get("S3_ENDPOINT") {
            None => None,
            Some(endpoint) => {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(SettingsError {
                        var: "S3_ENDPOINT",
                        expected: "an http:// or https:// URL".into(),
                        got: endpoint.into(),
                    });
                }
                let need = |var: &'static str| {
                    env.get(var).map(str::to_string).ok_or(SettingsError {
                        var,
                        expected: "a value, because S3_ENDPOINT is set".into(),
                        got: String::new(),
                    })
                };
                let public_endpoint = match env.get("S3_PUBLIC_URL") {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                        Some(u.trim_end_matches('/').to_string())
                    }
                    Some(u) => {
                        return Err(SettingsError {
                            var: "S3_PUBLIC_URL",
                            expected: "an http:// or https:// URL".into(),
                            got: u.into(),
                        });
                    }
                    None => None,
                };
                Some(S3Settings {
                    endpoint: endpoint.to_string(),
                    public_endpoint,
                    bucket: need("S3_BUCKET")?,
                    access_key_id: need("S3_ACCESS_KEY_ID")?,
                    secret_access_key: need("S3_SECRET_ACCESS_KEY")?,
                    region: env.get("S3_REGION").unwrap_or("us-east-1").to_string(),
                })
            }
        };
        let d = Prices::default();
        let price = |var: &'static str, default: i64| {
            env.parse(var, "a whole number of credits from 1 to 1000000", default)
                .and_then(|n| super::in_range(var, n, 1, 1_000_000))
        };
        let w = Waits::default();
        let every = |var: &'static str, default: Duration| {
            env.parse(
                var,
                "milliseconds from 100 to 3600000",
                default.as_millis() as u64,
            )
            .and_then(|n| super::in_range(var, n, 100, 3_600_000))
            .map(Duration::from_millis)
        };
        Ok(ProductSettings {
            s3,
            waits: Waits {
                generation_progress: every("GENERATION_PROGRESS_MS", w.generation_progress)?,
                training_progress: every("TRAINING_PROGRESS_MS", w.training_progress)?,
                ..w
            },
            prices: Prices {
                avatar: price("PRICE_AVATAR", d.avatar)?,
                image: price("PRICE_IMAGE", d.image)?,
                upscale: price("PRICE_UPSCALE", d.upscale)?,
            },
        })
    }
}
