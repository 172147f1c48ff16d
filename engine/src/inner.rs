//! The engine's shared core: what every part of a running engine reads — the databases, the
//! queue, the configuration, the registered workflows, the observer, the health of its loops
//! and the group commits of its hot writes.
//!
//! It sits below everything that moves runs (transitions, workers, the scheduler, the
//! reconciler, callbacks, limits), which take it by reference, and below [`crate::Engine`],
//! the public handle that owns it. It depends on nothing above it, so the crate's modules
//! form no cycle.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::EngineConfig;
use crate::db::Db;
use crate::group_commit::Batcher;
use crate::health::Health;
use crate::observer::Observer;
use crate::queue::QueueBackend;
use crate::start_writes::StartWriter;
use crate::step_writes::{ClaimWriter, StepOkWriter};
use crate::workflow::DynWorkflow;

pub(crate) struct Inner {
    pub db: Db,
    /// Step leases (claims): see [`QueueBackend::lease_db`].
    pub lease_db: Db,
    pub queue: QueueBackend,
    pub config: EngineConfig,
    pub workflows: HashMap<&'static str, Arc<dyn DynWorkflow>>,
    pub observer: Arc<dyn Observer>,
    /// Unique per process start: apalis leaves tasks of a restarted same-named worker
    /// Running forever.
    pub instance: String,
    /// The supervised loops of this process (the engine's and the adapters').
    pub health: Health,
    /// Group commits of step claims and of step transitions (see `group_commit`).
    pub claims: Batcher<ClaimWriter>,
    pub step_ok: Batcher<StepOkWriter>,
    /// Group commit of plain starts (see `start_writes`).
    pub starts: Batcher<StartWriter>,
}

impl Inner {
    /// The core of a new engine, with a fresh instance name and its group commits.
    pub(crate) fn new(
        db: Db,
        queue: QueueBackend,
        config: EngineConfig,
        workflows: HashMap<&'static str, Arc<dyn DynWorkflow>>,
        observer: Arc<dyn Observer>,
    ) -> Inner {
        let instance = format!(
            "{}-{}",
            std::process::id(),
            &ulid::Ulid::generate().to_string()[16..]
        );
        let writer = queue.writer_db(&db);
        let lease_db = queue.lease_db(&db);
        let claims = Batcher::new(ClaimWriter {
            // SQLite's claims are writes like any other: its one writer takes them.
            db: match &writer {
                Db::Sqlite(_) => writer.clone(),
                Db::Postgres(_) => lease_db.clone(),
            },
            instance: instance.clone(),
        });
        let starts = Batcher::new(StartWriter {
            db: writer.clone(),
            queue: queue.clone(),
            namespace: config.namespace.clone(),
        });
        let step_ok = Batcher::new(StepOkWriter {
            db: writer,
            queue: queue.clone(),
            namespace: config.namespace.clone(),
            instance: instance.clone(),
        });
        Inner {
            claims,
            step_ok,
            starts,
            lease_db,
            db,
            queue,
            config,
            workflows,
            observer,
            instance,
            health: Health::default(),
        }
    }
}
