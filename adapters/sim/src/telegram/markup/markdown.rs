//! `parse_mode: MarkdownV2` (reserved characters must be escaped) and the legacy `Markdown`.

use super::{Out, Rendered, cant_parse};
use crate::telegram::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Md {
    Bold,
    Italic,
    Underline,
    Strike,
    Spoiler,
    Link,
    Quote,
}

impl Md {
    fn name(self) -> &'static str {
        match self {
            Md::Bold => "Bold",
            Md::Italic => "Italic",
            Md::Underline => "Underline",
            Md::Strike => "Strikethrough",
            Md::Spoiler => "Spoiler",
            Md::Link => "TextUrl",
            Md::Quote => "BlockQuote",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Md::Bold => "bold",
            Md::Italic => "italic",
            Md::Underline => "underline",
            Md::Strike => "strikethrough",
            Md::Spoiler => "spoiler",
            Md::Link => "text_link",
            Md::Quote => "blockquote",
        }
    }
}

/// Reads up to the closing `end`, honouring `\` escapes; returns (content, bytes consumed).
fn until(text: &str, end: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(end) {
            return Some((out, i + end.len()));
        }
        let c = text[i..].chars().next()?;
        if c == '\\'
            && let Some(n) = text[i + 1..].chars().next()
        {
            out.push(n);
            i += 1 + n.len_utf8();
            continue;
        }
        out.push(c);
        i += c.len_utf8();
    }
    None
}

pub(super) fn parse_v2(text: &str) -> Result<Rendered, ApiError> {
    let mut out = Out::default();
    let mut stack: Vec<(Md, usize, usize)> = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    let toggle = |stack: &mut Vec<(Md, usize, usize)>, out: &mut Out, md: Md, at: usize| match stack
        .iter()
        .rposition(|(m, _, _)| *m == md)
    {
        Some(pos) => {
            let (_, start, _) = stack.remove(pos);
            out.entity(md.kind(), start, None);
        }
        None => stack.push((md, out.len16, at)),
    };
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        let was_line_start = line_start;
        line_start = false;
        match c {
            '\\' => {
                let Some(n) = rest[1..].chars().next() else {
                    return Err(cant_parse(
                        "Character '\\' is reserved and must be escaped with the preceding '\\'",
                    ));
                };
                out.push(n);
                i += 1 + n.len_utf8();
                continue;
            }
            '\n' => {
                if !rest[1..].starts_with('>')
                    && let Some(pos) = stack.iter().position(|(m, _, _)| *m == Md::Quote)
                {
                    let (_, start, _) = stack.remove(pos);
                    out.entity("blockquote", start, None);
                }
                out.push('\n');
                line_start = true;
            }
            '>' if was_line_start => {
                if !stack.iter().any(|(m, _, _)| *m == Md::Quote) {
                    stack.push((Md::Quote, out.len16, i));
                }
            }
            '*' => toggle(&mut stack, &mut out, Md::Bold, i),
            '~' => toggle(&mut stack, &mut out, Md::Strike, i),
            '_' if rest.starts_with("__") => {
                toggle(&mut stack, &mut out, Md::Underline, i);
                i += 2;
                continue;
            }
            '_' => toggle(&mut stack, &mut out, Md::Italic, i),
            '|' if rest.starts_with("||") => {
                toggle(&mut stack, &mut out, Md::Spoiler, i);
                i += 2;
                continue;
            }
            '`' if rest.starts_with("```") => {
                let Some((body, used)) = until(&rest[3..], "```") else {
                    return Err(cant_parse(format!(
                        "Can't find end of Pre entity at byte offset {i}"
                    )));
                };
                let (lang, code) = match body.split_once('\n') {
                    Some((l, c)) if !l.is_empty() && !l.contains(' ') => (Some(l.to_string()), c),
                    _ => (None, body.as_str()),
                };
                let start = out.len16;
                code.chars().for_each(|ch| out.push(ch));
                out.entity("pre", start, lang.map(|l| ("language", l)));
                i += 3 + used;
                continue;
            }
            '`' => {
                let Some((body, used)) = until(&rest[1..], "`") else {
                    return Err(cant_parse(format!(
                        "Can't find end of Code entity at byte offset {i}"
                    )));
                };
                let start = out.len16;
                body.chars().for_each(|ch| out.push(ch));
                out.entity("code", start, None);
                i += 1 + used;
                continue;
            }
            '[' => stack.push((Md::Link, out.len16, i)),
            ']' if stack.last().is_some_and(|(m, _, _)| *m == Md::Link) => {
                let Some(url_part) = rest[1..].strip_prefix('(') else {
                    return Err(cant_parse(
                        "Character ']' is reserved and must be escaped with the preceding '\\'",
                    ));
                };
                let Some((url, used)) = until(url_part, ")") else {
                    return Err(cant_parse(format!(
                        "Can't find end of a URL at byte offset {i}"
                    )));
                };
                if let Some((_, start, _)) = stack.pop() {
                    out.entity("text_link", start, Some(("url", url)));
                }
                i += 2 + used;
                continue;
            }
            ']' | '(' | ')' | '>' | '#' | '+' | '-' | '=' | '|' | '{' | '}' | '.' | '!' => {
                return Err(cant_parse(format!(
                    "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )));
            }
            c => out.push(c),
        }
        i += c.len_utf8();
    }
    if let Some(pos) = stack.iter().position(|(m, _, _)| *m == Md::Quote) {
        let (_, start, _) = stack.remove(pos);
        out.entity("blockquote", start, None);
    }
    if let Some((md, _, at)) = stack.first() {
        return Err(cant_parse(format!(
            "Can't find end of {} entity at byte offset {at}",
            md.name()
        )));
    }
    Ok(out.finish())
}

/// The legacy `Markdown` mode: `*bold*`, `_italic_`, `` `code` ``, pre, `[text](url)`;
/// no nesting, no escapes needed elsewhere.
pub(super) fn parse_legacy(text: &str) -> Result<Rendered, ApiError> {
    let mut out = Out::default();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        let (marker, kind) = match c {
            '*' => ("*", "bold"),
            '_' => ("_", "italic"),
            '`' if rest.starts_with("```") => ("```", "pre"),
            '`' => ("`", "code"),
            '[' => ("]", "text_link"),
            c => {
                out.push(c);
                i += c.len_utf8();
                continue;
            }
        };
        let open = if kind == "text_link" { 1 } else { marker.len() };
        let body_start = i + open;
        let Some(len) = text[body_start..].find(marker) else {
            return Err(cant_parse(format!(
                "Can't find end of the entity starting at byte offset {i}"
            )));
        };
        let body = &text[body_start..body_start + len];
        let mut next = body_start + len + marker.len();
        let mut extra = None;
        if kind == "text_link" {
            let tail = &text[next..];
            let Some(close) = tail.strip_prefix('(').and_then(|t| t.find(')')) else {
                return Err(cant_parse(format!(
                    "Can't find end of the entity starting at byte offset {i}"
                )));
            };
            extra = Some(("url", tail[1..close + 1].to_string()));
            next += close + 2;
        }
        let start = out.len16;
        body.chars().for_each(|ch| out.push(ch));
        out.entity(kind, start, extra);
        i = next;
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use serde_json::json;

    #[test]
    fn markdown_v2_needs_escapes() {
        let err = render("Готово.", Some("MarkdownV2")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
        );
        let r = render(
            "*Готово*\\. __u__ [a](https://x\\)y) `c\\`d`",
            Some("MarkdownV2"),
        )
        .unwrap();
        assert_eq!(r.text, "Готово. u a c`d");
        let kinds: Vec<_> = r
            .entities
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["bold", "underline", "text_link", "code"]);
        assert_eq!(r.entities[2]["url"], "https://x)y");
        assert!(render("*open", Some("MarkdownV2")).is_err());
    }

    #[test]
    fn quotes_and_legacy_markdown() {
        let r = render(">quoted\nplain", Some("MarkdownV2")).unwrap();
        assert_eq!(r.text, "quoted\nplain");
        assert_eq!(
            r.entities,
            vec![json!({"type": "blockquote", "offset": 0, "length": 6})]
        );
        let l = render("*b* 1.5 [t](http://u)", Some("Markdown")).unwrap();
        assert_eq!(l.text, "b 1.5 t");
        assert!(render("*b", Some("Markdown")).is_err());
    }
}
