//! The Telegram bot through the binary: `aisha serve` with TELEGRAM_BOT_TOKEN, talking over
//! HTTP to a local Bot API server (the real teloxide client, real multipart uploads and file
//! downloads), the FAL simulator, SQLite. Users are driven through the Bot API server the
//! way Telegram would deliver their messages, button presses and payments.

mod common;

use aisha_sim::photos::jpeg;
use std::time::{Duration, Instant};

use aisha_sim::telegram::{Fault, Pay, SentCall, SimConfig, SimTelegram, SimUser, UserAction};
use base64::Engine as _;
use common::{Dir, Server, aisha, json, spawn_announcing, until_up};
use serde_json::{Value, json};

const TOKEN: &str = "123456:TEST-token-abcdefgh";
const ADMIN: i64 = 9000;

fn user(id: i64, lang: &str) -> SimUser {
    serde_json::from_value(json!({"id": id, "first_name": format!("U{id}"), "language_code": lang}))
        .unwrap()
}

fn act(u: &SimUser, rest: Value) -> UserAction {
    let mut v = rest;
    v["user"] = serde_json::to_value(u).unwrap();
    serde_json::from_value(v).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text_of(c: &SentCall) -> String {
    c.params["text"]
        .as_str()
        .or_else(|| c.params["caption"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The buttons' callback data of a sent message.
fn buttons(c: &SentCall) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rows) = c.params["reply_markup"]["inline_keyboard"].as_array() {
        for row in rows {
            for b in row.as_array().into_iter().flatten() {
                if let Some(d) = b["callback_data"].as_str() {
                    out.push(d.to_string());
                }
            }
        }
    }
    out
}

struct Bot {
    sim: SimTelegram,
    dir: Dir,
    env: Vec<(String, String)>,
    server: Option<Server>,
    /// Calls already looked at, per test step.
    seen: u64,
}

impl Bot {
    async fn start(extra: &[(&str, &str)]) -> Bot {
        let sim = SimTelegram::start(SimConfig {
            token: TOKEN.into(),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let dir = Dir::new();
        let mut env: Vec<(String, String)> = vec![
            ("HTTP_BIND".into(), "127.0.0.1:0".into()),
            ("TELEGRAM_BOT_TOKEN".into(), TOKEN.into()),
            ("TELEGRAM_API_URL".into(), sim.base_url.clone()),
            ("TELEGRAM_ADMIN_IDS".into(), ADMIN.to_string()),
            ("TELEGRAM_CHAT_INTERVAL_MS".into(), "20".into()),
            ("SIM_FAL_DELAY_MS".into(), "100".into()),
        ];
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        let mut b = Bot {
            sim,
            dir,
            env,
            server: None,
            seen: 0,
        };
        b.up().await;
        b
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    async fn up(&mut self) {
        let (server, at) = spawn_announcing(&self.dir, &["serve"], &self.env(), &["HTTP_BIND"]);
        self.server = Some(server);
        // A restarted bot listens where the first one did (FAL calls back the address it was
        // given), so the first one's real address replaces the port 0 it started with.
        if let Some((_, bind)) = self.env.iter_mut().find(|(k, _)| k == "HTTP_BIND") {
            bind.clone_from(&at["HTTP_BIND"]);
        }
        until_up(&format!("http://{}/health", self.bind())).await;
    }

    /// Where the bot's HTTP server listens.
    fn bind(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "HTTP_BIND")
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    /// SIGKILL: no goodbye, whatever was in flight.
    fn kill(&mut self) {
        self.server = None;
    }

    fn send(&self, u: &SimUser, rest: Value) -> i64 {
        self.sim.push(act(u, rest)).update_id
    }

    /// The first call to `chat` after the last one returned here that says `needle`.
    async fn said(&mut self, chat: i64, needle: &str) -> SentCall {
        self.next(chat, &format!("say “{needle}”"), |c| {
            text_of(c).contains(needle)
        })
        .await
    }

    /// The first call of `method` to `chat` after the last one returned here.
    async fn called(&mut self, chat: i64, method: &str) -> SentCall {
        self.next(chat, &format!("call {method}"), |c| c.method == method)
            .await
    }

    async fn next(&mut self, chat: i64, what: &str, pred: impl Fn(&SentCall) -> bool) -> SentCall {
        let t0 = Instant::now();
        loop {
            if let Some(c) = self.sim.sent(Some(chat), self.seen).into_iter().find(&pred) {
                self.seen = c.seq;
                return c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the bot did not {what} to {chat}; it sent: {:#?}",
                self.sim
                    .sent(Some(chat), 0)
                    .iter()
                    .map(|c| (c.method.clone(), text_of(c)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first call of `method`, to any chat or none (answers, webhook registration).
    async fn call_of(&self, method: &str) -> SentCall {
        let t0 = Instant::now();
        loop {
            if let Some(c) = self
                .sim
                .sent(None, 0)
                .into_iter()
                .find(|c| c.method == method)
            {
                return c;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no {method}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn press(&self, u: &SimUser, c: &SentCall, data: &str) {
        assert!(
            buttons(c).iter().any(|b| b == data),
            "no button {data} in {:?}",
            buttons(c)
        );
        self.sim.push(act(
            u,
            json!({"callback": {"data": data, "message_id": c.message_ids[0]}}),
        ));
    }

    fn balance(&self, user: i64) -> i64 {
        let v = json(&aisha(
            &self.dir,
            &["admin", "credits", "balance", &user.to_string(), "--json"],
            &self.env(),
        ));
        v["balance"].as_i64().unwrap()
    }

    async fn stop(self) {
        drop(self.server);
        self.sim.stop().await;
    }
}

/// Creates an avatar for `u` through the dialogue; returns once the bot says it is ready.
async fn train_avatar(bot: &mut Bot, u: &SimUser, bad_at: Option<usize>) {
    let chat = u.id;
    bot.send(u, json!({"text": "/avatar"}));
    bot.said(chat, "Как назовём").await;
    bot.send(u, json!({"text": "Анна"}));
    let presets = bot.said(chat, "режим обучения").await;
    bot.press(u, &presets, "p:fast");
    bot.said(chat, "Пришлите от 10 до 20 фото").await;
    let album = format!("album-{chat}");
    let mut good = 0;
    for i in 0..20u8 {
        let bytes = if Some(i as usize) == bad_at {
            jpeg(200, 150, i)
        } else {
            jpeg(640, 800, i)
        };
        if Some(i as usize) != bad_at {
            good += 1;
        }
        bot.send(
            u,
            json!({"photo": {"bytes_b64": b64(&bytes)}, "media_group_id": album}),
        );
    }
    if bad_at.is_some() {
        let refused = bot.said(chat, "не подойдёт").await;
        assert!(
            text_of(&refused).contains("200×150"),
            "{}",
            text_of(&refused)
        );
    }
    let count = bot.said(chat, &format!("{good} фото")).await;
    bot.press(u, &count, "train");
    bot.said(chat, "в очереди").await;
    bot.said(chat, "Аватар «Анна» готов").await;
}

#[tokio::test]
async fn the_whole_journey_from_start_to_portraits() {
    let mut bot = Bot::start(&[("WELCOME_CREDITS", "300")]).await;
    let anna = user(501, "ru");
    bot.send(&anna, json!({"text": "/start"}));
    let hello = bot.said(501, "Привет").await;
    assert!(text_of(&hello).contains("300 кредитов"));
    assert!(buttons(&hello).contains(&"m:avatar".to_string()));
    // A second /start grants nothing more.
    bot.send(&anna, json!({"text": "/start"}));
    let again = bot.said(501, "Привет").await;
    assert!(!text_of(&again).contains("кредитов для начала"));
    assert_eq!(bot.balance(501), 300);

    // An album of 20 photos with a bad one in the middle.
    train_avatar(&mut bot, &anna, Some(7)).await;
    assert_eq!(bot.balance(501), 150);

    // Generate: the only avatar is chosen, a style, an aspect, two images.
    bot.send(&anna, json!({"text": "/generate"}));
    let styles = bot.said(501, "Выберите стиль").await;
    bot.press(&anna, &styles, "s:business");
    let aspects = bot.said(501, "Формат кадра").await;
    bot.press(&anna, &aspects, "r:3x4");
    let counts = bot.said(501, "Сколько картинок").await;
    bot.press(&anna, &counts, "n:2");
    let accepted = bot.said(501, "Заказ принят").await;
    assert!(text_of(&accepted).contains("10 кредитов"));
    let album = bot.called(501, "sendMediaGroup").await;
    assert_eq!(album.files.len(), 2, "{album:?}");
    assert!(album.files.iter().all(|f| f.bytes > 1000));
    let next = bot.said(501, "Что дальше").await;
    assert!(buttons(&next).iter().any(|b| b.starts_with("again:")));
    assert_eq!(bot.balance(501), 140);

    // "🔍 ×2" under the first portrait, pressed twice: one upscale, charged once (the second
    // press is told it is under way, or gets the file again), the file as a document twice
    // the album's photo in width and height.
    let upscale = buttons(&next)
        .into_iter()
        .find(|b| b.starts_with("up:0:"))
        .unwrap();
    bot.press(&anna, &next, &upscale);
    bot.press(&anna, &next, &upscale);
    let accepted = bot.said(501, "Увеличиваю портрет ×2").await;
    assert!(text_of(&accepted).contains("3 кредитов"));
    let doc = bot.called(501, "sendDocument").await;
    let (original, upscaled) = (&album.files[0], &doc.files[0]);
    assert_eq!(
        (upscaled.width, upscaled.height),
        (
            original.width.map(|w| w * 2),
            original.height.map(|h| h * 2)
        ),
        "{doc:?}"
    );
    assert!(text_of(&doc).contains("1536×2048"));
    assert_eq!(bot.balance(501), 137);

    // "Again": the same order once more, charged once.
    let again_button = buttons(&next)
        .into_iter()
        .find(|b| b.starts_with("again:"))
        .unwrap();
    bot.press(&anna, &next, &again_button);
    bot.said(501, "Заказ принят").await;
    assert_eq!(bot.called(501, "sendMediaGroup").await.files.len(), 2);
    assert_eq!(bot.balance(501), 127);

    // The gallery shows her 4 portraits; another user sees none and cannot delete hers.
    bot.send(&anna, json!({"text": "/gallery"}));
    let shown = bot.called(501, "sendMediaGroup").await;
    assert_eq!(shown.files.len(), 4);
    let page = bot.said(501, "Галерея").await;
    // Beside the upscaled portrait, its file: sent again, free.
    bot.press(&anna, &page, &upscale);
    let again = bot.called(501, "sendDocument").await;
    assert_eq!(again.files[0].sha256, doc.files[0].sha256);
    assert_eq!(bot.balance(501), 127);
    let delete = buttons(&page)
        .into_iter()
        .find(|b| b.starts_with("del:"))
        .unwrap();
    let bob = user(502, "en");
    bot.send(&bob, json!({"text": "/gallery"}));
    bot.said(502, "gallery is empty").await;
    bot.sim.push(act(
        &bob,
        json!({"callback": {"data": delete, "message_id": 1}}),
    ));
    bot.said(502, "No such portrait").await;
    bot.press(&anna, &page, &delete);
    bot.said(501, "Удалено").await;
    bot.send(&anna, json!({"text": "/gallery"}));
    assert_eq!(bot.called(501, "sendMediaGroup").await.files.len(), 3);
    bot.stop().await;
}

/// A portrait order's "accepted" message is edited in place while FAL works on it: queued,
/// drawing with a percentage, saving (with an upload_photo chat action), then a last line
/// before the album; an edit identical to what the message shows is never sent. The
/// simulated generation takes 3 s and the progress is asked every 100 ms.
#[tokio::test]
async fn the_accepted_message_shows_the_progress_in_place() {
    let mut bot = Bot::start(&[
        ("WELCOME_CREDITS", "300"),
        ("SIM_FAL_DELAY_MS", "3000"),
        ("GENERATION_PROGRESS_MS", "100"),
        ("TRAINING_PROGRESS_MS", "100"),
    ])
    .await;
    let u = user(551, "ru");
    bot.send(&u, json!({"text": "/start"}));
    bot.said(551, "Привет").await;
    let from = bot.seen;
    train_avatar(&mut bot, &u, None).await;

    // The training message, edited in place with the time left (the preset's expectation:
    // no training has finished here before), its menu kept, closed before the notice.
    let calls = bot.sim.sent(Some(551), from);
    let queued = calls
        .iter()
        .find(|c| c.method == "sendMessage" && text_of(c).contains("Обучение «Анна» в очереди"))
        .unwrap();
    let edits: Vec<&SentCall> = calls
        .iter()
        .filter(|c| c.method == "editMessageText" && c.message_ids == queued.message_ids)
        .collect();
    let texts: Vec<String> = edits.iter().map(|c| text_of(c)).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Обучаю «Анна»…") && t.contains("%. Осталось около 5 мин.")),
        "a percentage and the time left: {texts:#?}"
    );
    assert_eq!(
        texts.last().map(String::as_str),
        Some("✅ Обучение закончено."),
        "{texts:#?}"
    );
    assert!(
        edits.iter().all(|c| c.buttons() == queued.buttons()),
        "every edit keeps the menu: {edits:#?}"
    );
    bot.send(&u, json!({"text": "/generate"}));
    let styles = bot.said(551, "Выберите стиль").await;
    bot.press(&u, &styles, "s:oil");
    let aspects = bot.said(551, "Формат кадра").await;
    bot.press(&u, &aspects, "r:1x1");
    let counts = bot.said(551, "Сколько картинок").await;
    bot.press(&u, &counts, "n:2");
    let accepted = bot.said(551, "Заказ принят").await;
    let album = bot.called(551, "sendMediaGroup").await;
    let calls: Vec<SentCall> = bot
        .sim
        .sent(Some(551), accepted.seq)
        .into_iter()
        .filter(|c| c.seq < album.seq)
        .collect();
    let edits: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "editMessageText")
        .inspect(|c| {
            assert_eq!(
                c.message_ids, accepted.message_ids,
                "edits the accepted message"
            )
        })
        .map(text_of)
        .collect();
    let at = |needle: &str| {
        edits
            .iter()
            .position(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("no edit saying “{needle}” in {edits:#?}"))
    };
    assert!(at("в очереди") < at("Рисую…"), "{edits:#?}");
    assert!(
        edits
            .iter()
            .any(|t| t.contains("Рисую…") && t.ends_with('%')),
        "a percentage: {edits:#?}"
    );
    assert!(at("Рисую…") < at("Сохраняю"), "{edits:#?}");
    assert_eq!(
        edits.last().map(String::as_str),
        Some("✅ Готово, портреты ниже."),
        "{edits:#?}"
    );
    assert!(
        edits.windows(2).all(|w| w[0] != w[1]),
        "an identical edit is not sent: {edits:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == "sendChatAction" && c.str("action") == Some("upload_photo")),
        "saving shows upload_photo"
    );
    let ids = json(&aisha(
        &bot.dir,
        &[
            "admin",
            "runs",
            "list",
            "--workflow",
            "portrait_generation",
            "--json",
        ],
        &bot.env(),
    ));
    let run = ids[0]["id"].as_str().unwrap().to_string();
    let shown = json(&aisha(
        &bot.dir,
        &["admin", "runs", "show", &run, "--json"],
        &bot.env(),
    ));
    assert!(
        shown["progress"]["stage"].is_string(),
        "the run keeps its last progress: {shown}"
    );
    bot.stop().await;
}

/// A user who blocked the bot while the order was drawing: the first refused edit ends the
/// progress message, the album is refused once, and the order still completes.
#[tokio::test]
async fn a_blocked_user_ends_the_progress_quietly() {
    let mut bot = Bot::start(&[
        ("WELCOME_CREDITS", "300"),
        ("SIM_FAL_DELAY_MS", "2000"),
        ("GENERATION_PROGRESS_MS", "100"),
    ])
    .await;
    let u = user(561, "ru");
    bot.send(&u, json!({"text": "/start"}));
    bot.said(561, "Привет").await;
    train_avatar(&mut bot, &u, None).await;
    bot.send(&u, json!({"text": "/generate"}));
    let styles = bot.said(561, "Выберите стиль").await;
    bot.press(&u, &styles, "s:oil");
    let aspects = bot.said(561, "Формат кадра").await;
    bot.press(&u, &aspects, "r:1x1");
    let counts = bot.said(561, "Сколько картинок").await;
    bot.press(&u, &counts, "n:1");
    bot.said(561, "Заказ принят").await;
    bot.sim.fail_next(Fault::Error {
        method: None,
        count: 1000,
        code: 403,
        description: "Forbidden: bot was blocked by the user".into(),
    });
    let t0 = Instant::now();
    loop {
        let runs = json(&aisha(
            &bot.dir,
            &[
                "admin",
                "runs",
                "list",
                "--workflow",
                "portrait_generation",
                "--json",
            ],
            &bot.env(),
        ));
        if runs[0]["status"] == "succeeded" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The first 403 ends the progress message; the result is refused once and given up:
    // nothing is retried, so the 403s stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = bot.sim.stats().errors;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bot.sim.stats().errors, refused, "no retries after a 403");
    assert!(refused <= 4, "{refused} refused calls");
    bot.stop().await;
}

#[tokio::test]
async fn stars_are_credited_once_and_forgeries_are_ignored() {
    let mut bot = Bot::start(&[]).await;
    let u = user(601, "en");
    bot.send(&u, json!({"text": "/balance"}));
    let balance = bot.said(601, "Balance: 0").await;
    bot.press(&u, &balance, "buy:250");
    let invoice = bot.called(601, "sendInvoice").await;
    assert_eq!(invoice.params["currency"], "XTR");
    assert_eq!(invoice.params["prices"][0]["amount"], 100);
    let payload = invoice.params["payload"].as_str().unwrap().to_string();

    // Someone else cannot pay the invoice: the pre-checkout is refused.
    let eve = user(666, "en");
    bot.send(&eve, json!({"pre_checkout": {"currency": "XTR", "total_amount": 100, "invoice_payload": payload}}));
    let refusal = bot.call_of("answerPreCheckoutQuery").await;
    assert_eq!(refusal.params["ok"], false, "{refusal:?}");

    let paid = bot
        .sim
        .pay(Pay {
            user: u.clone(),
            invoice_message_id: invoice.message_ids[0],
            charge_id: Some("charge-1".into()),
            tamper: None,
        })
        .await;
    assert!(paid.ok, "{paid:?}");
    bot.said(601, "+250 credits").await;
    assert_eq!(bot.balance(601), 250);

    // Telegram delivering the same payment again, a payment with a doctored payload, one for a
    // smaller amount, and one in another currency change nothing.
    let payment = |charge: &str, payload: &str, amount: u32, currency: &str| {
        json!({"successful_payment": {"currency": currency, "total_amount": amount, "invoice_payload": payload,
            "telegram_payment_charge_id": charge, "provider_payment_charge_id": ""}})
    };
    bot.send(&u, payment("charge-1", &payload, 100, "XTR"));
    bot.send(
        &u,
        payment("charge-2", &payload.replace(":250:", ":2500:"), 100, "XTR"),
    );
    bot.send(&u, payment("charge-3", &payload, 1, "XTR"));
    bot.send(&u, payment("charge-4", &payload, 100, "USD"));
    bot.send(&u, json!({"text": "/balance"}));
    bot.said(601, "Balance: 250").await;
    assert_eq!(bot.balance(601), 250);

    // The admin refunds it: the Stars go back, the credits too.
    let admin = user(ADMIN, "en");
    bot.send(&admin, json!({"text": "/refund charge-1"}));
    bot.said(ADMIN, "refunded 100").await;
    assert_eq!(bot.balance(601), 0);
    assert!(
        bot.sim
            .sent(None, 0)
            .iter()
            .any(|c| c.method == "refundStarPayment")
    );
    bot.send(&admin, json!({"text": "/refund charge-1"}));
    bot.said(ADMIN, "refunded already").await;
    // Over MAX_GRANT: the admin is told the bound, nothing is written.
    bot.send(&admin, json!({"text": "/grant 601 9223372036854775807"}));
    bot.said(ADMIN, "over MAX_GRANT (1000000)").await;
    assert_eq!(bot.balance(601), 0);
    // Not an admin: the command is unknown.
    bot.send(&u, json!({"text": "/grant 601 1000"}));
    bot.said(601, "Unknown command").await;
    assert_eq!(bot.balance(601), 0);
    bot.stop().await;
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_restarted_bot_carries_on() {
    let mut bot = Bot::start(&[]).await;
    let u = user(701, "ru");
    bot.sim.fail_next(Fault::RetryAfter {
        method: Some("sendMessage".into()),
        count: 1,
        seconds: 1,
    });
    let t0 = Instant::now();
    bot.send(&u, json!({"text": "/start"}));
    bot.said(701, "Привет").await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "retry_after not honoured"
    );
    assert_eq!(bot.sim.stats().too_many_requests, 1);
    assert_eq!(
        bot.sim
            .sent(Some(701), 0)
            .iter()
            .filter(|c| text_of(c).contains("Привет"))
            .count(),
        1
    );

    // Mid-dialogue: named the avatar, then the bot dies; a message sent while it is down is
    // handled after the restart, in the dialogue where the user was.
    bot.send(&u, json!({"text": "/avatar"}));
    bot.said(701, "Как назовём").await;
    bot.send(&u, json!({"text": "Вера"}));
    bot.said(701, "режим обучения").await;
    bot.kill();
    bot.send(&u, json!({"text": "/cancel"}));
    bot.up().await;
    bot.said(701, "Отменено").await;
    bot.stop().await;
}

#[tokio::test]
async fn webhook_mode_takes_updates_only_with_the_secret() {
    let secret = "hook-secret_0123456789";
    // Telegram calls webhooks over HTTPS only; the test posts to the bot's socket itself.
    let mut bot = Bot::start(&[
        ("TELEGRAM_MODE", "webhook"),
        ("TELEGRAM_WEBHOOK_SECRET", secret),
        ("PUBLIC_URL", "https://bot.example.test"),
    ])
    .await;
    let bind = bot.bind();
    // The bot registered its webhook, secret included.
    let hook = bot.call_of("setWebhook").await;
    assert_eq!(
        hook.params["url"],
        "https://bot.example.test/webhook/telegram"
    );
    assert_eq!(hook.params["secret_token"], secret);
    let update = json!({"update_id": 7001, "message": {"message_id": 1, "date": 1_700_000_000,
        "chat": {"id": 801, "type": "private", "first_name": "W"},
        "from": {"id": 801, "is_bot": false, "first_name": "W", "language_code": "en"},
        "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}});
    let url = format!("http://{bind}/webhook/telegram");
    let http = reqwest::Client::new();
    let post = |secret: Option<&str>, body: String| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = secret {
            r = r.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        r.send()
    };
    assert_eq!(post(None, update.to_string()).await.unwrap().status(), 401);
    assert_eq!(
        post(Some("wrong"), update.to_string())
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(secret), "{not json".into())
            .await
            .unwrap()
            .status(),
        400
    );
    assert!(
        bot.sim.sent(Some(801), 0).is_empty(),
        "a refused update was handled"
    );
    assert_eq!(
        post(Some(secret), update.to_string())
            .await
            .unwrap()
            .status(),
        200
    );
    // Telegram retrying the same update changes nothing.
    assert_eq!(
        post(Some(secret), update.to_string())
            .await
            .unwrap()
            .status(),
        200
    );
    bot.said(801, "Hi! I'm Aisha").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hellos = bot
        .sim
        .sent(Some(801), 0)
        .iter()
        .filter(|c| text_of(c).contains("Hi!"))
        .count();
    assert_eq!(hellos, 1);
    bot.stop().await;
}

/// A training that refuses photos after they were stored (here: put in the store by an
/// operator, not checked by the bot) asks the user in the chat, and the replacements sent
/// there carry the same run on to a ready avatar.
#[tokio::test]
async fn refused_photos_are_replaced_through_the_chat() {
    let mut bot = Bot::start(&[]).await;
    let u = user(901, "en");
    bot.send(&u, json!({"text": "/start"}));
    bot.said(901, "Hi!").await;
    let folder = bot.dir.0.join("data/blobs/uploads/901/ops");
    std::fs::create_dir_all(&folder).unwrap();
    let mut keys = Vec::new();
    for i in 0..10u8 {
        let bytes = if i == 3 {
            jpeg(200, 150, i)
        } else {
            jpeg(640, 800, i)
        };
        std::fs::write(folder.join(format!("{i}.img")), bytes).unwrap();
        keys.push(format!("uploads/901/ops/{i}.img"));
    }
    json(&aisha(
        &bot.dir,
        &[
            "admin", "credits", "grant", "901", "150", "--reason", "test", "--json",
        ],
        &bot.env(),
    ));
    let input =
        json!({"user_id": "901", "name": "Ops", "photos": keys, "preset": "fast"}).to_string();
    let run = json(&aisha(
        &bot.dir,
        &[
            "admin",
            "runs",
            "start",
            "avatar_training",
            "--input",
            &input,
            "--subject",
            "901",
            "--json",
        ],
        &bot.env(),
    ));
    let asked = bot.said(901, "send replacements").await;
    assert!(
        text_of(&asked).contains("photo 4: 200×150"),
        "{}",
        text_of(&asked)
    );
    bot.send(
        &u,
        json!({"photo": {"bytes_b64": b64(&jpeg(640, 800, 99))}}),
    );
    bot.said(901, "carrying on with the training").await;
    bot.said(901, "Avatar “Ops” is ready").await;
    let shown = json(&aisha(
        &bot.dir,
        &[
            "admin",
            "runs",
            "show",
            run["run_id"].as_str().unwrap(),
            "--json",
        ],
        &bot.env(),
    ));
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert_eq!(bot.balance(901), 0);
    bot.stop().await;
}
