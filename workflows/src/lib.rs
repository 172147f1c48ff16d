//! Aisha's product: the avatar training, portrait generation and portrait upscale workflows,
//! the credits ledger, photo validation and the style catalogue. They reach the outside only
//! through the ports [`blob::BlobStore`], [`provider::ImageProvider`] and
//! [`outbox::Notifier`], and tell users typed [`notice::Notice`]s that the bot words.
//!
//! Each product table has one owner here, the only code that writes or reads its SQL:
//! `avatars` ([`avatars::Avatars`]), `gallery` ([`gallery::Gallery`]), `outbox`
//! ([`outbox::Outbox`]) and the credits tables ([`credits::Ledger`]).

pub mod avatar;
pub mod avatars;
pub mod blob;
pub mod credits;
pub mod gallery;
pub mod notice;
pub mod outbox;
pub mod photos;
pub mod portrait;
pub mod product;
pub mod provider;
pub mod styles;
pub mod upscale;

/// This crate's tables (credit accounts and ledger, avatars, gallery, outbox), applied with [`aisha_engine::Db::apply`].
pub static MIGRATIONS: aisha_engine::Migrations = aisha_engine::Migrations {
    postgres: || sqlx::migrate!("../migrations/workflows/postgres"),
    sqlite: || sqlx::migrate!("../migrations/workflows/sqlite"),
};
