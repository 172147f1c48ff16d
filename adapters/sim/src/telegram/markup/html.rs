//! `parse_mode: HTML`: the tags Telegram supports, HTML entities, and its error texts.

use super::{Out, Rendered, cant_parse};
use crate::telegram::error::ApiError;

struct OpenTag {
    name: String,
    kind: Option<&'static str>,
    start: usize,
    extra: Option<(&'static str, String)>,
}

fn html_kind(name: &str, attrs: &[(String, String)]) -> Option<Option<&'static str>> {
    let attr = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    Some(match name {
        "b" | "strong" => Some("bold"),
        "i" | "em" => Some("italic"),
        "u" | "ins" => Some("underline"),
        "s" | "strike" | "del" => Some("strikethrough"),
        "tg-spoiler" => Some("spoiler"),
        "span" if attr("class") == Some("tg-spoiler") => Some("spoiler"),
        "a" => attr("href").map(|_| "text_link"),
        "code" => Some("code"),
        "pre" => Some("pre"),
        "blockquote" if attrs.iter().any(|(a, _)| a == "expandable") => {
            Some("expandable_blockquote")
        }
        "blockquote" => Some("blockquote"),
        // Custom emoji need ids only Telegram knows: kept as plain text.
        "tg-emoji" => None,
        _ => return None,
    })
}

fn parse_attrs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let key = rest[..key_end].trim().to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let (v, tail) = match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &r[1..];
                    let end = body.find(q).unwrap_or(body.len());
                    (&body[..end], body.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = r.find(' ').unwrap_or(r.len());
                    (&r[..end], &r[end..])
                }
            };
            rest = tail.trim_start();
            unescape_html(v)
        } else {
            String::new()
        };
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

fn html_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

fn unescape_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after
            .find(';')
            .filter(|&j| j <= 10)
            .and_then(|j| html_entity(&after[..j]).map(|c| (c, j)))
        {
            Some((c, j)) => {
                out.push(c);
                rest = &after[j + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn parse(text: &str) -> Result<Rendered, ApiError> {
    let mut out = Out::default();
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '<' => {
                let Some(len) = text[i..].find('>') else {
                    return Err(cant_parse(format!("Unclosed start tag at byte offset {i}")));
                };
                let inner = &text[i + 1..i + len];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    let Some(open) = stack.pop() else {
                        return Err(cant_parse(format!("Unexpected end tag at byte offset {i}")));
                    };
                    if open.name != name {
                        return Err(cant_parse(format!(
                            "Unmatched end tag at byte offset {i}, expected \"</{}>\", found \"</{name}>\"",
                            open.name
                        )));
                    }
                    // `<pre><code class="language-x">`: the language belongs to the pre.
                    let in_pre = stack.last().is_some_and(|t| t.name == "pre");
                    match (open.kind, &open.extra) {
                        (Some("code"), Some((_, lang))) if in_pre => {
                            if let Some(pre) = stack.last_mut() {
                                pre.extra = Some(("language", lang.clone()));
                            }
                        }
                        (Some(kind), extra) => out.entity(kind, open.start, extra.clone()),
                        (None, _) => {}
                    }
                } else {
                    let inner = inner.trim_end_matches('/');
                    let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
                    let name = inner[..name_end].to_ascii_lowercase();
                    let attrs = parse_attrs(&inner[name_end..]);
                    let Some(kind) = html_kind(&name, &attrs) else {
                        return Err(cant_parse(format!(
                            "Unsupported start tag \"{name}\" at byte offset {i}"
                        )));
                    };
                    let attr = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
                    let extra = match name.as_str() {
                        "a" => attr("href").map(|h| ("url", h)),
                        "code" => attr("class")
                            .and_then(|c| c.strip_prefix("language-").map(str::to_string))
                            .map(|l| ("language", l)),
                        _ => None,
                    };
                    stack.push(OpenTag {
                        name,
                        kind,
                        start: out.len16,
                        extra,
                    });
                }
                i += len + 1;
            }
            '&' => {
                let after = &text[i + 1..];
                match after
                    .find(';')
                    .filter(|&j| j <= 10)
                    .and_then(|j| html_entity(&after[..j]).map(|c| (c, j)))
                {
                    Some((c, j)) => {
                        out.push(c);
                        i += j + 2;
                    }
                    None => {
                        out.push('&');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(cant_parse(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.name
        )));
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use serde_json::json;

    #[test]
    fn html_becomes_text_and_entities() {
        let r = render(
            "<b>Привет</b>, <a href=\"https://x.y/?a=1&amp;b=2\">link</a> &lt;3",
            Some("HTML"),
        )
        .unwrap();
        assert_eq!(r.text, "Привет, link <3");
        assert_eq!(
            r.entities[0],
            json!({"type": "bold", "offset": 0, "length": 6})
        );
        assert_eq!(
            r.entities[1],
            json!({"type": "text_link", "offset": 8, "length": 4, "url": "https://x.y/?a=1&b=2"})
        );
        let pre = render(
            "<pre><code class=\"language-rust\">fn</code></pre>",
            Some("HTML"),
        )
        .unwrap();
        assert_eq!(
            pre.entities,
            vec![json!({"type": "pre", "offset": 0, "length": 2, "language": "rust"})]
        );
    }

    #[test]
    fn bad_html_is_refused() {
        for bad in ["<b>open", "<div>x</div>", "x</b>", "<b><i>x</b></i>"] {
            assert!(render(bad, Some("HTML")).is_err(), "{bad}");
        }
    }
}
