//! Shared by the tests of the local Bot API server: a server, a user, a JPEG, and reading
//! updates and errors the way teloxide returns them.

// Shared by three test binaries, each using a part of it.
#![allow(dead_code)]

use aisha_sim::telegram::{SimConfig, SimTelegram, SimUser};
use teloxide::prelude::*;
use teloxide::types::{Update, UpdateKind};
use teloxide::{ApiError, RequestError};

pub async fn sim() -> SimTelegram {
    SimTelegram::start(SimConfig::default()).await.unwrap()
}

pub fn anna() -> SimUser {
    SimUser::new(42, "Anna").language("ru")
}

/// A small JPEG, as a phone would send.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    aisha_sim::photos::jpeg(w, h, 0)
}

/// All pending updates, confirmed (the next call starts after them).
pub async fn drain(bot: &Bot) -> Vec<Update> {
    let updates = bot.get_updates().await.unwrap();
    if let Some(last) = updates.last() {
        bot.get_updates()
            .offset(last.id.0 as i32 + 1)
            .limit(1)
            .await
            .unwrap();
    }
    updates
}

pub fn message(u: &Update) -> &Message {
    match &u.kind {
        UpdateKind::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

pub fn api_error(r: Result<impl std::fmt::Debug, RequestError>) -> ApiError {
    match r {
        Err(RequestError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}
