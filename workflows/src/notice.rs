//! What workflows tell users, as data. A workflow says *what* happened (an avatar is ready,
//! portraits are here, this much was refunded); how it reads, in which language, is the
//! bot's (`adapters/src/telegram/copy`), so no user-facing text is written here.

use serde::{Deserialize, Serialize};

use crate::blob::BlobKey;
use crate::photos::Rejected;
use crate::provider::JobProgress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// Some photos of a training were refused; the run waits for their replacements (one
    /// wait per `round`).
    PhotosRejected {
        round: u32,
        rejected: Vec<Rejected>,
    },
    AvatarReady {
        name: String,
    },
    /// `refunded` credits went back (0: the training held none).
    AvatarFailed {
        name: String,
        refunded: i64,
    },
    /// The portraits kept; `withheld` more failed the safety check and `refunded` credits
    /// went back for them.
    PortraitsReady {
        images: Vec<BlobKey>,
        withheld: u32,
        refunded: i64,
    },
    /// `refunded` credits went back (0: the order held none).
    PortraitFailed {
        refunded: i64,
    },
    /// A portrait enlarged: sent as a file (a document), so the messenger does not
    /// recompress it.
    UpscaleReady {
        document: BlobKey,
        width: u32,
        height: u32,
    },
    /// `refunded` credits went back (0: the upscale held none).
    UpscaleFailed {
        refunded: i64,
    },
    /// How far an order is while the user waits. One row per run, replaced by each newer
    /// progress (see [`crate::outbox::PROGRESS_STEP`]); the bot shows it by editing the
    /// message that accepted the order.
    Progress {
        progress: JobProgress,
        /// Set when the order is an avatar's training (portraits otherwise, as every progress
        /// row was before trainings had one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        training: Option<TrainingEta>,
    },
}

/// A training's progress beyond the service's own: which avatar, and how long it should
/// still take (from the preset and the recent trainings' real durations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingEta {
    pub name: String,
    /// `None` once the expected time has passed.
    pub left_secs: Option<u64>,
}

impl Notice {
    /// Its outbox row's kind. A run tells one notice of a kind per step, so a retried step
    /// never tells twice; a new round of refused photos is a new kind.
    pub fn kind(&self) -> String {
        match self {
            Notice::PhotosRejected { round, .. } => format!("photos_rejected_{round}"),
            Notice::AvatarReady { .. } => "avatar_ready".into(),
            Notice::AvatarFailed { .. } => "avatar_failed".into(),
            Notice::PortraitsReady { .. } => "portraits".into(),
            Notice::PortraitFailed { .. } => "portrait_failed".into(),
            Notice::UpscaleReady { .. } => "upscaled".into(),
            Notice::UpscaleFailed { .. } => "upscale_failed".into(),
            Notice::Progress { .. } => "progress".into(),
        }
    }

    /// Images to send with it.
    pub fn images(&self) -> &[BlobKey] {
        match self {
            Notice::PortraitsReady { images, .. } => images,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::photos::PhotoProblem;

    #[test]
    fn a_notice_is_tagged_and_names_its_kind() {
        let n = Notice::PhotosRejected {
            round: 2,
            rejected: vec![Rejected {
                photo: 3,
                problem: PhotoProblem::NotAnImage,
            }],
        };
        assert_eq!(n.kind(), "photos_rejected_2");
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({"notice": "photos_rejected", "round": 2,
                   "rejected": [{"photo": 3, "problem": {"problem": "not_an_image"}}]})
        );
        let ready = Notice::PortraitsReady {
            images: vec![BlobKey::new(&["portraits", "r", "0.jpg"]).unwrap()],
            withheld: 1,
            refunded: 5,
        };
        assert_eq!(ready.kind(), "portraits");
        assert_eq!(ready.images().len(), 1);
        let back: Notice = serde_json::from_value(serde_json::to_value(&ready).unwrap()).unwrap();
        assert_eq!(back, ready);
    }
}
