//! The image service port: training a LoRA, generating portraits with it and upscaling them.
//! The FAL adapter implements it; the workflows know nothing of FAL's wire format.

use std::str::FromStr;

use aisha_engine::{PollOutcome, StepError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The aspect ratios users choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aspect {
    #[serde(rename = "9:16")]
    Tall,
    #[serde(rename = "3:4")]
    Portrait,
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "16:9")]
    Wide,
}

impl FromStr for Aspect {
    type Err = String;

    fn from_str(s: &str) -> Result<Aspect, String> {
        serde_json::from_value(Value::String(s.to_string()))
            .map_err(|_| "one of 9:16, 3:4, 1:1, 16:9".to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingJob {
    /// A zip of the normalised photos with captions; a presigned URL.
    pub images_zip_url: String,
    pub trigger: String,
    pub steps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationJob {
    pub prompt: String,
    /// The avatar's LoRA; a presigned URL.
    pub lora_url: String,
    pub aspect: Aspect,
    pub num_images: u32,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainedLora {
    pub url: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedImage {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub content_type: Option<String>,
    /// Flagged by the service's safety checker: not delivered, refunded.
    pub nsfw: bool,
}

/// Enlarging one image `scale` times in width and height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpscaleJob {
    /// The image; a presigned URL.
    pub image_url: String,
    pub scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpscaledImage {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub content_type: Option<String>,
}

/// How far a submitted job is, as the service tells it while we wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum JobProgress {
    /// Waiting for a runner; `position` requests ahead of it, when the service says.
    Queued { position: Option<u32> },
    /// Running; `percent` done, once the runner has printed a progress bar.
    Running { percent: Option<u8> },
    /// The service is done; its result is on its way to us (and being saved).
    Saving,
}

#[async_trait]
pub trait ImageProvider: Send + Sync {
    /// The engine provider name the workflows wait on.
    fn name(&self) -> &'static str;

    /// Submits once per (run, step); returns the id to wait on.
    async fn submit_training(
        &self,
        run_id: &str,
        step: &str,
        job: &TrainingJob,
    ) -> Result<String, StepError>;

    async fn submit_generation(
        &self,
        run_id: &str,
        step: &str,
        job: &GenerationJob,
    ) -> Result<String, StepError>;

    async fn submit_upscale(
        &self,
        run_id: &str,
        step: &str,
        job: &UpscaleJob,
    ) -> Result<String, StepError>;

    /// Reads a finished training from the wait's payload; `Err` is the service's reason.
    fn training_result(&self, payload: &Value) -> Result<TrainedLora, String>;

    fn generation_result(&self, payload: &Value) -> Result<Vec<GeneratedImage>, String>;

    fn upscale_result(&self, payload: &Value) -> Result<UpscaledImage, String>;

    /// Asks about a job whose callback is late.
    async fn poll(&self, request_id: &str) -> PollOutcome;

    /// How far the job `request_id` is, for the user to see while they wait; None when the
    /// service cannot say right now (it is asked again later).
    async fn progress(&self, request_id: &str) -> Option<JobProgress>;

    /// The wait of (run, step) is over.
    async fn finish(&self, run_id: &str, step: &str) -> Result<(), StepError>;

    /// Fetches one of the service's output files, at most `max_bytes`; returns the bytes and
    /// their content type.
    async fn download(&self, url: &str, max_bytes: usize) -> Result<Downloaded, StepError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: bytes::Bytes,
    pub content_type: Option<String>,
}
