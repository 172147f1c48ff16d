//! Telegram settings: the bot runs when `TELEGRAM_BOT_TOKEN` is set.

use std::time::Duration;

use aisha_telegram::{Mode, Pack, TelegramConfig};

use super::{Env, SettingsError};

pub(super) fn from_env(env: &Env<'_>) -> Result<Option<TelegramConfig>, SettingsError> {
    let Some(token) = env.get("TELEGRAM_BOT_TOKEN") else {
        return Ok(None);
    };
    // The token is never echoed back, not even in this error.
    let shape_ok = token.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && rest.len() >= 8
    });
    if !shape_ok {
        return Err(SettingsError {
            var: "TELEGRAM_BOT_TOKEN",
            expected: "a token from @BotFather, like 123456:ABC-DEF…: digits, a colon, then at least 8 characters"
                .into(),
            got: format!("{} characters", token.len()),
        });
    }
    let api = env
        .get("TELEGRAM_API_URL")
        .unwrap_or("https://api.telegram.org");
    let api_url = reqwest::Url::parse(api)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| SettingsError {
            var: "TELEGRAM_API_URL",
            expected: "an http:// or https:// URL of a Bot API server".into(),
            got: api.into(),
        })?;
    let mut c = TelegramConfig::new(token.to_string(), api_url);
    c.mode = match env.get("TELEGRAM_MODE").unwrap_or("polling") {
        "polling" => Mode::Polling,
        "webhook" => Mode::Webhook,
        other => {
            return Err(SettingsError {
                var: "TELEGRAM_MODE",
                expected: "polling or webhook".into(),
                got: other.into(),
            });
        }
    };
    c.webhook_secret = env.get("TELEGRAM_WEBHOOK_SECRET").map(str::to_string);
    if let Some(s) = &c.webhook_secret
        && (s.len() > 256
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(SettingsError {
            var: "TELEGRAM_WEBHOOK_SECRET",
            expected: "1–256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)".into(),
            got: format!("{} characters", s.len()),
        });
    }
    if c.mode == Mode::Webhook && c.webhook_secret.is_none() {
        return Err(SettingsError {
            var: "TELEGRAM_WEBHOOK_SECRET",
            expected:
                "a secret, because TELEGRAM_MODE=webhook (it proves an update came from Telegram)"
                    .into(),
            got: String::new(),
        });
    }
    if let Some(ids) = env.get("TELEGRAM_ADMIN_IDS") {
        c.admin_ids = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| SettingsError {
                var: "TELEGRAM_ADMIN_IDS",
                expected: "comma-separated Telegram user ids, e.g. 111,222".into(),
                got: ids.into(),
            })?;
    }
    c.welcome_credits = env
        .parse(
            "WELCOME_CREDITS",
            "a whole number of credits from 0 to 100000",
            0i64,
        )
        .and_then(|n| super::in_range("WELCOME_CREDITS", n, 0, 100_000))?;
    if let Some(p) = env.get("TELEGRAM_STAR_PACKS") {
        c.packs = Pack::parse_list(p).map_err(|expected| SettingsError {
            var: "TELEGRAM_STAR_PACKS",
            expected,
            got: p.into(),
        })?;
    }
    c.per_second = env
        .parse(
            "TELEGRAM_RATE_PER_SEC",
            "messages per second from 1 to 10000",
            30u32,
        )
        .and_then(|n| super::in_range("TELEGRAM_RATE_PER_SEC", n, 1, 10_000))?;
    c.chat_interval = Duration::from_millis(
        env.parse(
            "TELEGRAM_CHAT_INTERVAL_MS",
            "milliseconds from 0 to 60000",
            1000u64,
        )
        .and_then(|n| super::in_range("TELEGRAM_CHAT_INTERVAL_MS", n, 0, 60_000))?,
    );
    Ok(Some(c))
}

/// What the bot hands out stays within `MAX_GRANT`: a pack a user paid for, or the welcome
/// credits, must never be refused by the ledger after the fact.
pub(super) fn bound_credits(
    t: &mut TelegramConfig,
    limits: aisha_workflows::credits::CreditLimits,
) -> Result<(), SettingsError> {
    if let Some(p) = t.packs.iter().find(|p| p.credits > limits.max_grant) {
        return Err(SettingsError {
            var: "TELEGRAM_STAR_PACKS",
            expected: format!("packs of at most MAX_GRANT ({}) credits", limits.max_grant),
            got: format!("a pack of {} credits", p.credits),
        });
    }
    if t.welcome_credits > limits.max_grant {
        return Err(SettingsError {
            var: "WELCOME_CREDITS",
            expected: format!("at most MAX_GRANT ({})", limits.max_grant),
            got: t.welcome_credits.to_string(),
        });
    }
    t.credit_limits = limits;
    Ok(())
}
