//! Russian, the bot's first language.

use aisha_workflows::avatar::Preset;
use aisha_workflows::notice::{Notice, TrainingEta};
use aisha_workflows::photos::PhotoProblem;
use aisha_workflows::product::Prices;
use aisha_workflows::provider::JobProgress;
use aisha_workflows::styles::Style;

use super::{Texts, minutes};

pub struct Ru;

impl Texts for Ru {
    fn greeting(&self) -> &'static str {
        "Привет! Я Aisha: обучу ваш личный аватар по 10–20 селфи и нарисую ваши портреты в любых стилях."
    }

    fn welcome_credits(&self, credits: i64) -> String {
        format!("\n\n🎁 Дарим {credits} кредитов для начала.")
    }

    fn what_shall_we_do(&self) -> &'static str {
        "Что делаем?"
    }

    fn help(&self, p: Prices) -> String {
        format!(
            "Как это работает:\n1. «Создать аватар»: имя, режим обучения и 10–20 ваших фото (лицо хорошо видно, разные ракурсы; JPG/PNG/WEBP, от 512 px, до 20 МБ). Обучение стоит {} кредитов.\n2. «Портрет»: выберите стиль или напишите свой промпт, формат и число картинок ({} кредитов за каждую).\n3. «🔍 Увеличить ×2» под портретом: он же вдвое больше, файлом без сжатия ({} кредитов).\n4. Если что-то не получится, кредиты вернутся.\n\nКоманды: /start, /avatar, /avatars, /generate, /gallery, /balance, /language, /cancel, /help",
            p.avatar, p.image, p.upscale
        )
    }

    fn nothing_to_cancel(&self) -> &'static str {
        "Отменять нечего."
    }

    fn cancelled(&self) -> &'static str {
        "Отменено."
    }

    fn language_chosen(&self) -> &'static str {
        "Говорим по-русски."
    }

    fn not_understood(&self) -> &'static str {
        "Я понимаю текст, фото и кнопки. /help — что я умею."
    }

    fn unknown_command(&self) -> &'static str {
        "Не знаю такой команды. /help — список."
    }

    fn outdated_button(&self) -> &'static str {
        "Кнопка устарела"
    }

    fn apology(&self) -> &'static str {
        "Что-то пошло не так на нашей стороне, и это сообщение не обработано. Попробуйте ещё раз чуть позже."
    }

    fn invoice_refused(&self) -> &'static str {
        "Этот счёт устарел или не ваш. Откройте «Баланс» и попробуйте снова."
    }

    fn ask_avatar_name(&self) -> &'static str {
        "Как назовём аватар? (2–50 символов)"
    }

    fn bad_avatar_name(&self, len: usize) -> String {
        format!("Имя должно быть от 2 до 50 символов, а в этом {len}. Попробуйте ещё раз.")
    }

    fn choose_preset(&self, name: &str, price: i64) -> String {
        format!("«{name}». Выберите режим обучения (стоимость одна: {price} кредитов):")
    }

    fn send_photos(&self, min: usize, max: usize) -> String {
        format!(
            "Пришлите от {min} до {max} фото, где хорошо видно ваше лицо: разные ракурсы, освещение и фон. Можно альбомом, фото или файлами."
        )
    }

    fn photos_only_while_creating(&self) -> &'static str {
        "Фото принимаю, когда создаём аватар: нажмите «Создать аватар»."
    }

    fn photo_limit(&self, max: usize) -> String {
        format!("Уже {max} фото — это максимум. Нажмите «Начать обучение».")
    }

    fn photo_refused(&self, problem: &PhotoProblem) -> String {
        format!("❌ Это фото не подойдёт: {}.", self.photo_problem(problem))
    }

    fn photo_problem(&self, problem: &PhotoProblem) -> String {
        match problem {
            PhotoProblem::TooLarge { bytes, max } => format!(
                "файл весит {:.1} МБ, можно не больше {} МБ",
                *bytes as f64 / 1048576.0,
                max >> 20
            ),
            PhotoProblem::NotAnImage => "это не изображение".into(),
            PhotoProblem::UnsupportedFormat { format } => {
                format!("формат {format} не подходит: пришлите JPEG, PNG или WEBP")
            }
            PhotoProblem::TooSmall { width, height, min } => format!(
                "{width}×{height} пикселей — слишком мало: короткая сторона должна быть не меньше {min}"
            ),
            PhotoProblem::TooManyPixels { width, height } => {
                format!("{width}×{height} пикселей — слишком большое изображение")
            }
            PhotoProblem::Corrupt { .. } => "изображение повреждено".into(),
            PhotoProblem::Duplicate { of } => format!("это то же фото, что и фото {of}"),
        }
    }

    fn photo_count_enough(&self, count: usize, max: usize) -> String {
        format!("✅ {count} фото. Можно начинать обучение или прислать ещё (до {max}).")
    }

    fn photo_count_short(&self, count: usize, min: usize) -> String {
        format!("📸 {count} из {min} минимум.")
    }

    fn replacements_left(&self, left: usize) -> String {
        format!("Принято, ещё {left}.")
    }

    fn replacements_received(&self) -> &'static str {
        "Спасибо! Проверяю фото и продолжаю обучение."
    }

    fn create_avatar_first(&self) -> &'static str {
        "Сначала создайте аватар."
    }

    fn more_photos_needed(&self, missing: usize) -> String {
        format!("Нужно ещё {missing} фото.")
    }

    fn training_unaffordable(&self, price: i64, balance: i64) -> String {
        format!(
            "Обучение стоит {price} кредитов, на балансе {balance}. Пополните баланс — фото я сохраню."
        )
    }

    fn training_queued(&self, name: &str, price: i64) -> String {
        format!(
            "🚀 Обучение «{name}» в очереди ({price} кредитов). Обычно это 5–20 минут — я напишу, когда аватар будет готов. Статус: /avatars"
        )
    }

    fn another_training_running(&self) -> &'static str {
        "Другой ваш аватар ещё обучается — дождитесь его, фото я сохраню."
    }

    fn no_avatars(&self) -> &'static str {
        "Аватаров пока нет."
    }

    fn your_avatars(&self) -> &'static str {
        "Ваши аватары:"
    }

    fn avatar_status(&self, status: &str) -> &'static str {
        match status {
            "queued" => "⏳ в очереди",
            "training" => "🏋️ обучается",
            "ready" => "✅ готов",
            _ => "❌ не получился",
        }
    }

    fn need_ready_avatar(&self) -> &'static str {
        "Сначала нужен готовый аватар: «Создать аватар». Статус обучения — /avatars."
    }

    fn which_avatar(&self) -> &'static str {
        "Какой аватар?"
    }

    fn order_lost(&self) -> &'static str {
        "Этот заказ уже неактуален — начните заново: «Портрет»."
    }

    fn pick_style(&self) -> &'static str {
        "Выберите стиль или напишите свой промпт:"
    }

    fn style_name(&self, style: &Style) -> &'static str {
        style.name_ru
    }

    fn describe_portrait(&self) -> &'static str {
        "Опишите портрет словами (до 500 символов), например: «в образе рыцаря на закате»."
    }

    fn bad_prompt(&self, len: usize) -> String {
        format!("Нужно от 3 до 500 символов, а здесь {len}.")
    }

    fn own_prompt(&self) -> &'static str {
        "свой промпт"
    }

    fn ask_aspect(&self, what: &str) -> String {
        format!("{what}. Формат кадра?")
    }

    fn ask_count(&self, price: i64) -> String {
        format!("Сколько картинок? {price} кредитов за каждую.")
    }

    fn not_enough_credits(&self, price: i64, balance: i64) -> String {
        format!("Нужно {price} кредитов, на балансе {balance}. Пополнить:")
    }

    fn order_accepted(&self, count: u32, price: i64) -> String {
        format!("✅ Заказ принят: {count} шт., {price} кредитов. Рисую — обычно это меньше минуты.")
    }

    fn progress(&self, progress: &JobProgress) -> String {
        match progress {
            JobProgress::Queued { position: Some(n) } if *n > 0 => {
                format!("⏳ Заказ в очереди: перед вами {n}.")
            }
            JobProgress::Queued { .. } => "⏳ Заказ в очереди, скоро начнём.".into(),
            JobProgress::Running { percent: Some(p) } => format!("🎨 Рисую… {p}%"),
            JobProgress::Running { percent: None } => "🎨 Рисую…".into(),
            JobProgress::Saving => "💾 Сохраняю портреты…".into(),
        }
    }

    fn progress_done(&self) -> &'static str {
        "✅ Готово, портреты ниже."
    }

    fn progress_stopped(&self) -> &'static str {
        "❌ Заказ не выполнен."
    }

    fn training_progress(&self, t: &TrainingEta, progress: &JobProgress) -> String {
        let name = &t.name;
        let left = match t.left_secs {
            Some(s) => format!(" Осталось около {} мин.", minutes(s)),
            None => " Почти готово.".into(),
        };
        match progress {
            JobProgress::Queued { position: Some(n) } if *n > 0 => {
                format!("🚀 Обучение «{name}» в очереди: перед ним {n}.{left}")
            }
            JobProgress::Queued { .. } => format!("🚀 Обучение «{name}» в очереди.{left}"),
            JobProgress::Running { percent: Some(p) } => {
                format!("🧠 Обучаю «{name}»… {p}%.{left}")
            }
            JobProgress::Running { percent: None } => format!("🧠 Обучаю «{name}»…{left}"),
            JobProgress::Saving => format!("💾 Сохраняю аватар «{name}»…"),
        }
    }

    fn training_done(&self) -> &'static str {
        "✅ Обучение закончено."
    }

    fn training_stopped(&self) -> &'static str {
        "❌ Обучение не удалось."
    }

    fn what_next(&self) -> &'static str {
        "Что дальше?"
    }

    fn upscale_accepted(&self, price: i64) -> String {
        format!("🔍 Увеличиваю портрет ×2 ({price} кредитов). Пришлю файлом без сжатия.")
    }

    fn upscale_already(&self) -> &'static str {
        "Этот портрет уже увеличивается или увеличен."
    }

    fn upscaled_again(&self) -> &'static str {
        "🔍 Портрет ×2, файлом без сжатия."
    }

    fn gallery_empty(&self) -> &'static str {
        "В галерее пока пусто."
    }

    fn gallery_page(&self, page: u32) -> String {
        format!(
            "Галерея, страница {page}. 🗑 удаляет портрет, 🔍 увеличивает его ×2, 📄 присылает увеличенный."
        )
    }

    fn deleted(&self) -> &'static str {
        "🗑 Удалено."
    }

    fn no_such_portrait(&self) -> &'static str {
        "Такого портрета нет."
    }

    fn balance(&self, balance: i64) -> String {
        format!("💰 Баланс: {balance} кредитов.")
    }

    fn recent_entries(&self) -> &'static str {
        "\n\nПоследние операции:"
    }

    fn entry(&self, kind: &str, amount: i64) -> &'static str {
        match kind {
            "grant" => "подарок",
            "purchase" if amount < 0 => "возврат оплаты",
            "purchase" => "покупка",
            "reservation" => "заказ",
            "refund" => "возврат",
            _ => "списание",
        }
    }

    fn top_up(&self) -> &'static str {
        "\n\nПополнить звёздами Telegram:"
    }

    fn pack_title(&self, credits: i64) -> String {
        format!("{credits} кредитов")
    }

    fn pack_description(&self, credits: i64) -> String {
        format!("{credits} кредитов Aisha: аватары и портреты")
    }

    fn payment_received(&self, credits: i64, balance: i64) -> String {
        format!("⭐ Оплата получена: +{credits} кредитов. Баланс: {balance}.")
    }

    fn create_avatar_button(&self) -> &'static str {
        "🧑‍🎨 Создать аватар"
    }

    fn portrait_button(&self) -> &'static str {
        "✨ Портрет"
    }

    fn gallery_button(&self) -> &'static str {
        "🖼 Галерея"
    }

    fn balance_button(&self) -> &'static str {
        "💰 Баланс"
    }

    fn my_avatars_button(&self) -> &'static str {
        "👤 Мои аватары"
    }

    fn help_button(&self) -> &'static str {
        "❓ Помощь"
    }

    fn preset_button(&self, preset: Preset) -> &'static str {
        match preset {
            Preset::Fast => "⚡ Быстро (1000 шагов)",
            Preset::Balanced => "⚖️ Сбалансированно (2500)",
            Preset::Quality => "💎 Качество (4000)",
        }
    }

    fn start_training_button(&self) -> &'static str {
        "🚀 Начать обучение"
    }

    fn new_avatar_button(&self) -> &'static str {
        "🧑‍🎨 Новый аватар"
    }

    fn own_prompt_button(&self) -> &'static str {
        "✍️ Свой промпт"
    }

    fn another_avatar_button(&self) -> &'static str {
        "👤 Другой аватар"
    }

    fn again_button(&self) -> &'static str {
        "🔁 Ещё раз"
    }

    fn another_style_button(&self) -> &'static str {
        "🎨 Другой стиль"
    }

    fn upscale_button(&self) -> &'static str {
        "🔍 Увеличить ×2"
    }

    fn upscale_numbered_button(&self, n: usize) -> String {
        format!("🔍 ×2 · {n}")
    }

    fn upscaled_button(&self, n: usize) -> String {
        format!("📄 {n} ×2")
    }

    fn buy_button(&self, credits: i64, stars: u32) -> String {
        format!("Купить {credits} кредитов за {stars} ⭐")
    }

    fn back_button(&self) -> &'static str {
        "◀️ Назад"
    }

    fn next_button(&self) -> &'static str {
        "Дальше ▶️"
    }

    fn notice(&self, notice: &Notice) -> String {
        match notice {
            Notice::PhotosRejected { rejected, .. } => {
                let list: Vec<String> = rejected
                    .iter()
                    .map(|r| format!("фото {}: {}", r.photo, self.photo_problem(&r.problem)))
                    .collect();
                format!("Эти фото не подошли, пришлите замену:\n{}", list.join("\n"))
            }
            Notice::AvatarReady { name } => {
                format!("Аватар «{name}» готов! Выберите стиль портрета.")
            }
            Notice::AvatarFailed { name, refunded } => {
                let back = if *refunded > 0 {
                    format!(" {refunded} кредитов возвращены.")
                } else {
                    String::new()
                };
                format!("Не получилось обучить аватар «{name}».{back}")
            }
            Notice::PortraitsReady {
                images,
                withheld,
                refunded,
            } => {
                let mut text = format!("Готово: {} портрет(а).", images.len());
                if *withheld > 0 {
                    text.push_str(&format!(
                        " {withheld} не прошли проверку и не отправлены; {refunded} кредитов возвращены."
                    ));
                }
                text
            }
            Notice::PortraitFailed { refunded } if *refunded > 0 => {
                format!("Не получилось сделать портрет. {refunded} кредитов возвращены.")
            }
            Notice::PortraitFailed { .. } => "Не получилось сделать портрет.".into(),
            Notice::UpscaleReady { width, height, .. } => {
                format!("Готово: портрет ×2, {width}×{height} пикселей, файлом без сжатия.")
            }
            Notice::UpscaleFailed { refunded } if *refunded > 0 => {
                format!("Не получилось увеличить портрет. {refunded} кредитов возвращены.")
            }
            Notice::UpscaleFailed { .. } => "Не получилось увеличить портрет.".into(),
            Notice::Progress {
                progress,
                training: Some(t),
            } => self.training_progress(t, progress),
            Notice::Progress { progress, .. } => self.progress(progress),
        }
    }
}
