//! Aisha's product: the avatar training and portrait generation workflows, the credits ledger,
//! photo validation and the style catalogue. They reach the outside only through the ports
//! [`blob::BlobStore`], [`provider::ImageProvider`] and [`outbox::Notifier`].

pub mod avatar;
pub mod avatars;
pub mod blob;
pub mod credits;
pub mod gallery;
pub mod outbox;
pub mod photos;
pub mod portrait;
pub mod product;
pub mod provider;
pub mod styles;
