//! `parse_mode`: turns HTML / MarkdownV2 / Markdown text into plain text and entities, and
//! refuses what Telegram refuses ("can't parse entities: ..."): an unescaped `.` in
//! MarkdownV2 is the classic bug that only shows up against the real server.

use serde_json::{Value, json};

use super::error::ApiError;

mod html;
mod markdown;

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rendered {
    pub text: String,
    /// MessageEntity objects, offsets and lengths in UTF-16 code units.
    pub entities: Vec<Value>,
}

pub(crate) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn cant_parse(what: impl std::fmt::Display) -> ApiError {
    ApiError::bad(format!("can't parse entities: {what}"))
}

pub(crate) fn render(text: &str, parse_mode: Option<&str>) -> Result<Rendered, ApiError> {
    match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(Rendered {
            text: text.to_string(),
            entities: vec![],
        }),
        Some("html") => html::parse(text),
        Some("markdownv2") => markdown::parse_v2(text),
        Some("markdown") => markdown::parse_legacy(text),
        Some(_) => Err(ApiError::bad("unsupported parse_mode")),
    }
}

/// The entity Telegram adds to a user's `/command` at the start of a message.
pub(crate) fn command_entities(text: &str) -> Vec<Value> {
    if !text.starts_with('/') {
        return vec![];
    }
    let command = text.split(char::is_whitespace).next().unwrap_or("");
    if command.len() < 2 {
        return vec![];
    }
    vec![json!({"type": "bot_command", "offset": 0, "length": utf16_len(command)})]
}

/// Builds the output text and its entities.
#[derive(Default)]
struct Out {
    text: String,
    len16: usize,
    entities: Vec<Value>,
}

impl Out {
    fn push(&mut self, c: char) {
        self.text.push(c);
        self.len16 += c.len_utf16();
    }

    fn entity(&mut self, kind: &str, start: usize, extra: Option<(&str, String)>) {
        if self.len16 <= start {
            return;
        }
        let mut e = json!({"type": kind, "offset": start, "length": self.len16 - start});
        if let Some((k, v)) = extra {
            e[k] = json!(v);
        }
        self.entities.push(e);
    }

    fn finish(mut self) -> Rendered {
        self.entities.sort_by_key(|e| {
            let at = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
            (at("offset"), u64::MAX - at("length"))
        });
        Rendered {
            text: self.text,
            entities: self.entities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_get_an_entity() {
        assert_eq!(
            command_entities("/start ref_1"),
            vec![json!({"type": "bot_command", "offset": 0, "length": 6})]
        );
        assert!(command_entities("hi /start").is_empty());
    }
}
