//! Inline keyboards, in the user's language.

use aisha_workflows::avatar::Preset;
use aisha_workflows::provider::Aspect;
use aisha_workflows::styles::STYLES;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::actions::Action;
use super::config::Pack;
use super::lang::Lang;

/// Styles per page of the catalogue.
pub const STYLES_PER_PAGE: usize = 4;

fn button(text: impl Into<String>, a: Action) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.into(), a.data())
}

pub fn menu(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![
            button(
                l.pick("🧑‍🎨 Создать аватар", "🧑‍🎨 Create avatar"),
                Action::CreateAvatar,
            ),
            button(l.pick("✨ Портрет", "✨ Portrait"), Action::Generate),
        ],
        vec![
            button(l.pick("🖼 Галерея", "🖼 Gallery"), Action::Gallery(0)),
            button(l.pick("💰 Баланс", "💰 Balance"), Action::Balance),
        ],
        vec![
            button(l.pick("👤 Мои аватары", "👤 My avatars"), Action::Avatars),
            button(l.pick("❓ Помощь", "❓ Help"), Action::Help),
        ],
    ])
}

pub fn presets(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![button(
            l.pick("⚡ Быстро (1000 шагов)", "⚡ Fast (1000 steps)"),
            Action::Preset(Preset::Fast),
        )],
        vec![button(
            l.pick("⚖️ Сбалансированно (2500)", "⚖️ Balanced (2500)"),
            Action::Preset(Preset::Balanced),
        )],
        vec![button(
            l.pick("💎 Качество (4000)", "💎 Quality (4000)"),
            Action::Preset(Preset::Quality),
        )],
    ])
}

pub fn train(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(
        l.pick("🚀 Начать обучение", "🚀 Start training"),
        Action::Train,
    )]])
}

/// Ready avatars to pick from: (id, name).
pub fn avatars(l: Lang, list: &[(String, String)]) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = list
        .iter()
        .map(|(id, name)| vec![button(format!("👤 {name}"), Action::Avatar(id.clone()))])
        .collect();
    rows.push(vec![button(
        l.pick("🧑‍🎨 Новый аватар", "🧑‍🎨 New avatar"),
        Action::CreateAvatar,
    )]);
    InlineKeyboardMarkup::new(rows)
}

pub fn styles(l: Lang, page: usize) -> InlineKeyboardMarkup {
    let pages = STYLES.len().div_ceil(STYLES_PER_PAGE);
    let page = page.min(pages.saturating_sub(1));
    let mut rows: Vec<Vec<InlineKeyboardButton>> = STYLES
        .iter()
        .skip(page * STYLES_PER_PAGE)
        .take(STYLES_PER_PAGE)
        .map(|s| {
            vec![button(
                l.pick(s.name_ru, s.name_en),
                Action::Style(s.id.into()),
            )]
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button("◀️", Action::StylePage(page as u32 - 1)));
    }
    if page + 1 < pages {
        nav.push(button("▶️", Action::StylePage(page as u32 + 1)));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    rows.push(vec![
        button(
            l.pick("✍️ Свой промпт", "✍️ My own prompt"),
            Action::FreePrompt,
        ),
        button(
            l.pick("👤 Другой аватар", "👤 Another avatar"),
            Action::PickAvatar,
        ),
    ]);
    InlineKeyboardMarkup::new(rows)
}

pub fn aspects(_l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        button("9:16", Action::Aspect(Aspect::Tall)),
        button("3:4", Action::Aspect(Aspect::Portrait)),
        button("1:1", Action::Aspect(Aspect::Square)),
        button("16:9", Action::Aspect(Aspect::Wide)),
    ]])
}

/// 1–4 images, each with its price.
pub fn counts(_l: Lang, price: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        (1..=4u32)
            .map(|n| button(format!("{n} · {}💰", price * n as i64), Action::Count(n)))
            .collect::<Vec<_>>(),
    ])
}

pub fn after_portraits(l: Lang, run_id: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        button(
            l.pick("🔁 Ещё раз", "🔁 Again"),
            Action::Again(run_id.into()),
        ),
        button(
            l.pick("🎨 Другой стиль", "🎨 Another style"),
            Action::OtherStyle(run_id.into()),
        ),
    ]])
}

pub fn packs(l: Lang, packs: &[Pack]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(
        packs
            .iter()
            .map(|p| {
                vec![button(
                    l.pick(
                        format!("Купить {} кредитов за {} ⭐", p.credits, p.stars),
                        format!("Buy {} credits for {} ⭐", p.credits, p.stars),
                    ),
                    Action::Buy(p.credits),
                )]
            })
            .collect::<Vec<_>>(),
    )
}

pub fn languages() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        button("🇷🇺 Русский", Action::Lang(Lang::Ru)),
        button("🇬🇧 English", Action::Lang(Lang::En)),
    ]])
}

/// Delete buttons for the shown items (numbered as in the caption), and paging.
pub fn gallery(l: Lang, page: u32, ids: &[String], more: bool) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = ids
        .chunks(5)
        .enumerate()
        .map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, id)| button(format!("🗑 {}", c * 5 + i + 1), Action::Delete(id.clone())))
                .collect()
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button(
            l.pick("◀️ Назад", "◀️ Back"),
            Action::Gallery(page - 1),
        ));
    }
    if more {
        nav.push(button(
            l.pick("Дальше ▶️", "Next ▶️"),
            Action::Gallery(page + 1),
        ));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    InlineKeyboardMarkup::new(rows)
}
