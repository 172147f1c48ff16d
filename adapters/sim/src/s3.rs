//! The S3 server of the test environment: SeaweedFS (`weed mini`), which `scripts/test`
//! starts on 127.0.0.1:8333 with the test credentials unless `AISHA_TEST_S3*` say otherwise.

use aisha_blob::s3::S3Settings;

/// Settings for that server, with a bucket of the caller's own (a fresh name each call).
pub fn test_bucket() -> S3Settings {
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
