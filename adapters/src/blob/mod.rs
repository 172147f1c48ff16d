//! Blob stores: S3 (MinIO in production) and a local folder for the embedded default.

pub mod local;
pub mod s3;
