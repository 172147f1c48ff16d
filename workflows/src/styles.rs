//! The style catalogue: what users pick from, in Russian and English, each a prompt template
//! around the avatar's trigger phrase and a default aspect ratio.

use serde::Serialize;

use crate::provider::Aspect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Style {
    pub id: &'static str,
    pub name_ru: &'static str,
    pub name_en: &'static str,
    /// `{trigger}` is replaced by the avatar's trigger phrase.
    pub template: &'static str,
    pub aspect: Aspect,
}

pub const STYLES: &[Style] = &[
    Style {
        id: "business",
        name_ru: "Деловой портрет",
        name_en: "Business portrait",
        template: "professional headshot of {trigger}, navy suit, soft studio light, neutral grey background, 85mm lens",
        aspect: Aspect::Portrait,
    },
    Style {
        id: "cinematic",
        name_ru: "Кинокадр",
        name_en: "Cinematic still",
        template: "cinematic film still of {trigger} walking through a neon-lit street at night, rain, shallow depth of field",
        aspect: Aspect::Wide,
    },
    Style {
        id: "oil",
        name_ru: "Масляная живопись",
        name_en: "Oil painting",
        template: "oil painting portrait of {trigger} in the style of the old masters, dramatic chiaroscuro, visible brush strokes",
        aspect: Aspect::Portrait,
    },
    Style {
        id: "anime",
        name_ru: "Аниме",
        name_en: "Anime",
        template: "anime illustration of {trigger}, vibrant colours, detailed eyes, cherry blossoms",
        aspect: Aspect::Square,
    },
    Style {
        id: "astronaut",
        name_ru: "Космонавт",
        name_en: "Astronaut",
        template: "{trigger} as an astronaut on the Moon, Earth in the sky, photorealistic, helmet under the arm",
        aspect: Aspect::Tall,
    },
    Style {
        id: "fairytale",
        name_ru: "Сказка",
        name_en: "Fairy tale",
        template: "{trigger} as a hero of a Russian fairy tale, birch forest, golden autumn, Bilibin style",
        aspect: Aspect::Tall,
    },
];

pub fn find(id: &str) -> Option<&'static Style> {
    STYLES.iter().find(|s| s.id == id)
}

impl Style {
    pub fn prompt(&self, trigger: &str) -> String {
        self.template.replace("{trigger}", trigger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_names_the_trigger_once() {
        for s in STYLES {
            assert_eq!(s.template.matches("{trigger}").count(), 1, "{}", s.id);
            assert!(s.prompt("ohwx").contains("ohwx"));
        }
        assert!(find("oil").is_some() && find("nope").is_none());
    }
}
