//! `portrait_upscale`: one delivered portrait in, the same portrait twice as large out, sent
//! as a file.
//!
//! reserve → submit ⇢ wait for the upscaler → store → deliver. A failure refunds what is
//! still held. The gallery keeps the enlarged version beside the original.

use aisha_engine::runs::{COMPENSATE, RunStatus};
use aisha_engine::{
    Engine, EngineError, FailureCtx, Next, PollCtx, PollOutcome, RetryPolicy, StartOptions,
    Started, StepCtx, StepError, StepResult, Wait, Workflow,
};
use serde::{Deserialize, Serialize};

use crate::blob::BlobKey;
use crate::gallery::{Portrait, Upscaled};
use crate::notice::Notice;
use crate::product::{Product, start_run};
use crate::provider::UpscaleJob;

pub const NAME: &str = "portrait_upscale";
const SUBMIT: &str = "submit";
/// Width and height are multiplied by this.
pub const SCALE: u32 = 2;
/// The largest enlarged image we download.
const MAX_IMAGE: usize = 50 << 20;

/// Which portrait: image `idx` of the user's generation run `portrait_run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpscaleInput {
    pub user_id: String,
    pub portrait_run: String,
    pub idx: u32,
}

/// Runs one button may start; past them a press finds the last one.
const MAX_RUNS_PER_BUTTON: usize = 16;

/// Starts the upscale a button press asks for. The button is the `idempotency_key`: a second
/// press finds the first press's run. When that run failed or was cancelled (and so was
/// refunded), the press starts the next run, keyed by the failed one, so the button tries
/// again and a double press after a failure still starts one run.
pub async fn press(
    engine: &Engine,
    input: &UpscaleInput,
    opts: StartOptions,
) -> Result<Started, EngineError> {
    let Some(button) = opts.idempotency_key.clone() else {
        return start_run(engine, NAME, input, opts).await;
    };
    let mut opts = opts;
    let mut runs = 0;
    loop {
        let started = start_run(engine, NAME, input, opts.clone()).await?;
        runs += 1;
        if started.created || runs == MAX_RUNS_PER_BUTTON {
            return Ok(started);
        }
        let status = engine.show_run(&started.run_id).await?.run.status;
        if !matches!(status, RunStatus::Failed | RunStatus::Cancelled) {
            return Ok(started);
        }
        opts.idempotency_key = Some(format!("{button}:after:{}", started.run_id));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortraitUpscale {
    pub user_id: String,
    pub portrait_run: String,
    pub idx: u32,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub stored: Option<BlobKey>,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

pub fn workflow(p: Product) -> Workflow<PortraitUpscale, Product> {
    Workflow::new(NAME, p)
        .default_policy(RetryPolicy::default().attempts(8))
        .step("reserve", reserve)
        .step(SUBMIT, submit)
        .step("store", store)
        .step("deliver", deliver)
        .on_poll(poll)
        .on_failure(failed)
}

async fn portrait(p: &Product, s: &PortraitUpscale) -> Result<Portrait, StepError> {
    p.gallery()
        .of_run(&s.user_id, &s.portrait_run, i64::from(s.idx))
        .await?
        .ok_or_else(|| StepError::permanent("no such portrait of the user's"))
}

async fn reserve(s: PortraitUpscale, ctx: StepCtx<Product>) -> StepResult<PortraitUpscale> {
    let p = &ctx.deps;
    portrait(p, &s).await?;
    let price = p.prices.upscale;
    p.ledger
        .reserve(&s.user_id, &ctx.run_id, "upscale", price)
        .await?;
    Ok(Next::Goto(SUBMIT, s))
}

async fn submit(mut s: PortraitUpscale, ctx: StepCtx<Product>) -> StepResult<PortraitUpscale> {
    let p = &ctx.deps;
    let original = portrait(p, &s).await?.key()?;
    let job = UpscaleJob {
        image_url: p
            .blobs
            .presign_get(&original, p.waits.generation_deadline)
            .await?,
        scale: SCALE,
    };
    let request_id = p.images.submit_upscale(&ctx.run_id, SUBMIT, &job).await?;
    s.request_id = Some(request_id.clone());
    Ok(Next::Wait(
        Wait::new(p.images.name(), request_id, "store", s)
            .deadline(p.waits.generation_deadline)
            .poll_every(p.waits.generation_poll),
    ))
}

async fn store(mut s: PortraitUpscale, ctx: StepCtx<Product>) -> StepResult<PortraitUpscale> {
    let p = &ctx.deps;
    let payload = ctx
        .callback
        .clone()
        .ok_or_else(|| StepError::permanent("no upscale result"))?;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let img = p
        .images
        .upscale_result(&payload)
        .map_err(StepError::permanent)?;
    let file = p.images.download(&img.url, MAX_IMAGE).await?;
    let (ext, content_type) = match file.content_type.as_deref() {
        Some("image/png") => ("png", "image/png"),
        Some("image/jpeg") => ("jpg", "image/jpeg"),
        other => {
            return Err(StepError::permanent(format!(
                "the upscaled file is {other:?}, not a JPEG or PNG"
            )));
        }
    };
    // The upscaler's stated size is checked against the file itself.
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(&file.bytes))
        .with_guessed_format()
        .map_err(|e| StepError::permanent(format!("the upscaled file: {e}")))?
        .into_dimensions()
        .map_err(|e| StepError::permanent(format!("the upscaled file: {e}")))?;
    let key = BlobKey::new(&["upscaled", &ctx.run_id, &format!("image.{ext}")])?;
    p.blobs.put(&key, file.bytes, content_type).await?;
    let original = portrait(p, &s).await?;
    let up = Upscaled {
        key: &key,
        width,
        height,
    };
    p.gallery()
        .set_upscaled(&s.user_id, &original.id, &up)
        .await?;
    (s.stored, s.width, s.height) = (Some(key), width, height);
    Ok(Next::Goto("deliver", s))
}

async fn deliver(s: PortraitUpscale, ctx: StepCtx<Product>) -> StepResult<PortraitUpscale> {
    let p = &ctx.deps;
    let document = s
        .stored
        .clone()
        .ok_or_else(|| StepError::permanent("nothing stored to deliver"))?;
    let notice = Notice::UpscaleReady {
        document,
        width: s.width,
        height: s.height,
    };
    p.notifier
        .notify(&ctx.run_id, "deliver", &s.user_id, &notice)
        .await?;
    p.ledger.capture(&s.user_id, &ctx.run_id, "upscale").await?;
    Ok(Next::Done(s))
}

async fn poll(_s: PortraitUpscale, ctx: PollCtx<Product>) -> PollOutcome {
    ctx.deps.images.poll(&ctx.external_id).await
}

async fn failed(s: PortraitUpscale, ctx: FailureCtx<Product>) -> Result<(), StepError> {
    let p = &ctx.deps;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let refunded = p.refund_held(&s.user_id, &ctx.run_id).await?;
    p.notifier
        .notify(
            &ctx.run_id,
            COMPENSATE,
            &s.user_id,
            &Notice::UpscaleFailed { refunded },
        )
        .await
}
