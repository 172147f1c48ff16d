//! `GET /blobs/{key}?expires=…&sig=…`: the embedded blob store's presigned URLs (what FAL
//! downloads training zips and LoRAs from when there is no S3). Anything not signed by us,
//! or expired, is a 403. The file is streamed with its `Content-Length`.

use aisha_workflows::blob::BlobKey;
use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use salvo::prelude::*;
use tokio_util::io::ReaderStream;

use std::sync::Arc;

use crate::local::LocalBlobStore;

/// `GET /blobs/{key}`, answered from `store`; mounted where the embedded store is in use.
pub fn router(store: Arc<LocalBlobStore>) -> Router {
    Router::with_path("blobs/{**key}")
        .hoop(salvo::affix_state::inject(store))
        .get(blob)
}

#[handler]
async fn blob(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(store) = depot.get_typed::<Arc<LocalBlobStore>>().ok().cloned() else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    let key = req.param::<String>("key").unwrap_or_default();
    let expires = req.query::<i64>("expires").unwrap_or(0);
    let sig = req.query::<String>("sig").unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let Ok(key) = BlobKey::try_from(key) else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    if !store.check_url(key.as_str(), expires, &sig, now) {
        res.status_code(StatusCode::FORBIDDEN);
        return;
    }
    match store.open(&key).await {
        Ok(Some(found)) => {
            let ct = found
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into());
            let _ = res.add_header(CONTENT_TYPE, ct, true);
            let _ = res.add_header(CONTENT_LENGTH, found.size, true);
            // Streamed from the open file in chunks, never read whole.
            res.stream(ReaderStream::new(found.file));
        }
        Ok(None) => {
            res.status_code(StatusCode::NOT_FOUND).render("");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve a blob");
            res.status_code(StatusCode::SERVICE_UNAVAILABLE).render("");
        }
    }
}
