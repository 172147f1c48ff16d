//! The local Telegram Bot API server against a real teloxide `Bot` over HTTP: every reply
//! the simulator sends must parse into teloxide's (strict) types, and carry what it should.
//! Updates, long polling, keyboards, edits, faults, raw HTTP and the control routes here;
//! files in `telegram_sim_files.rs`, Stars in `telegram_sim_payments.rs`.

mod common;

use std::time::{Duration, Instant};

use aisha_sim::telegram::{Fault, UserAction};
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageEntityKind, ParseMode, Update,
    UpdateKind,
};
use teloxide::{ApiError, RequestError};

use common::{anna, api_error, drain, jpeg, message, sim};

#[tokio::test]
async fn get_me_is_a_bot_teloxide_accepts() {
    let sim = sim().await;
    let me = sim.bot().get_me().await.unwrap();
    assert!(me.user.is_bot);
    assert_eq!(me.username(), "aisha_bot");
    assert_eq!(me.user.id.0 as i64, sim.bot_id());
    assert!(!me.has_main_web_app);
    sim.stop().await;
}

#[tokio::test]
async fn updates_come_back_until_an_offset_confirms_them() {
    let sim = sim().await;
    let bot = sim.bot();
    let start = sim.push(UserAction::text(&anna(), "/start ref_7"));
    let photo = sim.push(UserAction::photo(&anna(), jpeg(64, 48)).with_caption("me"));
    let doc =
        sim.push(UserAction::document(&anna(), jpeg(8, 8), "a.jpg", "image/jpeg").in_group("g1"));
    assert!(start.update_id < photo.update_id && photo.update_id < doc.update_id);
    assert_eq!(photo.message_id, start.message_id.map(|m| m + 1));

    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 3);
    let first = message(&updates[0]);
    assert_eq!(first.text(), Some("/start ref_7"));
    assert_eq!(first.chat.id, ChatId(42));
    assert_eq!(
        first.from.as_ref().map(|u| u.language_code.as_deref()),
        Some(Some("ru"))
    );
    let entity = &first.entities().unwrap()[0];
    assert_eq!(
        (entity.kind.clone(), entity.offset, entity.length),
        (MessageEntityKind::BotCommand, 0, 6)
    );
    let sizes = message(&updates[1]).photo().unwrap();
    assert_eq!((sizes[0].width, sizes[0].height), (64, 48));
    assert_eq!(sizes[0].file.id.0, photo.file_id.clone().unwrap());
    assert_eq!(message(&updates[1]).caption(), Some("me"));
    let d = message(&updates[2]).document().unwrap();
    assert_eq!(d.file_name.as_deref(), Some("a.jpg"));
    assert_eq!(
        d.mime_type.as_ref().map(|m| m.to_string()),
        Some("image/jpeg".into())
    );
    assert_eq!(
        message(&updates[2]).media_group_id().map(|g| g.0.as_str()),
        Some("g1")
    );

    // Unconfirmed updates come again; an offset past one confirms it and all before it.
    assert_eq!(bot.get_updates().await.unwrap().len(), 3);
    let rest = bot
        .get_updates()
        .offset(photo.update_id as i32)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    let none = bot
        .get_updates()
        .offset(doc.update_id as i32 + 1)
        .await
        .unwrap();
    assert!(none.is_empty());
    let stats = sim.stats();
    assert_eq!(
        (
            stats.updates_pushed,
            stats.updates_confirmed,
            stats.get_updates_calls
        ),
        (3, 3, 4)
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_an_update_arrives() {
    let sim = sim().await;
    let bot = sim.bot();
    let started = Instant::now();
    let poll = tokio::spawn(async move { bot.get_updates().timeout(8).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.push(UserAction::text(&anna(), "hello"));
    let updates = poll.await.unwrap().unwrap();
    assert_eq!(message(&updates[0]).text(), Some("hello"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // With nothing to deliver it waits the whole timeout, then answers an empty list.
    let bot = sim.bot();
    let offset = updates[0].id.0 as i32 + 1;
    let started = Instant::now();
    assert!(
        bot.get_updates()
            .offset(offset)
            .timeout(1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    sim.stop().await;
}

#[tokio::test]
async fn a_second_poller_ends_the_first_with_a_conflict() {
    let sim = sim().await;
    let first = sim.bot();
    let poll = tokio::spawn(async move { first.get_updates().timeout(5).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = sim.bot().get_updates().await.unwrap();
    assert!(second.is_empty());
    let e = api_error(poll.await.unwrap());
    assert_eq!(e, ApiError::TerminatedByOtherGetUpdates);
    sim.stop().await;
}

#[tokio::test]
async fn a_button_press_carries_the_message_and_its_keyboard() {
    let sim = sim().await;
    let bot = sim.bot();
    sim.push(UserAction::text(&anna(), "/start"));
    let keyboard = InlineKeyboardMarkup::new([
        [InlineKeyboardButton::callback("Ещё раз", "again:1")],
        [InlineKeyboardButton::callback(
            "Показать промпт",
            "prompt:1",
        )],
    ]);
    let sent = bot
        .send_message(ChatId(42), "Готово!")
        .reply_markup(keyboard.clone())
        .await
        .unwrap();
    assert_eq!(
        sent.id.0, 2,
        "users and the bot share the chat's message ids"
    );
    assert_eq!(sent.text(), Some("Готово!"));
    assert_eq!(sent.reply_markup(), Some(&keyboard));
    assert_eq!(sent.from.as_ref().map(|u| u.is_bot), Some(true));

    let press = sim.push(UserAction::callback(&anna(), sent.id.0, "again:1"));
    let missing = sim.push(UserAction::callback(&anna(), 999, "x"));
    let updates = drain(&bot).await;
    let UpdateKind::CallbackQuery(q) = &updates[1].kind else {
        panic!("{:?}", updates[1]);
    };
    assert_eq!(q.id.0, press.callback_query_id.clone().unwrap());
    assert_eq!(q.data.as_deref(), Some("again:1"));
    let on = q
        .message
        .as_ref()
        .and_then(|m| m.regular_message())
        .unwrap();
    assert_eq!((on.id, on.reply_markup()), (sent.id, Some(&keyboard)));
    let UpdateKind::CallbackQuery(orphan) = &updates[2].kind else {
        panic!("{:?}", updates[2]);
    };
    assert!(orphan.message.is_none());

    bot.answer_callback_query(q.id.clone())
        .text("…")
        .await
        .unwrap();
    let again = bot.answer_callback_query(q.id.clone()).await;
    assert_eq!(api_error(again), ApiError::InvalidQueryId);
    let id = missing.callback_query_id.unwrap();
    bot.answer_callback_query(teloxide::types::CallbackQueryId(id))
        .await
        .unwrap();

    let recorded = sim.sent(Some(42), 0);
    assert_eq!(recorded[0].method, "sendMessage");
    assert_eq!(recorded[0].message_ids, vec![2]);
    assert_eq!(
        recorded[0].buttons()[1],
        ("Показать промпт".into(), "prompt:1".into())
    );
    assert_eq!(recorded[1].method, "answerCallbackQuery");
    assert_eq!(recorded[1].str("text"), Some("…"));
    sim.stop().await;
}

#[tokio::test]
async fn edits_replace_text_and_keyboard_and_deletes_forget() {
    let sim = sim().await;
    let bot = sim.bot();
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("A", "a")]]);
    let m = bot
        .send_message(ChatId(42), "one")
        .reply_markup(keyboard.clone())
        .await
        .unwrap();

    let edited = bot
        .edit_message_text(ChatId(42), m.id, "two")
        .await
        .unwrap();
    assert_eq!(edited.text(), Some("two"));
    assert!(
        edited.reply_markup().is_none(),
        "an edit without markup drops the keyboard"
    );
    assert!(edited.edit_date().is_some());
    let same = bot.edit_message_text(ChatId(42), m.id, "two").await;
    assert_eq!(api_error(same), ApiError::MessageNotModified);
    let marked = bot
        .edit_message_reply_markup(ChatId(42), m.id)
        .reply_markup(keyboard.clone())
        .await
        .unwrap();
    assert_eq!(marked.reply_markup(), Some(&keyboard));

    let too_long = bot.send_message(ChatId(42), "я".repeat(4097)).await;
    assert_eq!(api_error(too_long), ApiError::MessageIsTooLong);
    let empty = bot.send_message(ChatId(42), "  ").await;
    assert_eq!(api_error(empty), ApiError::MessageTextIsEmpty);

    bot.delete_message(ChatId(42), m.id).await.unwrap();
    assert_eq!(
        api_error(bot.delete_message(ChatId(42), m.id).await),
        ApiError::MessageToDeleteNotFound
    );
    let gone = bot.edit_message_text(ChatId(42), m.id, "three").await;
    assert_eq!(api_error(gone), ApiError::MessageToEditNotFound);
    sim.stop().await;
}

#[tokio::test]
async fn parse_modes_become_entities_and_bad_markup_is_refused() {
    let sim = sim().await;
    let bot = sim.bot();
    let html = bot
        .send_message(ChatId(42), "<b>Баланс:</b> 150 &lt;монет&gt;")
        .parse_mode(ParseMode::Html)
        .await
        .unwrap();
    assert_eq!(html.text(), Some("Баланс: 150 <монет>"));
    assert_eq!(html.entities().unwrap()[0].kind, MessageEntityKind::Bold);
    let md = bot
        .send_message(ChatId(42), "*Готово*\\! Осталось 5\\.")
        .parse_mode(ParseMode::MarkdownV2)
        .await
        .unwrap();
    assert_eq!(md.text(), Some("Готово! Осталось 5."));
    let unescaped = bot
        .send_message(ChatId(42), "Готово.")
        .parse_mode(ParseMode::MarkdownV2)
        .await;
    assert!(matches!(
        api_error(unescaped),
        ApiError::CantParseEntities(_)
    ));
    sim.stop().await;
}

#[tokio::test]
async fn a_retry_after_fault_reaches_teloxide_as_retry_after() {
    let sim = sim().await;
    let bot = sim.bot();
    sim.fail_next(Fault::RetryAfter {
        method: Some("sendMessage".into()),
        count: 1,
        seconds: 3,
    });
    match bot.send_message(ChatId(42), "hi").await {
        Err(RequestError::RetryAfter(s)) => assert_eq!(s.seconds(), 3),
        other => panic!("{other:?}"),
    }
    bot.send_message(ChatId(42), "hi").await.unwrap();
    sim.fail_next(Fault::Error {
        method: None,
        count: 1,
        code: 403,
        description: "Forbidden: bot was blocked by the user".into(),
    });
    bot.get_me().await.unwrap();
    let blocked = bot
        .send_photo(ChatId(42), InputFile::memory(jpeg(8, 8)))
        .await;
    assert_eq!(api_error(blocked), ApiError::BotBlocked);
    let stats = sim.stats();
    assert_eq!((stats.too_many_requests, stats.errors), (1, 2));
    assert_eq!(stats.calls.get("sendMessage"), Some(&2));
    assert_eq!(sim.sent(Some(42), 0).len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn commands_webhooks_and_chat_actions() {
    let sim = sim().await;
    let bot = sim.bot();
    bot.set_my_commands([teloxide::types::BotCommand::new("start", "Начать")])
        .await
        .unwrap();
    let cmds = bot.get_my_commands().await.unwrap();
    assert_eq!(cmds[0].command, "start");
    bot.send_chat_action(ChatId(42), teloxide::types::ChatAction::UploadPhoto)
        .await
        .unwrap();

    bot.set_webhook("https://example.com/tg".parse().unwrap())
        .await
        .unwrap();
    let info = bot.get_webhook_info().await.unwrap();
    assert_eq!(
        info.url.map(|u| u.to_string()),
        Some("https://example.com/tg".into())
    );
    assert!(
        matches!(bot.get_updates().await, Err(RequestError::Api(ApiError::Unknown(t))) if t.starts_with("Conflict"))
    );
    bot.delete_webhook().await.unwrap();
    assert!(bot.get_webhook_info().await.unwrap().url.is_none());
    assert!(bot.get_updates().await.unwrap().is_empty());
    let insecure = bot
        .set_webhook("http://example.com/tg".parse().unwrap())
        .await;
    assert_eq!(api_error(insecure), ApiError::WebhookRequireHttps);
    sim.stop().await;
}

#[tokio::test]
async fn raw_http_any_case_methods_wrong_tokens_and_controls() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let base = &sim.base_url;
    let token = sim.token().to_string();

    let r = http
        .post(format!("{base}/bot{token}/sendmessage"))
        .form(&[
            ("chat_id", "42"),
            ("text", "form"),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"A","callback_data":"a"}]]}"#,
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg: Message = serde_json::from_value(body["result"].clone()).unwrap();
    assert_eq!(msg.text(), Some("form"));
    assert!(msg.reply_markup().is_some());
    let q = http
        .get(format!("{base}/bot{token}/GETME?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200);

    let wrong = http
        .post(format!("{base}/bot1:wrong/getMe"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let unknown = http
        .post(format!("{base}/bot{token}/sendSticker"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["description"], "Not Found: method not found");
    let nofile = http
        .get(format!("{base}/file/bot{token}/photos/file_99.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(nofile.status(), 404);

    // The control API mirrors the in-process one.
    let pushed: Vec<serde_json::Value> = http
        .post(format!("{base}/_sim/updates"))
        .json(&serde_json::json!([
            {"user": {"id": 42, "first_name": "Anna", "language_code": "ru"}, "text": "/start"},
            {"user": {"id": 42, "first_name": "Anna"}, "callback": {"data": "a", "message_id": msg.id.0}},
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pushed.len(), 2);
    assert!(pushed[1]["callback_query_id"].is_string());
    let refused = http
        .post(format!("{base}/_sim/updates"))
        .json(&serde_json::json!({"user": {"id": 1, "first_name": "A"}, "text": "a", "photo": {"bytes_b64": ""}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let faults = http
        .post(format!("{base}/_sim/faults"))
        .json(&serde_json::json!({"kind": "retry_after", "seconds": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 200);
    let limited = http
        .post(format!("{base}/bot{token}/sendMessage"))
        .json(&serde_json::json!({"chat_id": 42, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["parameters"]["retry_after"], 2);

    let sent: Vec<serde_json::Value> = http
        .get(format!("{base}/_sim/sent?chat_id=42&after=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["method"], "sendMessage");
    assert_eq!(
        sent[0]["params"]["reply_markup"]["inline_keyboard"][0][0]["text"],
        "A"
    );
    let stats: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["updates_pushed"], 2);
    assert_eq!(stats["too_many_requests"], 1);
    assert_eq!(stats["calls"]["getMe"], 1);

    let updates = drain(&sim.bot()).await;
    let UpdateKind::CallbackQuery(q) = &updates[1].kind else {
        panic!()
    };
    assert!(
        q.message
            .as_ref()
            .and_then(|m| m.regular_message())
            .and_then(|m| m.reply_markup())
            .is_some()
    );
    sim.stop().await;
}

#[tokio::test]
async fn wait_sent_sees_calls_made_while_waiting() {
    let sim = sim().await;
    let bot = sim.bot();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        bot.send_message(ChatId(42), "later").await.unwrap();
    });
    let call = sim
        .wait_sent(
            42,
            |c| c.str("text") == Some("later"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(call.seq, 1);
    send.await.unwrap();
    assert!(
        sim.wait_sent(42, |c| c.method == "sendPhoto", Duration::from_millis(100))
            .await
            .is_none()
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_teloxide_dispatcher_polls_and_answers() {
    let sim = sim().await;
    let handler = Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
        let text = format!("echo: {}", msg.text().unwrap_or(""));
        bot.send_message(msg.chat.id, text).await?;
        respond(())
    });
    let mut dispatcher = Dispatcher::builder(sim.bot(), handler).build();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });
    sim.push(UserAction::text(&anna(), "/start"));
    let reply = sim
        .wait_sent(42, |c| c.method == "sendMessage", Duration::from_secs(10))
        .await
        .expect("the dispatcher answers");
    assert_eq!(reply.str("text"), Some("echo: /start"));
    let stats = sim.stats();
    // teloxide's polling checks for a webhook before it starts polling.
    for m in ["getMe", "getWebhookInfo", "getUpdates"] {
        assert!(stats.calls.contains_key(m), "{m}: {:?}", stats.calls);
    }
    task.abort();
    sim.stop().await;
}

#[tokio::test]
async fn stopping_ends_a_pending_long_poll() {
    let sim = sim().await;
    let bot = sim.bot();
    let poll = tokio::spawn(async move { bot.get_updates().timeout(30).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    sim.stop().await;
    assert!(poll.await.unwrap().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(3));
}
