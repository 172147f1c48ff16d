//! `avatar_training`: photos in, a ready avatar (a LoRA in our blob store) out.
//!
//! validate → reserve → submit ⇢ wait for the trainer → collect. Bad photos are reported one
//! by one and the run waits for replacements instead of failing; a failure after the
//! reservation refunds it (compensation); every step can run twice without charging, storing
//! or telling the user twice.

use std::collections::BTreeMap;
use std::io::Write;

use aisha_engine::runs::COMPENSATE;
use aisha_engine::time::now_ms;
use aisha_engine::{
    Engine, EngineError, FailureCtx, Next, PollCtx, PollOutcome, ProgressCtx, RetryPolicy,
    StartOptions, Started, StepCtx, StepError, StepResult, Wait, Workflow,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::avatars::NewAvatar;
pub use crate::avatars::Preset;
use crate::blob::BlobKey;
use crate::notice::{Notice, TrainingEta};
pub use crate::photos::Rejected;
use crate::photos::{Normalised, check_set};
use crate::product::{Product, start_run};
use crate::provider::{JobProgress, TrainingJob};

pub const NAME: &str = "avatar_training";
/// The engine provider of waits for the user (replacement photos).
pub const USER: &str = "user";
const SUBMIT: &str = "submit";
pub const MIN_PHOTOS: usize = 10;
pub const MAX_PHOTOS: usize = 20;
/// The largest LoRA we copy.
const MAX_LORA: usize = 1 << 30;

/// What a training starts from. It becomes the run's first state, so it serialises to the
/// fields of [`AvatarTraining`] it sets and nothing else (runs started before it existed
/// were given exactly this JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarInput {
    pub user_id: String,
    pub name: String,
    /// The photos as received, in the user's order.
    pub photos: Vec<BlobKey>,
    pub preset: Preset,
}

/// Starts a training of `input` (for a user, `opts.subject` is the user: one training per
/// user at a time).
pub async fn start(
    engine: &Engine,
    input: &AvatarInput,
    opts: StartOptions,
) -> Result<Started, EngineError> {
    start_run(engine, NAME, input, opts).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvatarTraining {
    pub user_id: String,
    pub name: String,
    /// The photos as received (blobs we stored), in the user's order.
    pub photos: Vec<BlobKey>,
    #[serde(default)]
    pub preset: Preset,
    /// How many times the photos were checked; a wait for replacements is per round.
    #[serde(default)]
    pub round: u32,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    #[serde(default)]
    pub trigger: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

pub fn workflow(p: Product) -> Workflow<AvatarTraining, Product> {
    Workflow::new(NAME, p)
        .default_policy(RetryPolicy::default().attempts(8))
        .step("validate", validate)
        .step("reserve", reserve)
        .step(SUBMIT, submit)
        .step("collect", collect)
        .on_poll(poll)
        .on_progress(ask_progress, tell_progress)
        .on_failure(failed)
        .limit_per_subject(1, aisha_engine::LimitMode::Refuse)
}

fn key(run_id: &str, rest: &[&str]) -> Result<BlobKey, StepError> {
    let mut parts = vec!["avatars", run_id];
    parts.extend_from_slice(rest);
    Ok(BlobKey::new(&parts)?)
}

/// The wait key of round `round` of replacements.
pub fn replacements_key(run_id: &str, round: u32) -> String {
    format!("{run_id}:photos:{round}")
}

/// Hands a run waiting for replacement photos the new ones: photo number → blob.
pub async fn replace_photos(
    engine: &Engine,
    run_id: &str,
    round: u32,
    replacements: &BTreeMap<usize, BlobKey>,
) -> Result<aisha_engine::ResolveOutcome, EngineError> {
    engine
        .resolve_callback(
            USER,
            &replacements_key(run_id, round),
            &json!({"replace": replacements}),
        )
        .await
}

async fn validate(mut s: AvatarTraining, ctx: StepCtx<Product>) -> StepResult<AvatarTraining> {
    let p = &ctx.deps;
    if let Some(cb) = &ctx.callback
        && let Some(map) = cb.get("replace")
    {
        let replace: BTreeMap<usize, BlobKey> =
            serde_json::from_value(map.clone()).map_err(StepError::permanent)?;
        for (photo, blob) in replace {
            if let Some(slot) = photo.checked_sub(1).and_then(|i| s.photos.get_mut(i)) {
                *slot = blob;
            }
        }
    }
    if !(MIN_PHOTOS..=MAX_PHOTOS).contains(&s.photos.len()) {
        return Err(StepError::permanent(format!(
            "{} photos: send {MIN_PHOTOS} to {MAX_PHOTOS}",
            s.photos.len()
        )));
    }
    let mut originals = Vec::with_capacity(s.photos.len());
    for k in &s.photos {
        originals.push(p.blobs.get(k).await?.to_vec());
    }
    let rules = p.photo_rules.clone();
    let checked = tokio::task::spawn_blocking(move || check_set(&originals, &rules))
        .await
        .map_err(StepError::retryable)?;
    s.rejected = checked
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref().err().map(|e| Rejected {
                photo: i + 1,
                problem: e.clone(),
            })
        })
        .collect();
    if !s.rejected.is_empty() {
        s.round += 1;
        let notice = Notice::PhotosRejected {
            round: s.round,
            rejected: s.rejected.clone(),
        };
        p.notifier
            .notify(&ctx.run_id, "validate", &s.user_id, &notice)
            .await?;
        let wait_key = replacements_key(&ctx.run_id, s.round);
        return Ok(Next::Wait(
            Wait::new(USER, wait_key, "validate", s)
                .deadline(p.waits.replacements)
                .poll_every(p.waits.replacements),
        ));
    }
    let trigger = format!("aisha{}", &ctx.run_id.replace('-', "")[..12].to_lowercase());
    // Numbered as the user sent them (every photo passed by now).
    let passed: Vec<(usize, &Normalised)> = checked
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_ref().ok().map(|photo| (i + 1, photo)))
        .collect();
    for (n, photo) in &passed {
        p.blobs
            .put(
                &key(&ctx.run_id, &["photos", &format!("{n:02}.jpg")])?,
                Bytes::from(photo.jpeg.clone()),
                "image/jpeg",
            )
            .await?;
    }
    // Building a zip in memory fails only on a bug, the same on every attempt.
    let zip = training_zip(&passed).map_err(StepError::permanent)?;
    p.blobs
        .put(
            &key(&ctx.run_id, &["training.zip"])?,
            Bytes::from(zip),
            "application/zip",
        )
        .await?;
    p.avatars()
        .create(&NewAvatar {
            id: &ctx.run_id,
            user_id: &s.user_id,
            name: &s.name,
            trigger_phrase: &trigger,
            preset: s.preset,
        })
        .await?;
    s.trigger = Some(trigger);
    Ok(Next::Goto("reserve", s))
}

/// The trainer's input: photo `n` as `NN.jpg` with its caption `NN.txt`, stored uncompressed
/// (JPEGs do not shrink).
fn training_zip(photos: &[(usize, &Normalised)]) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut zip);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (n, photo) in photos {
        w.start_file(format!("{n:02}.jpg"), opts)?;
        w.write_all(&photo.jpeg)?;
        w.start_file(format!("{n:02}.txt"), opts)?;
        w.write_all(b"a photo of [trigger]")?;
    }
    w.finish()?;
    Ok(zip.into_inner())
}

async fn reserve(s: AvatarTraining, ctx: StepCtx<Product>) -> StepResult<AvatarTraining> {
    let p = &ctx.deps;
    p.ledger
        .reserve(&s.user_id, &ctx.run_id, "avatar", p.prices.avatar)
        .await?;
    Ok(Next::Goto(SUBMIT, s))
}

async fn submit(mut s: AvatarTraining, ctx: StepCtx<Product>) -> StepResult<AvatarTraining> {
    let p = &ctx.deps;
    let trigger = s
        .trigger
        .clone()
        .ok_or_else(|| StepError::permanent("no trigger phrase"))?;
    let zip = key(&ctx.run_id, &["training.zip"])?;
    let url = p.blobs.presign_get(&zip, p.waits.training_deadline).await?;
    let job = TrainingJob {
        images_zip_url: url,
        trigger,
        steps: s.preset.steps(),
    };
    let request_id = p.images.submit_training(&ctx.run_id, SUBMIT, &job).await?;
    s.request_id = Some(request_id.clone());
    Ok(Next::Wait(
        Wait::new(p.images.name(), request_id, "collect", s)
            .deadline(p.waits.training_deadline)
            .poll_every(p.waits.training_poll)
            .progress_every(p.waits.training_progress),
    ))
}

async fn collect(s: AvatarTraining, ctx: StepCtx<Product>) -> StepResult<AvatarTraining> {
    let p = &ctx.deps;
    let payload = ctx
        .callback
        .clone()
        .ok_or_else(|| StepError::permanent("no training result"))?;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let lora = p
        .images
        .training_result(&payload)
        .map_err(StepError::permanent)?;
    let file = p.images.download(&lora.url, MAX_LORA).await?;
    let lora_key = key(&ctx.run_id, &["lora.safetensors"])?;
    p.blobs
        .put(&lora_key, file.bytes, "application/octet-stream")
        .await?;
    p.avatars().ready(&ctx.run_id, &lora_key).await?;
    p.ledger.capture(&s.user_id, &ctx.run_id, "avatar").await?;
    let notice = Notice::AvatarReady {
        name: s.name.clone(),
    };
    p.notifier
        .notify(&ctx.run_id, "collect", &s.user_id, &notice)
        .await?;
    Ok(Next::Done(s))
}

async fn poll(_s: AvatarTraining, ctx: PollCtx<Product>) -> PollOutcome {
    if ctx.provider == ctx.deps.images.name() {
        ctx.deps.images.poll(&ctx.external_id).await
    } else {
        PollOutcome::Pending
    }
}

async fn ask_progress(_s: AvatarTraining, ctx: ProgressCtx<Product>) -> Option<JobProgress> {
    ctx.deps.images.progress(&ctx.external_id).await
}

/// The trainer's own progress, and the time left: the recent trainings' median (or the
/// preset's expectation) less the time this one has taken so far.
async fn tell_progress(s: AvatarTraining, progress: JobProgress, ctx: ProgressCtx<Product>) {
    let p = &ctx.deps;
    let avatars = p.avatars();
    let left_secs = match (
        avatars.get(&ctx.run_id).await,
        avatars.typical_training(s.preset).await,
    ) {
        (Ok(Some(a)), Ok(typical)) => {
            let taken = u64::try_from(now_ms() - a.created_at).unwrap_or_default();
            let typical = u64::try_from(typical.as_millis()).unwrap_or(u64::MAX);
            let left = typical.saturating_sub(taken) / 1000;
            (left > 0).then_some(left)
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(run_id = ctx.run_id, error = %e, "no training estimate");
            None
        }
        (Ok(None), _) => None,
    };
    let eta = TrainingEta {
        name: s.name.clone(),
        left_secs,
    };
    p.tell_progress(&ctx.run_id, &s.user_id, progress, Some(eta))
        .await;
}

/// Refund what the run still holds, mark the avatar failed, tell the user.
async fn failed(s: AvatarTraining, ctx: FailureCtx<Product>) -> Result<(), StepError> {
    let p = &ctx.deps;
    p.images.finish(&ctx.run_id, SUBMIT).await?;
    let held = p.refund_held(&s.user_id, &ctx.run_id).await?;
    p.avatars().failed(&ctx.run_id, &ctx.error).await?;
    let notice = Notice::AvatarFailed {
        name: s.name,
        refunded: held,
    };
    p.notifier
        .notify(&ctx.run_id, COMPENSATE, &s.user_id, &notice)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_the_json_runs_were_started_with() {
        let photos = vec![BlobKey::new(&["uploads", "1", "a.img"]).unwrap()];
        let input = AvatarInput {
            user_id: "42".into(),
            name: "Me".into(),
            photos: photos.clone(),
            preset: Preset::Fast,
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            json!({"user_id": "42", "name": "Me", "photos": photos, "preset": "fast"})
        );
    }
}
