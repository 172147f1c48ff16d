//! FAL settings: which FAL (the real one with `FAL_KEY`, otherwise the built-in simulator),
//! where FAL reaches our webhook, and the apps and defaults we use.

use std::time::Duration;

use aisha_fal::apps::FalApps;

use super::{Env, SettingsError};

#[derive(Clone)]
pub struct FalSettings {
    /// `FAL_KEY`; with neither it nor `FAL_QUEUE_URL` set, the built-in simulator is used.
    pub key: Option<String>,
    pub queue_url: Option<String>,
    pub jwks_url: Option<String>,
    /// `PUBLIC_URL`: where FAL reaches our webhook routes.
    pub public_url: Option<String>,
    /// `FAL_USER_ID`: with it, a callback signed for another FAL account is refused.
    pub user_id: Option<String>,
    /// `WEBHOOK_SECRET`; without it a generated one is kept in the database.
    pub webhook_secret: Option<String>,
    pub apps: FalApps,
    pub timeout: Duration,
    pub retries: u32,
    /// How long the built-in simulator takes per job.
    pub sim_delay: Duration,
}

impl std::fmt::Debug for FalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| if o.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("FalSettings")
            .field("key", &hidden(&self.key))
            .field("queue_url", &self.queue_url)
            .field("jwks_url", &self.jwks_url)
            .field("public_url", &self.public_url)
            .field("user_id", &self.user_id)
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_QUEUE_URL: &str = "https://queue.fal.run";
pub const DEFAULT_JWKS_URL: &str = "https://rest.fal.ai/.well-known/jwks.json";
pub const MIN_WEBHOOK_SECRET: usize = 32;

fn url(env: &Env<'_>, var: &'static str) -> Result<Option<String>, SettingsError> {
    match env.get(var) {
        None => Ok(None),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Ok(Some(u.trim_end_matches('/').to_string()))
        }
        Some(u) => Err(SettingsError {
            var,
            expected: "an http:// or https:// URL".into(),
            got: u.into(),
        }),
    }
}

fn app(env: &Env<'_>, var: &'static str, default: String) -> Result<String, SettingsError> {
    match env.get(var) {
        None => Ok(default),
        Some(a) if a.split('/').count() >= 2 && !a.contains(char::is_whitespace) => {
            Ok(a.to_string())
        }
        Some(a) => Err(SettingsError {
            var,
            expected: "a FAL app id such as fal-ai/flux-lora".into(),
            got: a.into(),
        }),
    }
}

/// An account id as FAL sends it in `X-Fal-Webhook-User-Id`: printable, no spaces.
fn user_id(env: &Env<'_>) -> Result<Option<String>, SettingsError> {
    match env.get("FAL_USER_ID") {
        None => Ok(None),
        Some(u) if u.len() <= 200 && u.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(u.to_string()))
        }
        Some(u) => Err(SettingsError {
            var: "FAL_USER_ID",
            expected: "a FAL account id: up to 200 printable ASCII characters, no spaces".into(),
            got: u.into(),
        }),
    }
}

impl FalSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<FalSettings, SettingsError> {
        let webhook_secret = env.get("WEBHOOK_SECRET").map(str::to_string);
        if let Some(s) = &webhook_secret
            && s.len() < MIN_WEBHOOK_SECRET
        {
            return Err(SettingsError {
                var: "WEBHOOK_SECRET",
                expected: format!("at least {MIN_WEBHOOK_SECRET} characters"),
                got: format!("{} characters", s.len()),
            });
        }
        let d = FalApps::default();
        let apps = FalApps {
            trainer: app(env, "FAL_TRAINER_APP", d.trainer)?,
            fast_trainer: app(env, "FAL_FAST_TRAINER_APP", d.fast_trainer)?,
            generator: app(env, "FAL_GENERATOR_APP", d.generator)?,
            upscaler: app(env, "FAL_UPSCALE_APP", d.upscaler)?,
            ..d
        };
        Ok(FalSettings {
            key: env.get("FAL_KEY").map(str::to_string),
            queue_url: url(env, "FAL_QUEUE_URL")?,
            jwks_url: url(env, "FAL_JWKS_URL")?,
            public_url: url(env, "PUBLIC_URL")?,
            user_id: user_id(env)?,
            webhook_secret,
            apps,
            timeout: env.secs("FAL_TIMEOUT_SECS", 30)?,
            retries: env
                .parse(
                    "FAL_HTTP_RETRIES",
                    "a number of attempts from 1 to 20",
                    5u32,
                )
                .and_then(|n| super::in_range("FAL_HTTP_RETRIES", n, 1, 20))?,
            sim_delay: Duration::from_millis(env.parse(
                "SIM_FAL_DELAY_MS",
                "a whole number of milliseconds",
                300u64,
            )?),
        })
    }

    /// No FAL configured at all: run the built-in simulator.
    pub fn simulated(&self) -> bool {
        self.key.is_none() && self.queue_url.is_none()
    }
}
