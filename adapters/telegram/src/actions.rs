//! Inline buttons' callback data (at most 64 bytes): parsed into a typed action, never
//! matched as strings in handlers.

use aisha_workflows::avatar::Preset;
use aisha_workflows::provider::Aspect;

use super::lang::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateAvatar,
    Generate,
    Gallery(u32),
    Balance,
    Help,
    Avatars,
    /// Generate with another avatar than the main one.
    PickAvatar,
    Preset(Preset),
    Train,
    /// Generate with this avatar.
    Avatar(String),
    StylePage(u32),
    Style(String),
    FreePrompt,
    Aspect(Aspect),
    Count(u32),
    /// The same order again (a run id).
    Again(String),
    /// The same avatar, another style (a run id).
    OtherStyle(String),
    /// Enlarge image `idx` of a run ×2, or send its enlarged file when there is one.
    Upscale {
        run: String,
        idx: u32,
    },
    Delete(String),
    Buy(i64),
    Lang(Lang),
}

impl Action {
    pub fn data(&self) -> String {
        match self {
            Action::CreateAvatar => "m:avatar".into(),
            Action::Generate => "m:gen".into(),
            Action::Gallery(p) => format!("g:{p}"),
            Action::Balance => "m:balance".into(),
            Action::Help => "m:help".into(),
            Action::Avatars => "m:avatars".into(),
            Action::PickAvatar => "m:pick".into(),
            Action::Preset(p) => format!(
                "p:{}",
                match p {
                    Preset::Fast => "fast",
                    Preset::Balanced => "balanced",
                    Preset::Quality => "quality",
                }
            ),
            Action::Train => "train".into(),
            Action::Avatar(id) => format!("a:{id}"),
            Action::StylePage(p) => format!("sp:{p}"),
            Action::Style(id) => format!("s:{id}"),
            Action::FreePrompt => "free".into(),
            Action::Aspect(a) => format!("r:{}", aspect_code(*a)),
            Action::Count(n) => format!("n:{n}"),
            Action::Again(run) => format!("again:{run}"),
            Action::OtherStyle(run) => format!("other:{run}"),
            Action::Upscale { run, idx } => format!("up:{idx}:{run}"),
            Action::Delete(id) => format!("del:{id}"),
            Action::Buy(credits) => format!("buy:{credits}"),
            Action::Lang(l) => format!("lang:{}", l.code()),
        }
    }

    pub fn parse(data: &str) -> Option<Action> {
        let (head, rest) = data.split_once(':').unwrap_or((data, ""));
        Some(match (head, rest) {
            ("m", "avatar") => Action::CreateAvatar,
            ("m", "gen") => Action::Generate,
            ("m", "balance") => Action::Balance,
            ("m", "help") => Action::Help,
            ("m", "avatars") => Action::Avatars,
            ("m", "pick") => Action::PickAvatar,
            ("g", p) => Action::Gallery(p.parse().ok()?),
            ("p", "fast") => Action::Preset(Preset::Fast),
            ("p", "balanced") => Action::Preset(Preset::Balanced),
            ("p", "quality") => Action::Preset(Preset::Quality),
            ("train", "") => Action::Train,
            ("a", id) if id_like(id) => Action::Avatar(id.into()),
            ("sp", p) => Action::StylePage(p.parse().ok()?),
            ("s", id) if id_like(id) => Action::Style(id.into()),
            ("free", "") => Action::FreePrompt,
            ("r", a) => Action::Aspect(a.replace('x', ":").parse().ok()?),
            ("n", n) => Action::Count(n.parse().ok().filter(|n| (1..=4).contains(n))?),
            ("again", id) if id_like(id) => Action::Again(id.into()),
            ("other", id) if id_like(id) => Action::OtherStyle(id.into()),
            ("up", rest) => {
                let (idx, run) = rest.split_once(':')?;
                if !id_like(run) {
                    return None;
                }
                Action::Upscale {
                    run: run.into(),
                    idx: idx.parse().ok().filter(|i| *i < 4)?,
                }
            }
            ("del", id) if id_like(id) => Action::Delete(id.into()),
            ("buy", c) => Action::Buy(c.parse().ok()?),
            ("lang", l) => Action::Lang(Lang::parse(l)?),
            _ => return None,
        })
    }
}

fn aspect_code(a: Aspect) -> &'static str {
    match a {
        Aspect::Tall => "9x16",
        Aspect::Portrait => "3x4",
        Aspect::Square => "1x1",
        Aspect::Wide => "16x9",
    }
}

fn id_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_within_64_bytes() {
        let id = "0196f2c4-7b1e-7a3c-9d2e-5f6a7b8c9d0e".to_string();
        for a in [
            Action::CreateAvatar,
            Action::Generate,
            Action::Gallery(3),
            Action::Balance,
            Action::Help,
            Action::Avatars,
            Action::PickAvatar,
            Action::Preset(Preset::Quality),
            Action::Train,
            Action::Avatar(id.clone()),
            Action::StylePage(1),
            Action::Style("business".into()),
            Action::FreePrompt,
            Action::Aspect(Aspect::Wide),
            Action::Count(4),
            Action::Again(id.clone()),
            Action::OtherStyle(id.clone()),
            Action::Upscale {
                run: id.clone(),
                idx: 3,
            },
            Action::Delete(id.clone()),
            Action::Buy(500),
            Action::Lang(Lang::En),
        ] {
            let d = a.data();
            assert!(d.len() <= 64, "{d}");
            assert_eq!(Action::parse(&d), Some(a));
        }
    }

    #[test]
    fn junk_is_refused() {
        for d in [
            "",
            "x",
            "n:9",
            "n:0",
            "a:",
            "a:../x",
            "lang:de",
            "g:-1",
            "r:2:3",
            "up:4:r",
            "up:0:",
            "up:0:../x",
            "up:r",
        ] {
            assert_eq!(Action::parse(d), None, "{d}");
        }
    }
}
