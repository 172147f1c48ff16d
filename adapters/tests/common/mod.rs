//! Shared by the FAL tests: photos and zips made at run time, a tiny file server, and the
//! whole FAL world of a test.

#![allow(dead_code)]

pub mod telegram;
pub mod world;

use std::io::Write;

use aisha_adapters::blob::s3::S3Settings;
use aisha_adapters::http::HttpServer;
use salvo::prelude::*;

/// A photo-like PNG: a coloured gradient of `w`×`h`.
pub fn photo(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8 ^ seed,
            (y * 255 / h) as u8,
            seed.wrapping_mul(37),
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A training zip of `n` photos with caption files.
pub fn training_zip(n: u8) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for i in 0..n {
            z.start_file(format!("{i:02}.png"), opts).unwrap();
            z.write_all(&photo(640, 800, i)).unwrap();
            z.start_file(format!("{i:02}.txt"), opts).unwrap();
            z.write_all(b"a photo of [trigger]").unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[handler]
async fn serve_zip(depot: &mut Depot, res: &mut Response) {
    let bytes = depot.get_typed::<Vec<u8>>().cloned().unwrap_or_default();
    res.add_header("content-type", "application/zip", true)
        .unwrap();
    res.body(bytes);
}

/// Serves `bytes` at `/data.zip`; returns the server and the URL.
pub async fn serve_bytes(bytes: Vec<u8>) -> (HttpServer, String) {
    let router = Router::new()
        .hoop(salvo::affix_state::inject(bytes))
        .push(Router::with_path("data.zip").get(serve_zip));
    let server = HttpServer::start("127.0.0.1:0", router).await.unwrap();
    let url = format!("http://{}/data.zip", server.addr);
    (server, url)
}

/// The S3 test server scripts/test starts (SeaweedFS), with a bucket of the test's own.
pub fn s3_settings() -> S3Settings {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    S3Settings {
        endpoint: var("AISHA_TEST_S3", "http://127.0.0.1:8333"),
        public_endpoint: None,
        bucket: format!(
            "aisha-t-{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        ),
        access_key_id: var("AISHA_TEST_S3_KEY", "aisha-test-key"),
        secret_access_key: var("AISHA_TEST_S3_SECRET", "aisha-test-secret-0123456789"),
        region: "us-east-1".into(),
    }
}
