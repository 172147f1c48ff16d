//! The user's language: Russian first, English for users whose Telegram speaks something
//! else, or who chose it with /language.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    /// From Telegram's `language_code`: Russian for `ru`, `be`, `kk` and when Telegram does not
    /// say, English for every other language.
    pub fn from_code(code: Option<&str>) -> Lang {
        match code.map(|c| c.split('-').next().unwrap_or(c).to_ascii_lowercase()) {
            None => Lang::Ru,
            Some(c) if ["ru", "be", "kk"].contains(&c.as_str()) => Lang::Ru,
            Some(_) => Lang::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The Russian or the English of a text.
    pub fn pick<T>(self, ru: T, en: T) -> T {
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_unless_telegram_says_otherwise() {
        assert_eq!(Lang::from_code(None), Lang::Ru);
        assert_eq!(Lang::from_code(Some("ru")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("kk")), Lang::Ru);
        assert_eq!(Lang::from_code(Some("en-US")), Lang::En);
        assert_eq!(Lang::from_code(Some("de")), Lang::En);
    }
}
