//! The S3 blob store (aws-sdk-s3): a custom endpoint, path-style addressing and static keys,
//! as MinIO and other S3-compatible servers want. Large files go up in parts.

use std::time::Duration;

use aisha_workflows::blob::{BlobError, BlobKey, BlobMeta, BlobStore};
use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

/// Files above this go up in parts of this size.
const PART: usize = 8 << 20;

#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: String,
    /// Where outside services (FAL) reach the same store, when that is not `endpoint` (e.g.
    /// `https://s3.example.com` in front of `http://minio:9000`): presigned URLs carry the
    /// host they were signed for.
    pub public_endpoint: Option<String>,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("public_endpoint", &self.public_endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    /// Signs presigned URLs for the public endpoint (the same client when there is none).
    presigner: aws_sdk_s3::Client,
    bucket: String,
}

fn unavailable(op: &str, e: impl std::error::Error) -> BlobError {
    // The SDK's error chain names the operation and the service's code, not the URL.
    let mut msg = format!("S3 {op}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    BlobError::Unavailable(msg)
}

impl S3BlobStore {
    pub fn new(s: &S3Settings) -> S3BlobStore {
        let client = Self::client(s, &s.endpoint);
        let presigner = match &s.public_endpoint {
            Some(public) => Self::client(s, public),
            None => client.clone(),
        };
        S3BlobStore {
            client,
            presigner,
            bucket: s.bucket.clone(),
        }
    }

    fn client(s: &S3Settings, endpoint: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(s.region.clone()))
            .credentials_provider(Credentials::new(
                &s.access_key_id,
                &s.secret_access_key,
                None,
                None,
                "aisha-settings",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates the bucket if it is not there (start-up of a fresh deployment and tests).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("create bucket", e)),
        }
    }

    async fn put_in_parts(
        &self,
        key: &BlobKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| unavailable("create multipart upload", e))?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| BlobError::Unavailable("S3 gave no upload id".into()))?
            .to_string();
        let mut parts = Vec::new();
        for (i, chunk) in bytes.chunks(PART).enumerate() {
            let number = i as i32 + 1;
            let sent = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(bytes.slice_ref(chunk)))
                .send()
                .await;
            match sent {
                Ok(p) => parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(p.e_tag().map(str::to_string))
                        .build(),
                ),
                Err(e) => {
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key.as_str())
                        .upload_id(&upload_id)
                        .send()
                        .await;
                    return Err(unavailable("upload part", e));
                }
            }
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| unavailable("complete multipart upload", e))?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        if bytes.len() > PART {
            return self.put_in_parts(key, bytes, content_type).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| unavailable("put", e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    BlobError::NotFound(key.clone())
                } else {
                    unavailable("get", e)
                }
            })?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| unavailable("get body", e))?;
        Ok(data.into_bytes())
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(h) => Ok(Some(BlobMeta {
                size: h.content_length().unwrap_or(0).max(0) as u64,
                content_type: h.content_type().map(str::to_string),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(unavailable("head", e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| unavailable("delete", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>, BlobError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| unavailable("list", e))?;
            for o in page.contents() {
                if let Some(k) = o.key().and_then(|k| BlobKey::try_from(k.to_string()).ok()) {
                    keys.push(k);
                }
            }
        }
        keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(keys)
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| BlobError::Unavailable(format!("presign: {e}")))?;
        let req = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(config)
            .await
            .map_err(|e| unavailable("presign", e))?;
        Ok(req.uri().to_string())
    }
}
