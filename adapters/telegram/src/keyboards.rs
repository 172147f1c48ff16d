//! Inline keyboards, in the user's language (their labels are in `copy`).

use aisha_workflows::avatar::Preset;
use aisha_workflows::blob::BlobKey;
use aisha_workflows::gallery::Portrait;
use aisha_workflows::provider::Aspect;
use aisha_workflows::styles::STYLES;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::actions::Action;
use super::config::Pack;
use super::copy::copy;
use super::lang::Lang;

/// Styles per page of the catalogue.
pub const STYLES_PER_PAGE: usize = 4;

fn button(text: impl Into<String>, a: Action) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.into(), a.data())
}

pub fn menu(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![
            button(copy(l).create_avatar_button(), Action::CreateAvatar),
            button(copy(l).portrait_button(), Action::Generate),
        ],
        vec![
            button(copy(l).gallery_button(), Action::Gallery(0)),
            button(copy(l).balance_button(), Action::Balance),
        ],
        vec![
            button(copy(l).my_avatars_button(), Action::Avatars),
            button(copy(l).help_button(), Action::Help),
        ],
    ])
}

pub fn presets(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![button(
            copy(l).preset_button(Preset::Fast),
            Action::Preset(Preset::Fast),
        )],
        vec![button(
            copy(l).preset_button(Preset::Balanced),
            Action::Preset(Preset::Balanced),
        )],
        vec![button(
            copy(l).preset_button(Preset::Quality),
            Action::Preset(Preset::Quality),
        )],
    ])
}

pub fn train(l: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(
        copy(l).start_training_button(),
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
        copy(l).new_avatar_button(),
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
        .map(|s| vec![button(copy(l).style_name(s), Action::Style(s.id.into()))])
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
        button(copy(l).own_prompt_button(), Action::FreePrompt),
        button(copy(l).another_avatar_button(), Action::PickAvatar),
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

/// Under delivered portraits: "again", "another style", and "upscale ×2" for each image
/// (numbered as in the album when there are several). An image's key names its place in
/// the run (`portraits/{run}/{idx}.jpg`), which the withheld ones leave gaps in.
pub fn after_portraits(l: Lang, run_id: &str, images: &[BlobKey]) -> InlineKeyboardMarkup {
    let idxs: Vec<u32> = images
        .iter()
        .filter_map(|k| {
            k.as_str()
                .rsplit('/')
                .next()?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let upscale = |idx: u32| Action::Upscale {
        run: run_id.into(),
        idx,
    };
    let upscales: Vec<InlineKeyboardButton> = match idxs.as_slice() {
        [] => vec![],
        [one] => vec![button(copy(l).upscale_button(), upscale(*one))],
        many => many
            .iter()
            .enumerate()
            .map(|(n, idx)| button(copy(l).upscale_numbered_button(n + 1), upscale(*idx)))
            .collect(),
    };
    let mut rows = vec![vec![
        button(copy(l).again_button(), Action::Again(run_id.into())),
        button(
            copy(l).another_style_button(),
            Action::OtherStyle(run_id.into()),
        ),
    ]];
    if !upscales.is_empty() {
        rows.push(upscales);
    }
    InlineKeyboardMarkup::new(rows)
}

pub fn packs(l: Lang, packs: &[Pack]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(
        packs
            .iter()
            .map(|p| {
                vec![button(
                    copy(l).buy_button(p.credits, p.stars),
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

/// Delete buttons for the shown items (numbered as in the caption), beside each its enlarged
/// version (to get it, or to make it), and paging.
pub fn gallery(l: Lang, page: u32, items: &[Portrait], more: bool) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = items
        .chunks(5)
        .enumerate()
        .flat_map(|(c, chunk)| {
            let n = |i: usize| c * 5 + i + 1;
            let deletes = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| button(format!("🗑 {}", n(i)), Action::Delete(p.id.clone())))
                .collect();
            let upscales = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let label = match p.upscaled_key {
                        Some(_) => copy(l).upscaled_button(n(i)),
                        None => copy(l).upscale_numbered_button(n(i)),
                    };
                    let upscale = Action::Upscale {
                        run: p.run_id.clone(),
                        idx: u32::try_from(p.idx).unwrap_or(0),
                    };
                    button(label, upscale)
                })
                .collect();
            [deletes, upscales]
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button(copy(l).back_button(), Action::Gallery(page - 1)));
    }
    if more {
        nav.push(button(copy(l).next_button(), Action::Gallery(page + 1)));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    InlineKeyboardMarkup::new(rows)
}
