//! FAL as the workflows' image service.

use aisha_engine::{PollOutcome, StepError};
use aisha_workflows::provider::{
    Aspect, Downloaded, GeneratedImage, GenerationJob, ImageProvider, JobProgress, TrainedLora,
    TrainingJob, UpscaleJob, UpscaledImage,
};
use async_trait::async_trait;
use serde_json::Value;

use super::apps::{
    EsrganInput, EsrganOutput, FalApps, FluxLoraInput, FluxLoraOutput, ImageSize, LoraWeight,
    OutputFormat, PortraitTrainerInput, SizePreset, TrainingOutput,
};
use super::callback::CallbackBody;
use super::jobs::{FalJobs, PROVIDER};
use super::token::Endpoint;

#[derive(Clone, Debug)]
pub struct FalProvider {
    pub jobs: FalJobs,
    pub apps: FalApps,
    /// Downloads FAL's output files.
    pub http: reqwest::Client,
}

fn size(aspect: Aspect) -> ImageSize {
    ImageSize::Preset(match aspect {
        Aspect::Tall => SizePreset::Portrait16x9,
        Aspect::Portrait => SizePreset::Portrait4x3,
        Aspect::Square => SizePreset::SquareHd,
        Aspect::Wide => SizePreset::Landscape16x9,
    })
}

fn callback(payload: &Value) -> Result<CallbackBody, String> {
    serde_json::from_value(payload.clone()).map_err(|e| format!("unreadable FAL callback: {e}"))
}

#[async_trait]
impl ImageProvider for FalProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn submit_training(
        &self,
        run_id: &str,
        step: &str,
        job: &TrainingJob,
    ) -> Result<String, StepError> {
        let input = PortraitTrainerInput {
            images_data_url: job.images_zip_url.clone(),
            trigger_phrase: Some(job.trigger.clone()),
            steps: Some(job.steps),
            learning_rate: Some(self.apps.learning_rate),
            multiresolution_training: Some(true),
            subject_crop: Some(true),
            create_masks: None,
            data_archive_format: None,
            resume_from_checkpoint: None,
        };
        self.jobs
            .submit(run_id, step, Endpoint::Status, &self.apps.trainer, &input)
            .await
    }

    async fn submit_generation(
        &self,
        run_id: &str,
        step: &str,
        job: &GenerationJob,
    ) -> Result<String, StepError> {
        let input = FluxLoraInput {
            prompt: job.prompt.clone(),
            loras: vec![LoraWeight {
                path: job.lora_url.clone(),
                scale: 1.0,
            }],
            image_size: Some(size(job.aspect)),
            num_images: Some(job.num_images),
            seed: job.seed,
            num_inference_steps: Some(self.apps.num_inference_steps),
            guidance_scale: Some(self.apps.guidance_scale),
            enable_safety_checker: Some(true),
            output_format: Some(OutputFormat::Jpeg),
        };
        self.jobs
            .submit(
                run_id,
                step,
                Endpoint::Portrait,
                &self.apps.generator,
                &input,
            )
            .await
    }

    async fn submit_upscale(
        &self,
        run_id: &str,
        step: &str,
        job: &UpscaleJob,
    ) -> Result<String, StepError> {
        let input = EsrganInput {
            image_url: job.image_url.clone(),
            scale: Some(f64::from(job.scale)),
            tile: None,
            face: None,
            model: None,
            output_format: Some(OutputFormat::Jpeg),
        };
        // Its callback comes to the portraits' route: an upscale is a portrait's job.
        self.jobs
            .submit(
                run_id,
                step,
                Endpoint::Portrait,
                &self.apps.upscaler,
                &input,
            )
            .await
    }

    fn training_result(&self, payload: &Value) -> Result<TrainedLora, String> {
        let out: TrainingOutput = callback(payload)?.output().map_err(|e| e.to_string())?;
        Ok(TrainedLora {
            url: out.diffusers_lora_file.url,
            size: out.diffusers_lora_file.file_size,
        })
    }

    fn generation_result(&self, payload: &Value) -> Result<Vec<GeneratedImage>, String> {
        let out: FluxLoraOutput = callback(payload)?.output().map_err(|e| e.to_string())?;
        Ok(out
            .images
            .into_iter()
            .enumerate()
            .map(|(i, img)| GeneratedImage {
                url: img.url,
                width: img.width,
                height: img.height,
                content_type: img.content_type,
                nsfw: out.has_nsfw_concepts.get(i).copied().unwrap_or(false),
            })
            .collect())
    }

    fn upscale_result(&self, payload: &Value) -> Result<UpscaledImage, String> {
        let out: EsrganOutput = callback(payload)?.output().map_err(|e| e.to_string())?;
        Ok(UpscaledImage {
            url: out.image.url,
            width: out.image.width,
            height: out.image.height,
            content_type: out.image.content_type,
        })
    }

    async fn poll(&self, request_id: &str) -> PollOutcome {
        self.jobs.poll(request_id).await
    }

    async fn progress(&self, request_id: &str) -> Option<JobProgress> {
        self.jobs.progress(request_id).await
    }

    async fn finish(&self, run_id: &str, step: &str) -> Result<(), StepError> {
        self.jobs.finish(run_id, step).await
    }

    async fn download(&self, url: &str, max_bytes: usize) -> Result<Downloaded, StepError> {
        download(&self.http, url, max_bytes).await
    }
}

/// Downloads one of FAL's output files, streamed and refused as soon as it is over
/// `max_bytes` (by its declared length, or while reading), so a huge or endless body never
/// sits in memory whole.
pub(crate) async fn download(
    http: &reqwest::Client,
    url: &str,
    max_bytes: usize,
) -> Result<Downloaded, StepError> {
    let fail = |e: reqwest::Error| StepError::retryable(format!("download: {}", e.without_url()));
    let mut resp = http.get(url).send().await.map_err(fail)?;
    let status = resp.status();
    if !status.is_success() {
        let msg = format!("download: HTTP {}", status.as_u16());
        // FAL's CDN forgets files: a 404 or 403 will not get better.
        return Err(if status.is_client_error() && status.as_u16() != 429 {
            StepError::permanent(msg)
        } else {
            StepError::retryable(msg)
        });
    }
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(StepError::permanent(format!(
            "download: over {max_bytes} bytes"
        )));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(StepError::permanent(format!(
                "download: over {max_bytes} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Downloaded {
        bytes: body.freeze(),
        content_type,
    })
}
