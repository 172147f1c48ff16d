//! What the product workflows are given: the ports, the ledger, prices and timings.

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::{Db, Engine, EngineError, StartOptions, Started, StepError};
use serde::Serialize;

use crate::avatars::Avatars;
use crate::blob::BlobStore;
use crate::credits::Ledger;
use crate::gallery::Gallery;
use crate::notice::{Notice, TrainingEta};
use crate::outbox::{Notifier, PROGRESS_STEP};
use crate::photos::PhotoRules;
use crate::provider::{ImageProvider, JobProgress};

/// Prices in credits: configuration (seed defaults: avatar 150, image 5, upscale 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub avatar: i64,
    pub image: i64,
    /// One portrait enlarged ×2.
    pub upscale: i64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            avatar: 150,
            image: 5,
            upscale: 3,
        }
    }
}

/// How long the workflows wait for the image service, and when they start asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    pub training_deadline: Duration,
    pub training_poll: Duration,
    pub generation_deadline: Duration,
    pub generation_poll: Duration,
    /// How often a waiting training / generation asks the service how far it is, for the
    /// user's progress message.
    pub training_progress: Duration,
    pub generation_progress: Duration,
    /// How long a training waits for replacement photos.
    pub replacements: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            training_deadline: Duration::from_secs(3 * 3600),
            training_poll: Duration::from_secs(20 * 60),
            generation_deadline: Duration::from_secs(10 * 60),
            generation_poll: Duration::from_secs(60),
            training_progress: Duration::from_secs(60),
            generation_progress: Duration::from_secs(3),
            replacements: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Clone)]
pub struct Product {
    pub db: Db,
    pub ledger: Ledger,
    pub blobs: Arc<dyn BlobStore>,
    pub images: Arc<dyn ImageProvider>,
    pub notifier: Arc<dyn Notifier>,
    pub prices: Prices,
    pub waits: Waits,
    pub photo_rules: PhotoRules,
}

impl Product {
    /// Tells `user_id` how far run `run_id` is (its one progress row, latest wins). Progress
    /// is worth telling, not worth failing a step for: a lost one is replaced by the next.
    pub(crate) async fn tell_progress(
        &self,
        run_id: &str,
        user_id: &str,
        progress: JobProgress,
        training: Option<TrainingEta>,
    ) {
        let notice = Notice::Progress { progress, training };
        if let Err(e) = self
            .notifier
            .notify(run_id, PROGRESS_STEP, user_id, &notice)
            .await
        {
            tracing::warn!(run_id, error = %e, "progress not recorded for the user");
        }
    }

    /// The avatars table's store, on the workflows' database.
    pub fn avatars(&self) -> Avatars {
        Avatars::new(self.db.clone())
    }

    /// The gallery table's store, on the workflows' database.
    pub fn gallery(&self) -> Gallery {
        Gallery::new(self.db.clone())
    }

    /// Compensation: gives back whatever `run_id` still holds; returns how much.
    pub async fn refund_held(&self, user_id: &str, run_id: &str) -> Result<i64, StepError> {
        let held = self.ledger.held_by_run(run_id).await?;
        if held > 0 {
            self.ledger.refund(user_id, run_id, "failed", held).await?;
        }
        Ok(held)
    }
}

/// Starts a run of `workflow` with a typed input as its first state.
pub(crate) async fn start_run(
    engine: &Engine,
    workflow: &str,
    input: &impl Serialize,
    opts: StartOptions,
) -> Result<Started, EngineError> {
    let input = serde_json::to_value(input).map_err(|e| EngineError::InvalidInput {
        workflow: workflow.to_string(),
        message: e.to_string(),
    })?;
    engine.start(workflow, input, opts).await
}
