//! `portrait_generation`: an avatar and a style (or a prompt) in, portraits delivered.
//!
//! reserve → submit ⇢ wait for the generator → store → deliver. Images flagged by the safety
//! checker are not delivered and their share is refunded; a failure refunds what is still
//! held. A regeneration is a new run whose parent is the old one.

use aisha_engine::runs::COMPENSATE;
use aisha_engine::{
    Engine, EngineError, FailureCtx, Next, PollCtx, PollOutcome, ProgressCtx, RetryPolicy,
    StartOptions, Started, StepCtx, StepError, StepResult, Wait, Workflow,
};
use serde::{Deserialize, Serialize};

use crate::avatars::{Avatar, AvatarStatus};
use crate::blob::BlobKey;
use crate::gallery::NewPortrait;
use crate::notice::Notice;
use crate::product::{Product, start_run};
use crate::provider::{Aspect, GenerationJob, JobProgress};
use crate::styles;

pub const NAME: &str = "portrait_generation";
const SUBMIT: &str = "submit";
/// The largest generated image we download.
const MAX_IMAGE: usize = 20 << 20;

/// What an order starts from. It becomes the run's first state, so it serialises to the
/// fields of [`PortraitGeneration`] it sets and nothing else: absent choices are `null`, and
/// `seed` only when there is one (runs started before it existed were given exactly this
/// JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortraitInput {
    pub user_id: String,
    pub avatar_id: String,
    /// A style of the catalogue, or
    pub style: Option<String>,
    /// a free prompt.
    pub prompt: Option<String>,
    /// Default: the style's.
    pub aspect: Option<Aspect>,
    pub count: u32,
    /// Default: a new one each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Starts an order of `input`.
pub async fn start(
    engine: &Engine,
    input: &PortraitInput,
    opts: StartOptions,
) -> Result<Started, EngineError> {
    start_run(engine, NAME, input, opts).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortraitGeneration {
    pub user_id: String,
    pub avatar_id: String,
    /// A style of the catalogue, or
    #[serde(default)]
    pub style: Option<String>,
    /// a free prompt (the avatar's trigger phrase is added if missing).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Default: the style's.
    #[serde(default)]
    pub aspect: Option<Aspect>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub final_prompt: Option<String>,
    #[serde(default)]
    pub stored: Vec<BlobKey>,
    #[serde(default)]
    pub withheld: u32,
}

fn one() -> u32 {
    1
}

pub fn workflow(p: Product) -> Workflow<PortraitGeneration, Product> {
    Workflow::new(NAME, p)
        .default_policy(RetryPolicy::default().attempts(8))
        .step("reserve", reserve)
        .step(SUBMIT, submit)
        .step("store", store)
        .step("deliver", deliver)
        .on_poll(poll)
        .on_progress(ask_progress, tell_progress)
        .on_failure(failed)
}

/// "Again": the same order with a new seed, as a new run whose parent is `run_id`. The same
/// `idempotency_key` (e.g. the button press) gives the same new run.
pub async fn regenerate(
    engine: &Engine,
    run_id: &str,
    idempotency_key: Option<String>,
) -> Result<Started, EngineError> {
    let old = engine.show_run(run_id).await?;
    let s: PortraitGeneration =
        serde_json::from_value(old.state.clone()).map_err(|e| EngineError::InvalidInput {
            workflow: NAME.into(),
            message: e.to_string(),
        })?;
    let input = PortraitInput {
        user_id: s.user_id,
        avatar_id: s.avatar_id,
        style: s.style,
        prompt: s.prompt,
        aspect: s.aspect,
        count: s.count,
        seed: None,
    };
    let opts = StartOptions {
        subject: old.run.subject.clone(),
        idempotency_key,
        parent_run_id: Some(run_id.to_string()),
    };
    start(engine, &input, opts).await
}

async fn avatar(p: &Product, id: &str) -> Result<Avatar, StepError> {
    p.avatars()
        .get(id)
        .await?
        .ok_or_else(|| StepError::permanent(format!("no avatar {id}")))
}

async fn reserve(
    mut s: PortraitGeneration,
    ctx: StepCtx<Product>,
) -> StepResult<PortraitGeneration> {
    let p = &ctx.deps;
    if !(1..=4).contains(&s.count) {
        return Err(StepError::permanent(format!(
            "{} images: 1 to 4 per order",
            s.count
        )));
    }
    let a = avatar(p, &s.avatar_id).await?;
    if a.user_id != s.user_id || a.status != AvatarStatus::Ready {
        return Err(StepError::permanent(
            "the avatar is not ready or not the user's",
        ));
    }
    let (prompt, aspect) = match (&s.style, &s.prompt) {
        (Some(id), _) => {
            let style =
                styles::find(id).ok_or_else(|| StepError::permanent(format!("no style {id}")))?;
            (style.prompt(&a.trigger_phrase), style.aspect)
        }
        (None, Some(text)) if !text.trim().is_empty() => {
            let text = text.trim();
            let prompt = if text.contains(&a.trigger_phrase) {
                text.to_string()
            } else {
                format!("{}, {text}", a.trigger_phrase)
            };
            (prompt, Aspect::Portrait)
        }
        _ => return Err(StepError::permanent("a style or a prompt is needed")),
    };
    s.final_prompt = Some(prompt);
    s.aspect = Some(s.aspect.unwrap_or(aspect));
    let price = p.prices.image * s.count as i64;
    p.ledger
        .reserve(&s.user_id, &ctx.run_id, "images", price)
        .await?;
    Ok(Next::Goto(SUBMIT, s))
}

async fn submit(
    mut s: PortraitGeneration,
    ctx: StepCtx<Product>,
) -> StepResult<PortraitGeneration> {
    let p = &ctx.deps;
    let a = avatar(p, &s.avatar_id).await?;
    let lora = a
        .lora_key
        .ok_or_else(|| StepError::permanent("the avatar has no LoRA"))?;
    let lora = BlobKey::try_from(lora)?;
    let lora_url = p
        .blobs
        .presign_get(&lora, p.waits.generation_deadline)
        .await?;
    let job = GenerationJob {
        prompt: s.final_prompt.clone().unwrap_or_default(),
        lora_url,
        aspect: s.aspect.unwrap_or(Aspect::Portrait),
        num_images: s.count,
        seed: s.seed,
    };
    let request_id = p
        .images
        .submit_generation(&ctx.run_id, SUBMIT, &job)
        .await?;
    s.request_id = Some(request_id.clone());
    Ok(Next::Wait(
        Wait::new(p.images.name(), request_id, "store", s)
            .deadline(p.waits.generation_deadline)
            .poll_every(p.waits.generation_poll)
            .progress_every(p.waits.generation_progress),
    ))
}

async fn store(mut s: PortraitGeneration, ctx: StepCtx<Product>) -> StepResult<PortraitGeneration> {
    let p = &ctx.deps;
    let payload = ctx
        .callback
        .clone()
        .ok_or_else(|| StepError::permanent("no generation result"))?;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let images = p
        .images
        .generation_result(&payload)
        .map_err(StepError::permanent)?;
    p.tell_progress(&ctx.run_id, &s.user_id, JobProgress::Saving, None)
        .await;
    s.stored.clear();
    s.withheld = 0;
    for (i, img) in images.iter().enumerate() {
        if img.nsfw {
            s.withheld += 1;
            p.ledger
                .refund(
                    &s.user_id,
                    &ctx.run_id,
                    &format!("nsfw-{i}"),
                    p.prices.image,
                )
                .await?;
            continue;
        }
        let file = p.images.download(&img.url, MAX_IMAGE).await?;
        let content_type = file
            .content_type
            .clone()
            .filter(|c| c.starts_with("image/"))
            .ok_or_else(|| StepError::permanent(format!("image {i} is not an image")))?;
        let ext = if content_type == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let key = BlobKey::new(&["portraits", &ctx.run_id, &format!("{i}.{ext}")])?;
        let size = file.bytes.len();
        p.blobs.put(&key, file.bytes, &content_type).await?;
        p.gallery()
            .add(&NewPortrait {
                user_id: &s.user_id,
                avatar_id: &s.avatar_id,
                run_id: &ctx.run_id,
                idx: i,
                key: &key,
                width: img.width,
                height: img.height,
                content_type: &content_type,
                bytes: size,
                prompt: s.final_prompt.as_deref().unwrap_or_default(),
            })
            .await?;
        s.stored.push(key);
    }
    Ok(Next::Goto("deliver", s))
}

async fn deliver(s: PortraitGeneration, ctx: StepCtx<Product>) -> StepResult<PortraitGeneration> {
    let p = &ctx.deps;
    let notice = Notice::PortraitsReady {
        images: s.stored.clone(),
        withheld: s.withheld,
        refunded: i64::from(s.withheld) * p.prices.image,
    };
    p.notifier
        .notify(&ctx.run_id, "deliver", &s.user_id, &notice)
        .await?;
    if !s.stored.is_empty() {
        p.ledger.capture(&s.user_id, &ctx.run_id, "images").await?;
    }
    Ok(Next::Done(s))
}

async fn poll(_s: PortraitGeneration, ctx: PollCtx<Product>) -> PollOutcome {
    ctx.deps.images.poll(&ctx.external_id).await
}

async fn ask_progress(_s: PortraitGeneration, ctx: ProgressCtx<Product>) -> Option<JobProgress> {
    ctx.deps.images.progress(&ctx.external_id).await
}

async fn tell_progress(s: PortraitGeneration, progress: JobProgress, ctx: ProgressCtx<Product>) {
    ctx.deps
        .tell_progress(&ctx.run_id, &s.user_id, progress, None)
        .await;
}

async fn failed(s: PortraitGeneration, ctx: FailureCtx<Product>) -> Result<(), StepError> {
    let p = &ctx.deps;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let held = p.refund_held(&s.user_id, &ctx.run_id).await?;
    let notice = Notice::PortraitFailed { refunded: held };
    p.notifier
        .notify(&ctx.run_id, COMPENSATE, &s.user_id, &notice)
        .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_input_is_the_json_runs_were_started_with() {
        let input = PortraitInput {
            user_id: "42".into(),
            avatar_id: "a1".into(),
            style: Some("oil".into()),
            prompt: None,
            aspect: Some(Aspect::Portrait),
            count: 2,
            seed: None,
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            json!({"user_id": "42", "avatar_id": "a1", "style": "oil", "prompt": null,
                   "aspect": "3:4", "count": 2})
        );
        let seeded = PortraitInput {
            seed: Some(7),
            ..input
        };
        assert_eq!(serde_json::to_value(&seeded).unwrap()["seed"], 7);
    }
}
