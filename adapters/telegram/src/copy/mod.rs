//! Everything the bot says, one implementation per language: `ru.rs` (the default) and
//! `en.rs`. Handlers ask `copy(lang)` for a message by name instead of carrying both texts,
//! and what workflows tell users arrives as a typed [`Notice`] rendered here too. Being one
//! trait, a message added to one language and forgotten in the other does not compile.

mod en;
mod ru;

use aisha_workflows::avatar::Preset;
use aisha_workflows::notice::{Notice, TrainingEta};
use aisha_workflows::photos::PhotoProblem;
use aisha_workflows::product::Prices;
use aisha_workflows::provider::JobProgress;
use aisha_workflows::styles::Style;

use super::lang::Lang;

/// Whole minutes of `secs`, rounded up (a training's time left is said in minutes).
fn minutes(secs: u64) -> u64 {
    secs.div_ceil(60)
}

/// The bot's words in `lang`.
pub fn copy(lang: Lang) -> &'static dyn Texts {
    match lang {
        Lang::Ru => &ru::Ru,
        Lang::En => &en::En,
    }
}

/// Every message, button label and notice, in one language. Numbers arrive as they are
/// shown (a page number is 1-based).
pub trait Texts: Sync {
    // Start, help, menu, language.
    fn greeting(&self) -> &'static str;
    /// Appended to the greeting the first time.
    fn welcome_credits(&self, credits: i64) -> String;
    fn what_shall_we_do(&self) -> &'static str;
    fn help(&self, prices: Prices) -> String;
    fn nothing_to_cancel(&self) -> &'static str;
    fn cancelled(&self) -> &'static str;
    /// Said in the language just chosen.
    fn language_chosen(&self) -> &'static str;
    fn not_understood(&self) -> &'static str;
    fn unknown_command(&self) -> &'static str;
    /// The spinner's answer to a button whose data we cannot read.
    fn outdated_button(&self) -> &'static str;
    /// An update failed on our side for good.
    fn apology(&self) -> &'static str;
    /// Telegram's pre-checkout refusal.
    fn invoice_refused(&self) -> &'static str;

    // Creating an avatar.
    fn ask_avatar_name(&self) -> &'static str;
    fn bad_avatar_name(&self, len: usize) -> String;
    fn choose_preset(&self, name: &str, price: i64) -> String;
    fn send_photos(&self, min: usize, max: usize) -> String;
    fn photos_only_while_creating(&self) -> &'static str;
    fn photo_limit(&self, max: usize) -> String;
    fn photo_refused(&self, problem: &PhotoProblem) -> String;
    /// Why a photo cannot be used, as a clause.
    fn photo_problem(&self, problem: &PhotoProblem) -> String;
    fn photo_count_enough(&self, count: usize, max: usize) -> String;
    fn photo_count_short(&self, count: usize, min: usize) -> String;
    fn replacements_left(&self, left: usize) -> String;
    fn replacements_received(&self) -> &'static str;
    fn create_avatar_first(&self) -> &'static str;
    fn more_photos_needed(&self, missing: usize) -> String;
    fn training_unaffordable(&self, price: i64, balance: i64) -> String;
    fn training_queued(&self, name: &str, price: i64) -> String;
    fn another_training_running(&self) -> &'static str;

    // The avatar list.
    fn no_avatars(&self) -> &'static str;
    fn your_avatars(&self) -> &'static str;
    /// `status`: queued, training, ready or failed.
    fn avatar_status(&self, status: &str) -> &'static str;

    // Ordering portraits.
    fn need_ready_avatar(&self) -> &'static str;
    fn which_avatar(&self) -> &'static str;
    fn order_lost(&self) -> &'static str;
    fn pick_style(&self) -> &'static str;
    fn style_name(&self, style: &Style) -> &'static str;
    fn describe_portrait(&self) -> &'static str;
    fn bad_prompt(&self, len: usize) -> String;
    /// What the order is drawn from when it is a prompt (in place of a style's name).
    fn own_prompt(&self) -> &'static str;
    /// `what`: a style's name or [`Texts::own_prompt`].
    fn ask_aspect(&self, what: &str) -> String;
    fn ask_count(&self, price: i64) -> String;
    fn not_enough_credits(&self, price: i64, balance: i64) -> String;
    fn order_accepted(&self, count: u32, price: i64) -> String;
    /// The accepted message, edited as the order goes: queued, drawing, saving.
    fn progress(&self, progress: &JobProgress) -> String;
    /// The accepted message's last edit: the portraits follow,
    fn progress_done(&self) -> &'static str;
    /// or the order failed (its notice follows).
    fn progress_stopped(&self) -> &'static str;
    /// The training message, edited as the training goes, with the time it should still take.
    fn training_progress(&self, t: &TrainingEta, progress: &JobProgress) -> String;
    /// The training message's last edit: the avatar is ready (its notice follows),
    fn training_done(&self) -> &'static str;
    /// or the training failed.
    fn training_stopped(&self) -> &'static str;
    /// The message carrying the buttons under an album.
    fn what_next(&self) -> &'static str;

    // Upscaling a portrait.
    fn upscale_accepted(&self, price: i64) -> String;
    /// The same button pressed again: its upscale is already under way or done.
    fn upscale_already(&self) -> &'static str;
    /// The caption of an enlarged portrait sent again from the gallery.
    fn upscaled_again(&self) -> &'static str;

    // The gallery.
    fn gallery_empty(&self) -> &'static str;
    fn gallery_page(&self, page: u32) -> String;
    fn deleted(&self) -> &'static str;
    fn no_such_portrait(&self) -> &'static str;

    // Balance and payments.
    fn balance(&self, balance: i64) -> String;
    fn recent_entries(&self) -> &'static str;
    /// A ledger entry of `kind` (grant, purchase, reservation, refund, …) for `amount`.
    fn entry(&self, kind: &str, amount: i64) -> &'static str;
    fn top_up(&self) -> &'static str;
    fn pack_title(&self, credits: i64) -> String;
    fn pack_description(&self, credits: i64) -> String;
    fn payment_received(&self, credits: i64, balance: i64) -> String;

    // Buttons.
    fn create_avatar_button(&self) -> &'static str;
    fn portrait_button(&self) -> &'static str;
    fn gallery_button(&self) -> &'static str;
    fn balance_button(&self) -> &'static str;
    fn my_avatars_button(&self) -> &'static str;
    fn help_button(&self) -> &'static str;
    fn preset_button(&self, preset: Preset) -> &'static str;
    fn start_training_button(&self) -> &'static str;
    fn new_avatar_button(&self) -> &'static str;
    fn own_prompt_button(&self) -> &'static str;
    fn another_avatar_button(&self) -> &'static str;
    fn again_button(&self) -> &'static str;
    fn another_style_button(&self) -> &'static str;
    fn upscale_button(&self) -> &'static str;
    /// Upscale image `n` (1-based) of an album or a gallery page.
    fn upscale_numbered_button(&self, n: usize) -> String;
    /// Get the enlarged file of image `n` of a gallery page.
    fn upscaled_button(&self, n: usize) -> String;
    fn buy_button(&self, credits: i64, stars: u32) -> String;
    fn back_button(&self) -> &'static str;
    fn next_button(&self) -> &'static str;

    /// What a workflow tells the user.
    fn notice(&self, notice: &Notice) -> String;
}

#[cfg(test)]
mod tests {
    use aisha_workflows::avatar::Rejected;
    use aisha_workflows::blob::BlobKey;

    use super::*;

    fn refused() -> Notice {
        let rejected = [
            (
                3,
                PhotoProblem::TooSmall {
                    width: 300,
                    height: 400,
                    min: 512,
                },
            ),
            (5, PhotoProblem::Duplicate { of: 1 }),
            (7, PhotoProblem::NotAnImage),
        ];
        Notice::PhotosRejected {
            round: 1,
            rejected: rejected
                .into_iter()
                .map(|(photo, problem)| Rejected { photo, problem })
                .collect(),
        }
    }

    #[test]
    fn refused_photos_are_listed_one_by_one() {
        assert_eq!(
            copy(Lang::Ru).notice(&refused()),
            "Эти фото не подошли, пришлите замену:\n\
             фото 3: 300×400 пикселей — слишком мало: короткая сторона должна быть не меньше 512\n\
             фото 5: это то же фото, что и фото 1\n\
             фото 7: это не изображение"
        );
        assert_eq!(
            copy(Lang::En).notice(&refused()),
            "These photos can't be used, please send replacements:\n\
             photo 3: 300×400 px is too small: the short side must be at least 512 px\n\
             photo 5: the same photo as photo 1\n\
             photo 7: this is not an image"
        );
    }

    /// The English a user reads is the English of the workflows' diagnostic.
    #[test]
    fn a_photo_problem_reads_in_english_as_its_diagnostic() {
        let problems = [
            PhotoProblem::TooLarge {
                bytes: 25 << 20,
                max: 20 << 20,
            },
            PhotoProblem::NotAnImage,
            PhotoProblem::UnsupportedFormat {
                format: "Gif".into(),
            },
            PhotoProblem::TooSmall {
                width: 1,
                height: 2,
                min: 512,
            },
            PhotoProblem::TooManyPixels {
                width: 9000,
                height: 9000,
            },
            PhotoProblem::Corrupt {
                detail: "eof".into(),
            },
            PhotoProblem::Duplicate { of: 2 },
        ];
        for p in problems {
            assert_eq!(copy(Lang::En).photo_problem(&p), p.to_string());
        }
        assert_eq!(
            copy(Lang::Ru).photo_problem(&PhotoProblem::TooLarge {
                bytes: 25 << 20,
                max: 20 << 20,
            }),
            "файл весит 25.0 МБ, можно не больше 20 МБ"
        );
    }

    #[test]
    fn refunds_are_told_only_when_there_were_some() {
        let ru = copy(Lang::Ru);
        let en = copy(Lang::En);
        let failed = |refunded| Notice::AvatarFailed {
            name: "Анна".into(),
            refunded,
        };
        assert_eq!(
            ru.notice(&failed(150)),
            "Не получилось обучить аватар «Анна». 150 кредитов возвращены."
        );
        assert_eq!(
            ru.notice(&failed(0)),
            "Не получилось обучить аватар «Анна»."
        );
        assert_eq!(
            en.notice(&failed(150)),
            "Training avatar “Анна” failed. 150 credits were refunded."
        );
        assert_eq!(en.notice(&failed(0)), "Training avatar “Анна” failed.");
        let portrait = |refunded| Notice::PortraitFailed { refunded };
        assert_eq!(
            ru.notice(&portrait(20)),
            "Не получилось сделать портрет. 20 кредитов возвращены."
        );
        assert_eq!(ru.notice(&portrait(0)), "Не получилось сделать портрет.");
        assert_eq!(
            en.notice(&portrait(20)),
            "The portrait failed. 20 credits were refunded."
        );
        assert_eq!(en.notice(&portrait(0)), "The portrait failed.");
    }

    #[test]
    fn an_upscale_says_its_size_or_its_refund() {
        let ready = Notice::UpscaleReady {
            document: BlobKey::new(&["upscaled", "r", "image.jpg"]).unwrap(),
            width: 1536,
            height: 2048,
        };
        assert_eq!(
            copy(Lang::Ru).notice(&ready),
            "Готово: портрет ×2, 1536×2048 пикселей, файлом без сжатия."
        );
        assert_eq!(
            copy(Lang::En).notice(&ready),
            "Done: the portrait ×2, 1536×2048 px, as a file without compression."
        );
        let failed = |refunded| Notice::UpscaleFailed { refunded };
        assert_eq!(
            copy(Lang::Ru).notice(&failed(3)),
            "Не получилось увеличить портрет. 3 кредитов возвращены."
        );
        assert_eq!(copy(Lang::En).notice(&failed(0)), "The upscale failed.");
        assert_eq!(copy(Lang::Ru).upscale_button(), "🔍 Увеличить ×2");
        assert_eq!(copy(Lang::En).upscale_button(), "🔍 Upscale ×2");
    }

    #[test]
    fn portraits_say_how_many_and_what_was_withheld() {
        let image = BlobKey::new(&["portraits", "r", "0.jpg"]).unwrap();
        let ready = |withheld, refunded| Notice::PortraitsReady {
            images: vec![image.clone()],
            withheld,
            refunded,
        };
        assert_eq!(copy(Lang::Ru).notice(&ready(0, 0)), "Готово: 1 портрет(а).");
        assert_eq!(copy(Lang::En).notice(&ready(0, 0)), "Done: 1 portrait(s).");
        assert_eq!(
            copy(Lang::Ru).notice(&ready(1, 5)),
            "Готово: 1 портрет(а). 1 не прошли проверку и не отправлены; 5 кредитов возвращены."
        );
        assert_eq!(
            copy(Lang::En).notice(&ready(1, 5)),
            "Done: 1 portrait(s). 1 did not pass the safety check and were withheld; 5 credits refunded."
        );
        assert_eq!(
            copy(Lang::Ru).notice(&Notice::AvatarReady { name: "Me".into() }),
            "Аватар «Me» готов! Выберите стиль портрета."
        );
        assert_eq!(
            copy(Lang::En).notice(&Notice::AvatarReady { name: "Me".into() }),
            "Avatar “Me” is ready! Pick a portrait style."
        );
    }
}
