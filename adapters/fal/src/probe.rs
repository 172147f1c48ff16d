//! `fal_probe`: one generation through the whole FAL path — submit with our webhook, wait for
//! the signed callback (or poll), fetch the image and check it decodes. Operators start it to
//! prove a deployment's FAL key, public URL and webhook route work end to end; the tests use
//! it to drive the adapter through the engine.

use std::time::Duration;

use aisha_engine::{
    FailureCtx, Next, PollCtx, PollOutcome, ProgressCtx, RetryPolicy, StepCtx, StepError,
    StepResult, Wait, Workflow,
};
use aisha_workflows::provider::JobProgress;
use serde::{Deserialize, Serialize};

use super::apps::{FluxLoraInput, FluxLoraOutput, ImageSize, SizePreset};
use super::callback::CallbackBody;
use super::jobs::{FalJobs, PROVIDER};
use super::provider::download;
use super::token::Endpoint;

pub const NAME: &str = "fal_probe";
const SUBMIT: &str = "submit";
/// How often the probe asks FAL how far its job is (shown as `progress` in `runs show`).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The largest image the probe downloads.
const MAX_IMAGE: usize = 20 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub prompt: String,
    #[serde(default)]
    pub image_size: Option<ImageSize>,
    /// How long to wait for FAL before giving up (default 600 s); polled at a quarter of it.
    #[serde(default)]
    pub wait_secs: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub image: Option<ProbeImage>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeImage {
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    pub content_type: Option<String>,
}

pub struct ProbeDeps {
    pub jobs: FalJobs,
    pub generator: String,
    pub http: reqwest::Client,
}

pub fn workflow(deps: ProbeDeps) -> Workflow<Probe, ProbeDeps> {
    let policy = RetryPolicy::default()
        .attempts(5)
        .timeout(Duration::from_secs(60));
    Workflow::new(NAME, deps)
        .default_policy(policy)
        .step(SUBMIT, submit)
        .step("check", check)
        .on_poll(poll)
        .on_progress(ask_progress, tell_progress)
        .on_failure(failed)
}

async fn submit(mut p: Probe, ctx: StepCtx<ProbeDeps>) -> StepResult<Probe> {
    let input = FluxLoraInput {
        prompt: p.prompt.clone(),
        loras: vec![],
        image_size: Some(
            p.image_size
                .unwrap_or(ImageSize::Preset(SizePreset::Square)),
        ),
        num_images: Some(1),
        seed: None,
        num_inference_steps: None,
        guidance_scale: None,
        enable_safety_checker: None,
        output_format: None,
    };
    let d = &ctx.deps;
    let request_id = d
        .jobs
        .submit(
            &ctx.run_id,
            SUBMIT,
            Endpoint::Portrait,
            &d.generator,
            &input,
        )
        .await?;
    let wait = Duration::from_secs(p.wait_secs.unwrap_or(600).max(1));
    p.request_id = Some(request_id.clone());
    Ok(Next::Wait(
        Wait::new(PROVIDER, request_id, "check", p)
            .deadline(wait)
            .poll_every(wait / 4)
            .progress_every(PROGRESS_EVERY),
    ))
}

async fn check(mut p: Probe, ctx: StepCtx<ProbeDeps>) -> StepResult<Probe> {
    let body: CallbackBody = ctx
        .callback
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| StepError::permanent("no FAL callback to check"))?;
    ctx.deps.jobs.finish(&ctx.run_id, SUBMIT).await?;
    let out: FluxLoraOutput = body.output().map_err(StepError::permanent)?;
    let first = out
        .images
        .first()
        .ok_or_else(|| StepError::permanent("FAL returned no images"))?;
    let file = download(&ctx.deps.http, &first.url, MAX_IMAGE).await?;
    let bytes = file.bytes;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| StepError::permanent(format!("image does not decode: {e}")))?;
    p.image = Some(ProbeImage {
        width: img.width(),
        height: img.height(),
        bytes: bytes.len(),
        content_type: first.content_type.clone(),
    });
    Ok(Next::Done(p))
}

async fn poll(_p: Probe, ctx: PollCtx<ProbeDeps>) -> PollOutcome {
    ctx.deps.jobs.poll(&ctx.external_id).await
}

async fn ask_progress(_p: Probe, ctx: ProgressCtx<ProbeDeps>) -> Option<JobProgress> {
    ctx.deps.jobs.progress(&ctx.external_id).await
}

/// The probe has no user to tell: the progress recorded on the run is what operators see.
async fn tell_progress(_p: Probe, progress: JobProgress, ctx: ProgressCtx<ProbeDeps>) {
    tracing::info!(run_id = ctx.run_id, ?progress, "fal_probe progress");
}

async fn failed(_p: Probe, ctx: FailureCtx<ProbeDeps>) -> Result<(), StepError> {
    ctx.deps.jobs.finish(&ctx.run_id, SUBMIT).await
}
