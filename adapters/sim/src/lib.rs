//! Aisha's test doubles, apart from the product: local servers that speak FAL's queue and
//! webhook wire format ([`fal`]) and the Telegram Bot API ([`telegram`]) closely enough that
//! FAL's own Python client, aiogram and teloxide work against them; generators of test photos
//! and training zips ([`photos`]); the test S3 server's settings ([`s3`]). The binary uses
//! them for `demo`, `sim-fal`, `sim-telegram`, the built-in simulator of the embedded default
//! and the benches.

pub mod fal;
pub mod photos;
pub mod s3;
pub mod telegram;

/// Our servers refuse large bodies before routing; a simulator must instead answer them as
/// FAL or Telegram would (Telegram takes 50 MB uploads and words its own refusals).
fn uncapped() -> aisha_http::HttpLimits {
    aisha_http::HttpLimits {
        max_body: usize::MAX,
        ..aisha_http::HttpLimits::default()
    }
}
