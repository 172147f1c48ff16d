//! The blob store contract, against a local folder and a real S3 server (SeaweedFS, started
//! by scripts/test): put/get/head/list/delete, multipart uploads, presigned GETs that work
//! over HTTP and stop working when they expire.

use std::sync::Arc;
use std::time::Duration;

use aisha_blob::local::LocalBlobStore;
use aisha_blob::s3::S3BlobStore;
use aisha_http::{HttpLimits, HttpServer};
use aisha_workflows::blob::{BlobError, BlobKey, BlobStore};
use bytes::Bytes;

fn s3() -> S3BlobStore {
    S3BlobStore::new(&aisha_sim::s3::test_bucket())
}

fn k(s: &str) -> BlobKey {
    BlobKey::try_from(s.to_string()).unwrap()
}

async fn contract(store: &dyn BlobStore) {
    let a = k("runs/01/a.jpg");
    store
        .put(&a, Bytes::from_static(b"jpeg bytes"), "image/jpeg")
        .await
        .unwrap();
    store
        .put(&k("runs/01/b.png"), Bytes::from_static(b"png"), "image/png")
        .await
        .unwrap();
    store
        .put(&k("runs/02/c.txt"), Bytes::from_static(b"c"), "text/plain")
        .await
        .unwrap();
    assert_eq!(&store.get(&a).await.unwrap()[..], b"jpeg bytes");
    let meta = store.head(&a).await.unwrap().unwrap();
    assert_eq!(meta.size, 10);
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));
    let listed: Vec<String> = store
        .list("runs/01/")
        .await
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(listed, ["runs/01/a.jpg", "runs/01/b.png"]);

    // Above the part size: a multipart upload on S3.
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let big_key = k("big/lora.safetensors");
    store
        .put(
            &big_key,
            Bytes::from(big.clone()),
            "application/octet-stream",
        )
        .await
        .unwrap();
    assert!(
        store.get(&big_key).await.unwrap() == big,
        "multipart round trip"
    );

    // A presigned URL is a plain GET anyone holding it can make.
    let url = store
        .presign_get(&a, Duration::from_secs(60))
        .await
        .unwrap();
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "10");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"jpeg bytes");
    // A forged one is refused.
    let forged = format!("{}x", &url[..url.len() - 1]);
    assert_eq!(
        reqwest::get(&forged).await.unwrap().status(),
        403,
        "forged signature"
    );
    // An expired one is refused.
    let short = store.presign_get(&a, Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(reqwest::get(&short).await.unwrap().status(), 403, "expired");

    store.delete(&a).await.unwrap();
    assert!(store.head(&a).await.unwrap().is_none());
    assert!(matches!(store.get(&a).await, Err(BlobError::NotFound(_))));
    store.delete(&a).await.unwrap();
}

#[tokio::test]
async fn s3_server() {
    let store = s3();
    store
        .ensure_bucket()
        .await
        .expect("the S3 test server (started by scripts/test) must answer");
    contract(&store).await;
}

/// Outside services reach the store under another name than the workers do: presigned URLs
/// are signed for that public name, and work there.
#[tokio::test]
async fn s3_presigns_for_the_public_endpoint() {
    let mut settings = aisha_sim::s3::test_bucket();
    let public = settings.endpoint.replace("127.0.0.1", "localhost");
    assert_ne!(
        public, settings.endpoint,
        "the test needs an endpoint at 127.0.0.1"
    );
    settings.public_endpoint = Some(public.clone());
    let store = S3BlobStore::new(&settings);
    store.ensure_bucket().await.unwrap();
    let key = k("public/a.jpg");
    store
        .put(&key, Bytes::from_static(b"seen from outside"), "image/jpeg")
        .await
        .unwrap();
    let url = store
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        url.starts_with(&public),
        "{}",
        url.split('?').next().unwrap_or("")
    );
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.bytes().await.unwrap()[..], b"seen from outside");
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn local_folder_served_by_our_http() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(LocalBlobStore::new(dir.path(), &base, b"k").unwrap());
    let server = HttpServer::start_on(
        listener,
        aisha_blob::router(store.clone()),
        HttpLimits::default(),
    )
    .unwrap();
    contract(store.as_ref()).await;
    server.stop().await;
}
