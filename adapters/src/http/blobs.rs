//! `GET /blobs/{key}?expires=…&sig=…`: the embedded blob store's presigned URLs (what FAL
//! downloads training zips and LoRAs from when there is no S3). Anything not signed by us,
//! or expired, is a 403.

use aisha_workflows::blob::{BlobError, BlobKey, BlobStore};
use salvo::http::StatusCode;
use salvo::prelude::*;

use super::AppState;

pub fn router() -> Router {
    Router::with_path("blobs/{**key}").get(blob)
}

#[handler]
async fn blob(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(store) = depot
        .get_typed::<AppState>()
        .ok()
        .and_then(|s| s.blobs.clone())
    else {
        res.status_code(StatusCode::NOT_FOUND);
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
    match store.get(&key).await {
        Ok(bytes) => {
            let ct = store
                .head(&key)
                .await
                .ok()
                .flatten()
                .and_then(|m| m.content_type)
                .unwrap_or_else(|| "application/octet-stream".into());
            let _ = res.add_header("content-type", ct, true);
            res.body(bytes.to_vec());
        }
        Err(BlobError::NotFound(_)) => res.status_code(StatusCode::NOT_FOUND).render(""),
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve a blob");
            res.status_code(StatusCode::SERVICE_UNAVAILABLE).render("");
        }
    }
}
