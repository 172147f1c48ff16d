//! Wiring the product: the blob store (S3 or a local folder), the image provider (FAL), the
//! outbox, the ledger, and the workflows' settings.

use std::sync::Arc;

use aisha_blob::local::LocalBlobStore;
use aisha_blob::s3::S3BlobStore;
use aisha_engine::Db;
use aisha_fal::provider::FalProvider;
use aisha_workflows::blob::BlobStore;
use aisha_workflows::credits::Ledger;
use aisha_workflows::outbox::Outbox;
use aisha_workflows::photos::PhotoRules;
use aisha_workflows::product::Product;
use anyhow::Context;

use crate::fal::Fal;
use crate::settings::Settings;

pub struct Blobs {
    pub store: Arc<dyn BlobStore>,
    /// The local folder store, whose presigned URLs this process's HTTP server answers.
    pub local: Option<Arc<LocalBlobStore>>,
}

/// `submits`: this process runs workflow steps, the only ones that touch the bucket, so only
/// they make sure it exists (admin commands and webhook replicas start without a round trip
/// to S3).
pub async fn open_blobs(settings: &Settings, fal: &Fal, submits: bool) -> anyhow::Result<Blobs> {
    match &settings.product.s3 {
        Some(s3) => {
            let store = S3BlobStore::new(s3);
            if submits {
                store.ensure_bucket().await.with_context(|| {
                    format!("S3_BUCKET {} at S3_ENDPOINT {}", s3.bucket, s3.endpoint)
                })?;
            }
            Ok(Blobs {
                store: Arc::new(store),
                local: None,
            })
        }
        None => {
            let root = settings.data_dir.join("blobs");
            // A key of its own, derived from the deployment's secret.
            let key = format!("blobs:{}", fal.secret);
            let local = Arc::new(
                LocalBlobStore::new(&root, &crate::fal::public_url(settings), key.as_bytes())
                    .with_context(|| format!("DATA_DIR: blob folder {}", root.display()))?,
            );
            Ok(Blobs {
                store: local.clone(),
                local: Some(local),
            })
        }
    }
}

pub fn product(settings: &Settings, db: &Db, blobs: &Blobs, fal: &Fal) -> Product {
    Product {
        db: db.clone(),
        ledger: Ledger::with_limits(db.clone(), settings.credit_limits),
        blobs: blobs.store.clone(),
        images: Arc::new(FalProvider {
            jobs: fal.jobs.clone(),
            apps: settings.fal.apps.clone(),
            http: reqwest::Client::new(),
        }),
        notifier: Arc::new(Outbox::new(db.clone())),
        prices: settings.product.prices,
        waits: settings.product.waits,
        photo_rules: PhotoRules::default(),
    }
}
