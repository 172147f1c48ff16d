//! The local Telegram Bot API server's files against teloxide: photos and documents sent
//! from memory and downloaded back, users' files, albums, and Telegram's size limits.

mod common;

use aisha_sim::telegram::UserAction;
use teloxide::ApiError;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{InputFile, InputMedia, InputMediaDocument, InputMediaPhoto};

use common::{anna, api_error, drain, jpeg, message, sim};

#[tokio::test]
async fn a_photo_from_memory_is_stored_and_downloadable() {
    let sim = sim().await;
    let bot = sim.bot();
    let bytes = jpeg(96, 64);
    let m = bot
        .send_photo(ChatId(42), InputFile::memory(bytes.clone()))
        .caption("Ваш портрет")
        .await
        .unwrap();
    let size = m.photo().unwrap().last().unwrap();
    assert_eq!(
        (size.width, size.height, size.file.size as usize),
        (96, 64, bytes.len())
    );
    assert_eq!(m.caption(), Some("Ваш портрет"));

    let file = bot.get_file(size.file.id.clone()).await.unwrap();
    assert!(file.path.starts_with("photos/"), "{}", file.path);
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, bytes);
    assert_eq!(
        sim.file_bytes(&size.file.id.0).unwrap().as_ref(),
        bytes.as_slice()
    );

    // Re-sending by file id keeps the file and uploads nothing.
    let again = bot
        .send_photo(ChatId(42), InputFile::file_id(size.file.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        again.photo().unwrap()[0].file.unique_id,
        size.file.unique_id
    );

    let calls = sim.sent(Some(42), 0);
    let f = &calls[0].files[0];
    assert_eq!(
        (f.field.as_str(), f.bytes, f.width, f.height),
        ("photo", bytes.len(), Some(96), Some(64))
    );
    assert_eq!(f.sha256.len(), 64);
    assert_eq!(&f.sha256[..16], size.file.unique_id.0);
    assert_eq!(calls[0].str("caption"), Some("Ваш портрет"));
    assert_eq!(
        calls[0].params["chat_id"], 42,
        "multipart numbers are recorded as numbers"
    );
    sim.stop().await;
}

#[tokio::test]
async fn users_files_are_downloadable_and_keep_a_content_based_unique_id() {
    let sim = sim().await;
    let bot = sim.bot();
    let bytes = jpeg(32, 32);
    let a = sim.push(UserAction::photo(&anna(), bytes.clone()));
    let b = sim.push(UserAction::photo(&anna(), bytes.clone()));
    let updates = drain(&bot).await;
    let sizes: Vec<_> = updates
        .iter()
        .map(|u| message(u).photo().unwrap()[0].clone())
        .collect();
    assert_ne!(a.file_id, b.file_id);
    assert_eq!(sizes[0].file.unique_id, sizes[1].file.unique_id);
    let file = bot.get_file(sizes[1].file.id.clone()).await.unwrap();
    let mut out = Vec::new();
    bot.download_file(&file.path, &mut out).await.unwrap();
    assert_eq!(out, bytes);
    let unknown = bot.get_file(teloxide::types::FileId("nope".into())).await;
    assert_eq!(api_error(unknown), ApiError::FileIdInvalid);
    sim.stop().await;
}

#[tokio::test]
async fn an_album_of_three_photos_shares_a_media_group() {
    let sim = sim().await;
    let bot = sim.bot();
    let media: Vec<InputMedia> = (0..3)
        .map(|i| {
            InputMedia::Photo(
                InputMediaPhoto::new(InputFile::memory(jpeg(40 + i, 30))).caption(format!("#{i}")),
            )
        })
        .collect();
    let msgs = bot.send_media_group(ChatId(42), media).await.unwrap();
    assert_eq!(msgs.len(), 3);
    let group = msgs[0].media_group_id().cloned().unwrap();
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.media_group_id(), Some(&group));
        assert_eq!(m.caption(), Some(format!("#{i}").as_str()));
        let p = &m.photo().unwrap()[0];
        assert_eq!(p.width, 40 + i as u32);
        assert!(sim.file_bytes(&p.file.id.0).is_some());
    }
    let call = &sim.sent(Some(42), 0)[0];
    assert_eq!(call.method, "sendMediaGroup");
    assert_eq!(
        call.message_ids,
        msgs.iter().map(|m| m.id.0).collect::<Vec<_>>()
    );
    assert_eq!(
        call.files
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>(),
        ["media[0]", "media[1]", "media[2]"]
    );

    let one = bot
        .send_media_group(
            ChatId(42),
            [InputMedia::Photo(InputMediaPhoto::new(InputFile::memory(
                jpeg(8, 8),
            )))],
        )
        .await;
    assert_eq!(
        api_error(one),
        ApiError::Unknown("Bad Request: too few media".into())
    );
    let mixed = bot
        .send_media_group(
            ChatId(42),
            [
                InputMedia::Photo(InputMediaPhoto::new(InputFile::memory(jpeg(8, 8)))),
                InputMedia::Document(InputMediaDocument::new(InputFile::memory(jpeg(8, 8)))),
            ],
        )
        .await;
    assert!(matches!(api_error(mixed), ApiError::Unknown(_)));
    assert_eq!(
        sim.sent(Some(42), 0).len(),
        1,
        "refused calls are not recorded"
    );
    sim.stop().await;
}

#[tokio::test]
async fn documents_and_oversized_or_odd_photos() {
    let sim = sim().await;
    let bot = sim.bot();
    let doc = bot
        .send_document(
            ChatId(42),
            InputFile::memory(b"%PDF-1.4 report".to_vec()).file_name("report.pdf"),
        )
        .await
        .unwrap();
    let d = doc.document().unwrap();
    assert_eq!(d.file_name.as_deref(), Some("report.pdf"));
    let file = bot.get_file(d.file.id.clone()).await.unwrap();
    assert!(file.path.starts_with("documents/") && file.path.ends_with(".pdf"));

    let big = bot
        .send_photo(ChatId(42), InputFile::memory(vec![0u8; 12 * 1024 * 1024]))
        .await;
    assert_eq!(
        api_error(big),
        ApiError::Unknown("Bad Request: file is too big".into())
    );
    let thin = bot
        .send_photo(ChatId(42), InputFile::memory(jpeg(2100, 100)))
        .await;
    assert_eq!(
        api_error(thin),
        ApiError::Unknown("Bad Request: PHOTO_INVALID_DIMENSIONS".into())
    );
    let garbage = bot
        .send_photo(ChatId(42), InputFile::memory(b"not an image".to_vec()))
        .await;
    assert_eq!(api_error(garbage), ApiError::ImageProcessFailed);
    let as_photo = bot
        .send_photo(ChatId(42), InputFile::file_id(d.file.id.clone()))
        .await;
    assert!(
        matches!(api_error(as_photo), ApiError::Unknown(t) if t.contains("can't use file of type Document as Photo"))
    );
    let stats = sim.stats();
    assert_eq!(stats.calls.get("sendPhoto"), Some(&4));
    assert_eq!(stats.errors, 4);
    sim.stop().await;
}
