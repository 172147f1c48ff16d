//! English, for users whose Telegram speaks something else than Russian, or who chose it.

use aisha_workflows::avatar::Preset;
use aisha_workflows::notice::{Notice, TrainingEta};
use aisha_workflows::photos::PhotoProblem;
use aisha_workflows::product::Prices;
use aisha_workflows::provider::JobProgress;
use aisha_workflows::styles::Style;

use super::{Texts, minutes};

pub struct En;

impl Texts for En {
    fn greeting(&self) -> &'static str {
        "Hi! I'm Aisha: I train your personal avatar from 10–20 selfies and make portraits of you in any style."
    }

    fn welcome_credits(&self, credits: i64) -> String {
        format!("\n\n🎁 Here are {credits} credits to start with.")
    }

    fn what_shall_we_do(&self) -> &'static str {
        "What shall we do?"
    }

    fn help(&self, p: Prices) -> String {
        format!(
            "How it works:\n1. “Create avatar”: a name, a training mode and 10–20 photos of you (face clearly visible, different angles; JPG/PNG/WEBP, at least 512 px, up to 20 MB). Training costs {} credits.\n2. “Portrait”: pick a style or write your own prompt, an aspect ratio and how many images ({} credits each).\n3. “🔍 Upscale ×2” under a portrait: the same portrait twice as large, as an uncompressed file ({} credits).\n4. If something fails, the credits come back.\n\nCommands: /start, /avatar, /avatars, /generate, /gallery, /balance, /language, /cancel, /help",
            p.avatar, p.image, p.upscale
        )
    }

    fn nothing_to_cancel(&self) -> &'static str {
        "Nothing to cancel."
    }

    fn cancelled(&self) -> &'static str {
        "Cancelled."
    }

    fn language_chosen(&self) -> &'static str {
        "English it is."
    }

    fn not_understood(&self) -> &'static str {
        "I understand text, photos and buttons. /help shows what I can do."
    }

    fn unknown_command(&self) -> &'static str {
        "Unknown command. /help lists them."
    }

    fn outdated_button(&self) -> &'static str {
        "This button is outdated"
    }

    fn apology(&self) -> &'static str {
        "Something went wrong on our side and this message was not handled. Please try again a bit later."
    }

    fn invoice_refused(&self) -> &'static str {
        "This invoice is outdated or not yours. Open “Balance” and try again."
    }

    fn ask_avatar_name(&self) -> &'static str {
        "What shall we call the avatar? (2–50 characters)"
    }

    fn bad_avatar_name(&self, len: usize) -> String {
        format!("The name must be 2 to 50 characters; this one has {len}. Try again.")
    }

    fn choose_preset(&self, name: &str, price: i64) -> String {
        format!("“{name}”. Choose the training mode (same price: {price} credits):")
    }

    fn send_photos(&self, min: usize, max: usize) -> String {
        format!(
            "Send {min} to {max} photos where your face is clearly visible: different angles, light and backgrounds. Albums, photos or files are fine."
        )
    }

    fn photos_only_while_creating(&self) -> &'static str {
        "I take photos while creating an avatar: press “Create avatar”."
    }

    fn photo_limit(&self, max: usize) -> String {
        format!("That's {max} photos already, the most I take. Press “Start training”.")
    }

    fn photo_refused(&self, problem: &PhotoProblem) -> String {
        format!(
            "❌ This photo can't be used: {}.",
            self.photo_problem(problem)
        )
    }

    fn photo_problem(&self, problem: &PhotoProblem) -> String {
        match problem {
            PhotoProblem::TooLarge { bytes, max } => format!(
                "the file is {:.1} MB, at most {} MB is accepted",
                *bytes as f64 / 1048576.0,
                max >> 20
            ),
            PhotoProblem::NotAnImage => "this is not an image".into(),
            PhotoProblem::UnsupportedFormat { format } => {
                format!("{format} is not accepted: send JPEG, PNG or WEBP")
            }
            PhotoProblem::TooSmall { width, height, min } => format!(
                "{width}×{height} px is too small: the short side must be at least {min} px"
            ),
            PhotoProblem::TooManyPixels { width, height } => {
                format!("{width}×{height} px is more than we accept")
            }
            PhotoProblem::Corrupt { detail } => format!("the image is damaged ({detail})"),
            PhotoProblem::Duplicate { of } => format!("the same photo as photo {of}"),
        }
    }

    fn photo_count_enough(&self, count: usize, max: usize) -> String {
        format!("✅ {count} photos. You can start the training or send more (up to {max}).")
    }

    fn photo_count_short(&self, count: usize, min: usize) -> String {
        format!("📸 {count} of {min} minimum.")
    }

    fn replacements_left(&self, left: usize) -> String {
        format!("Got it, {left} more.")
    }

    fn replacements_received(&self) -> &'static str {
        "Thank you! Checking the photos and carrying on with the training."
    }

    fn create_avatar_first(&self) -> &'static str {
        "Create an avatar first."
    }

    fn more_photos_needed(&self, missing: usize) -> String {
        format!("{missing} more photos are needed.")
    }

    fn training_unaffordable(&self, price: i64, balance: i64) -> String {
        format!(
            "Training costs {price} credits; your balance is {balance}. Top up — I'll keep the photos."
        )
    }

    fn training_queued(&self, name: &str, price: i64) -> String {
        format!(
            "🚀 Training “{name}” is queued ({price} credits). It usually takes 5–20 minutes — I'll tell you when the avatar is ready. Status: /avatars"
        )
    }

    fn another_training_running(&self) -> &'static str {
        "Another avatar of yours is still training — wait for it; I'll keep these photos."
    }

    fn no_avatars(&self) -> &'static str {
        "No avatars yet."
    }

    fn your_avatars(&self) -> &'static str {
        "Your avatars:"
    }

    fn avatar_status(&self, status: &str) -> &'static str {
        match status {
            "queued" => "⏳ queued",
            "training" => "🏋️ training",
            "ready" => "✅ ready",
            _ => "❌ failed",
        }
    }

    fn need_ready_avatar(&self) -> &'static str {
        "First you need a ready avatar: “Create avatar”. Training status: /avatars."
    }

    fn which_avatar(&self) -> &'static str {
        "Which avatar?"
    }

    fn order_lost(&self) -> &'static str {
        "That order is no longer current — start again: “Portrait”."
    }

    fn pick_style(&self) -> &'static str {
        "Pick a style or write your own prompt:"
    }

    fn style_name(&self, style: &Style) -> &'static str {
        style.name_en
    }

    fn describe_portrait(&self) -> &'static str {
        "Describe the portrait (up to 500 characters), e.g. “as a knight at sunset”."
    }

    fn bad_prompt(&self, len: usize) -> String {
        format!("It takes 3 to 500 characters; this has {len}.")
    }

    fn own_prompt(&self) -> &'static str {
        "your prompt"
    }

    fn ask_aspect(&self, what: &str) -> String {
        format!("{what}. Aspect ratio?")
    }

    fn ask_count(&self, price: i64) -> String {
        format!("How many images? {price} credits each.")
    }

    fn not_enough_credits(&self, price: i64, balance: i64) -> String {
        format!("This needs {price} credits; your balance is {balance}. Top up:")
    }

    fn order_accepted(&self, count: u32, price: i64) -> String {
        format!(
            "✅ Order accepted: {count} image(s), {price} credits. Drawing — usually under a minute."
        )
    }

    fn progress(&self, progress: &JobProgress) -> String {
        match progress {
            JobProgress::Queued { position: Some(n) } if *n > 0 => {
                format!("⏳ Your order is queued: {n} ahead of you.")
            }
            JobProgress::Queued { .. } => "⏳ Your order is queued, starting soon.".into(),
            JobProgress::Running { percent: Some(p) } => format!("🎨 Drawing… {p}%"),
            JobProgress::Running { percent: None } => "🎨 Drawing…".into(),
            JobProgress::Saving => "💾 Saving your portraits…".into(),
        }
    }

    fn progress_done(&self) -> &'static str {
        "✅ Done, your portraits are below."
    }

    fn progress_stopped(&self) -> &'static str {
        "❌ The order did not go through."
    }

    fn training_progress(&self, t: &TrainingEta, progress: &JobProgress) -> String {
        let name = &t.name;
        let left = match t.left_secs {
            Some(s) => format!(" About {} min left.", minutes(s)),
            None => " Almost done.".into(),
        };
        match progress {
            JobProgress::Queued { position: Some(n) } if *n > 0 => {
                format!("🚀 Training “{name}” is queued: {n} ahead of it.{left}")
            }
            JobProgress::Queued { .. } => format!("🚀 Training “{name}” is queued.{left}"),
            JobProgress::Running { percent: Some(p) } => {
                format!("🧠 Training “{name}”… {p}%.{left}")
            }
            JobProgress::Running { percent: None } => format!("🧠 Training “{name}”…{left}"),
            JobProgress::Saving => format!("💾 Saving the avatar “{name}”…"),
        }
    }

    fn training_done(&self) -> &'static str {
        "✅ Training finished."
    }

    fn training_stopped(&self) -> &'static str {
        "❌ The training failed."
    }

    fn what_next(&self) -> &'static str {
        "What next?"
    }

    fn upscale_accepted(&self, price: i64) -> String {
        format!(
            "🔍 Upscaling the portrait ×2 ({price} credits). It will come as a file, uncompressed."
        )
    }

    fn upscale_already(&self) -> &'static str {
        "This portrait is already being upscaled, or is upscaled."
    }

    fn upscaled_again(&self) -> &'static str {
        "🔍 The portrait ×2, as a file without compression."
    }

    fn gallery_empty(&self) -> &'static str {
        "The gallery is empty so far."
    }

    fn gallery_page(&self, page: u32) -> String {
        format!(
            "Gallery, page {page}. 🗑 deletes a portrait, 🔍 upscales it ×2, 📄 sends the upscaled file."
        )
    }

    fn deleted(&self) -> &'static str {
        "🗑 Deleted."
    }

    fn no_such_portrait(&self) -> &'static str {
        "No such portrait."
    }

    fn balance(&self, balance: i64) -> String {
        format!("💰 Balance: {balance} credits.")
    }

    fn recent_entries(&self) -> &'static str {
        "\n\nRecent entries:"
    }

    fn entry(&self, kind: &str, amount: i64) -> &'static str {
        match kind {
            "grant" => "gift",
            "purchase" if amount < 0 => "payment refunded",
            "purchase" => "purchase",
            "reservation" => "order",
            "refund" => "refund",
            _ => "charge",
        }
    }

    fn top_up(&self) -> &'static str {
        "\n\nTop up with Telegram Stars:"
    }

    fn pack_title(&self, credits: i64) -> String {
        format!("{credits} credits")
    }

    fn pack_description(&self, credits: i64) -> String {
        format!("{credits} Aisha credits for avatars and portraits")
    }

    fn payment_received(&self, credits: i64, balance: i64) -> String {
        format!("⭐ Payment received: +{credits} credits. Balance: {balance}.")
    }

    fn create_avatar_button(&self) -> &'static str {
        "🧑‍🎨 Create avatar"
    }

    fn portrait_button(&self) -> &'static str {
        "✨ Portrait"
    }

    fn gallery_button(&self) -> &'static str {
        "🖼 Gallery"
    }

    fn balance_button(&self) -> &'static str {
        "💰 Balance"
    }

    fn my_avatars_button(&self) -> &'static str {
        "👤 My avatars"
    }

    fn help_button(&self) -> &'static str {
        "❓ Help"
    }

    fn preset_button(&self, preset: Preset) -> &'static str {
        match preset {
            Preset::Fast => "⚡ Fast (1000 steps)",
            Preset::Balanced => "⚖️ Balanced (2500)",
            Preset::Quality => "💎 Quality (4000)",
        }
    }

    fn start_training_button(&self) -> &'static str {
        "🚀 Start training"
    }

    fn new_avatar_button(&self) -> &'static str {
        "🧑‍🎨 New avatar"
    }

    fn own_prompt_button(&self) -> &'static str {
        "✍️ My own prompt"
    }

    fn another_avatar_button(&self) -> &'static str {
        "👤 Another avatar"
    }

    fn again_button(&self) -> &'static str {
        "🔁 Again"
    }

    fn another_style_button(&self) -> &'static str {
        "🎨 Another style"
    }

    fn upscale_button(&self) -> &'static str {
        "🔍 Upscale ×2"
    }

    fn upscale_numbered_button(&self, n: usize) -> String {
        format!("🔍 ×2 · {n}")
    }

    fn upscaled_button(&self, n: usize) -> String {
        format!("📄 {n} ×2")
    }

    fn buy_button(&self, credits: i64, stars: u32) -> String {
        format!("Buy {credits} credits for {stars} ⭐")
    }

    fn back_button(&self) -> &'static str {
        "◀️ Back"
    }

    fn next_button(&self) -> &'static str {
        "Next ▶️"
    }

    fn notice(&self, notice: &Notice) -> String {
        match notice {
            Notice::PhotosRejected { rejected, .. } => {
                let list: Vec<String> = rejected
                    .iter()
                    .map(|r| format!("photo {}: {}", r.photo, self.photo_problem(&r.problem)))
                    .collect();
                format!(
                    "These photos can't be used, please send replacements:\n{}",
                    list.join("\n")
                )
            }
            Notice::AvatarReady { name } => {
                format!("Avatar “{name}” is ready! Pick a portrait style.")
            }
            Notice::AvatarFailed { name, refunded } => {
                let back = if *refunded > 0 {
                    format!(" {refunded} credits were refunded.")
                } else {
                    String::new()
                };
                format!("Training avatar “{name}” failed.{back}")
            }
            Notice::PortraitsReady {
                images,
                withheld,
                refunded,
            } => {
                let mut text = format!("Done: {} portrait(s).", images.len());
                if *withheld > 0 {
                    text.push_str(&format!(
                        " {withheld} did not pass the safety check and were withheld; {refunded} credits refunded."
                    ));
                }
                text
            }
            Notice::PortraitFailed { refunded } if *refunded > 0 => {
                format!("The portrait failed. {refunded} credits were refunded.")
            }
            Notice::PortraitFailed { .. } => "The portrait failed.".into(),
            Notice::UpscaleReady { width, height, .. } => {
                format!(
                    "Done: the portrait ×2, {width}×{height} px, as a file without compression."
                )
            }
            Notice::UpscaleFailed { refunded } if *refunded > 0 => {
                format!("The upscale failed. {refunded} credits were refunded.")
            }
            Notice::UpscaleFailed { .. } => "The upscale failed.".into(),
            Notice::Progress {
                progress,
                training: Some(t),
            } => self.training_progress(t, progress),
            Notice::Progress { progress, .. } => self.progress(progress),
        }
    }
}
