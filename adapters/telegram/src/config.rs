//! The bot's configuration, parsed once (see the README's configuration table).

use aisha_workflows::credits::CreditLimits;
use std::fmt;
use std::time::Duration;

/// How updates reach the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// getUpdates long polling (one bot process per token).
    Polling,
    /// Telegram POSTs updates to `PUBLIC_URL/webhook/telegram`.
    Webhook,
}

/// A pack of credits sold for Stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pack {
    pub credits: i64,
    pub stars: u32,
}

impl Pack {
    /// `250:100,500:180` (credits:stars, comma-separated).
    pub fn parse_list(s: &str) -> Result<Vec<Pack>, String> {
        let bad = || format!("`{s}`: expected credits:stars pairs like 250:100,500:180");
        let mut packs = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (c, st) = item.split_once(':').ok_or_else(bad)?;
            let credits: i64 = c.trim().parse().map_err(|_| bad())?;
            let stars: u32 = st.trim().parse().map_err(|_| bad())?;
            if credits <= 0 || stars == 0 || stars > 100_000 {
                return Err(bad());
            }
            packs.push(Pack { credits, stars });
        }
        if packs.is_empty() || packs.len() > 8 {
            return Err(bad());
        }
        Ok(packs)
    }
}

#[derive(Clone)]
pub struct TelegramConfig {
    /// A credential: never printed.
    pub token: String,
    pub api_url: reqwest::Url,
    pub mode: Mode,
    /// Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token` (webhook mode).
    pub webhook_secret: Option<String>,
    pub admin_ids: Vec<i64>,
    pub welcome_credits: i64,
    pub packs: Vec<Pack>,
    /// Telegram's limits: at most one message per chat per this interval,
    pub chat_interval: Duration,
    /// and this many messages per second overall.
    pub per_second: u32,
    /// `MAX_GRANT`, `MAX_BALANCE`: bound `/grant`, welcome credits and Stars packs.
    pub credit_limits: CreditLimits,
}

impl TelegramConfig {
    pub fn new(token: String, api_url: reqwest::Url) -> TelegramConfig {
        TelegramConfig {
            token,
            api_url,
            mode: Mode::Polling,
            webhook_secret: None,
            admin_ids: Vec::new(),
            welcome_credits: 0,
            packs: Pack::parse_list("250:100,500:180,1000:320").unwrap_or_default(),
            chat_interval: Duration::from_secs(1),
            per_second: 30,
            credit_limits: CreditLimits::default(),
        }
    }

    pub fn is_admin(&self, user_id: i64) -> bool {
        self.admin_ids.contains(&user_id)
    }
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("token", &"***")
            .field("api_url", &self.api_url.as_str())
            .field("mode", &self.mode)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("admin_ids", &self.admin_ids)
            .field("welcome_credits", &self.welcome_credits)
            .field("packs", &self.packs)
            .field("chat_interval", &self.chat_interval)
            .field("per_second", &self.per_second)
            .field("credit_limits", &self.credit_limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_parse_or_say_what_is_expected() {
        assert_eq!(
            Pack::parse_list("250:100, 500:180").unwrap(),
            vec![
                Pack {
                    credits: 250,
                    stars: 100
                },
                Pack {
                    credits: 500,
                    stars: 180
                }
            ]
        );
        for bad in ["", "250", "250:0", "x:1", "-5:10"] {
            assert!(
                Pack::parse_list(bad).unwrap_err().contains("credits:stars"),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let mut c = TelegramConfig::new(
            "123:SECRET".into(),
            reqwest::Url::parse("https://api.telegram.org").unwrap(),
        );
        c.webhook_secret = Some("hush".into());
        let s = format!("{c:?}");
        assert!(!s.contains("SECRET") && !s.contains("hush"), "{s}");
    }
}
