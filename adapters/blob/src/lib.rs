//! Blob stores: S3 (MinIO or SeaweedFS in production) and a local folder for the embedded
//! default, whose presigned URLs [`router`] answers.

pub mod local;
mod route;
pub mod s3;

pub use route::router;
