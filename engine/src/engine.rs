//! The engine handle: registered workflows, the database, the queue, and starting runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callbacks::{self, ResolveOutcome};
use crate::config::EngineConfig;
use crate::db::Db;
use crate::error::{EngineError, Result};
use crate::group_commit::CommitStats;
use crate::health::Health;
use crate::inner::Inner;
use crate::limits;
use crate::observer::{NoopObserver, Observer};
use crate::on_tx;
use crate::queue::{QueueBackend, StepTask};
use crate::runs::{Held, RunStatus, queue_name};
use crate::start_writes::NewRun;
use crate::time::now_ms;
use crate::workflow::{DynWorkflow, LimitMode, Workflow};

/// Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub struct EngineBuilder {
    db: Db,
    queue: QueueBackend,
    config: EngineConfig,
    workflows: HashMap<&'static str, Arc<dyn DynWorkflow>>,
    observer: Arc<dyn Observer>,
}

impl EngineBuilder {
    pub fn register<S, D>(mut self, wf: Workflow<S, D>) -> Self
    where
        S: Serialize + DeserializeOwned + Send + 'static,
        D: Send + Sync + 'static,
    {
        let wf: Arc<dyn DynWorkflow> = Arc::new(wf);
        self.workflows.insert(wf.name(), wf);
        self
    }

    pub fn observer(mut self, o: Arc<dyn Observer>) -> Self {
        self.observer = o;
        self
    }

    pub async fn build(self) -> Result<Engine> {
        let inner = Inner::new(
            self.db,
            self.queue,
            self.config,
            self.workflows,
            self.observer,
        );
        limits::sync_capacities(&inner).await?;
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }
}

/// Options of a new run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartOptions {
    /// Whom the run is for (e.g. a Telegram user id): listing and per-subject limits.
    pub subject: Option<String>,
    /// A second start with the same key returns the first run instead of a new one.
    pub idempotency_key: Option<String>,
    /// The run this one was derived from (e.g. a regeneration).
    pub parent_run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub run_id: String,
    /// False when the idempotency key matched an existing run.
    pub created: bool,
    /// True when the run waits behind its subject's limit.
    pub held: bool,
}

impl Engine {
    /// How many transactions the group commits of step transitions (`.0`) and of claims
    /// (`.1`) made so far, and how many items they carried.
    pub fn group_commits(&self) -> (&CommitStats, &CommitStats) {
        (self.inner.step_ok.stats(), self.inner.claims.stats())
    }

    pub fn builder(db: Db, queue: QueueBackend, config: EngineConfig) -> EngineBuilder {
        EngineBuilder {
            db,
            queue,
            config,
            workflows: HashMap::new(),
            observer: Arc::new(NoopObserver),
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn queue(&self) -> &QueueBackend {
        &self.inner.queue
    }

    /// The relaxed pool (`synchronous_commit=off`): book-keeping that a crash may lose.
    pub fn relaxed_db(&self) -> &Db {
        &self.inner.lease_db
    }

    /// The supervised loops of this process; adapters register theirs here too.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn workflow_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.inner.workflows.keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn queue_names(&self) -> Vec<String> {
        self.workflow_names()
            .into_iter()
            .map(|w| queue_name(&self.inner.config.namespace, w))
            .collect()
    }

    /// Starts a run of `workflow` with `input` as its first state.
    pub async fn start(&self, workflow: &str, input: Value, opts: StartOptions) -> Result<Started> {
        let e = &self.inner;
        let wf = e
            .workflows
            .get(workflow)
            .ok_or_else(|| EngineError::UnknownWorkflow(workflow.to_string()))?
            .clone();
        wf.check_input(&input)
            .map_err(|message| EngineError::InvalidInput {
                workflow: workflow.to_string(),
                message,
            })?;
        let first = wf.first_step().ok_or_else(|| EngineError::InvalidInput {
            workflow: workflow.to_string(),
            message: "the workflow has no steps".into(),
        })?;
        if opts.idempotency_key.is_none()
            && (wf.subject_limit().is_none() || opts.subject.is_none())
        {
            // Nothing to look up or to count first: a plain start joins the group commit.
            let id = uuid::Uuid::now_v7().to_string();
            e.starts
                .submit(NewRun {
                    id: id.clone(),
                    workflow: workflow.to_string(),
                    step: first.to_string(),
                    state: input.to_string(),
                    subject: opts.subject,
                    parent_run_id: opts.parent_run_id,
                })
                .await?;
            return Ok(Started {
                run_id: id,
                created: true,
                held: false,
            });
        }
        let mut tx = e.queue.begin(&e.db).await?;
        if let Some(existing) =
            find_by_key(&mut tx, workflow, opts.idempotency_key.as_deref()).await?
        {
            return Ok(existing);
        }
        let mut held_by = None;
        if let (Some((limit, mode)), Some(subject)) = (wf.subject_limit(), opts.subject.as_deref())
        {
            limits::lock_subject(&mut tx, workflow, subject).await?;
            let active = limits::active_for_subject(&mut tx, workflow, subject).await?;
            if active >= limit {
                match mode {
                    LimitMode::Refuse => {
                        return Err(EngineError::SubjectLimit {
                            workflow: workflow.to_string(),
                            subject: subject.to_string(),
                            active,
                            limit,
                        });
                    }
                    LimitMode::Queue => held_by = Some(Held::Subject),
                }
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let inserted = on_tx!(tx.conn(), c => sqlx::query(
            "INSERT INTO workflow_runs (id, workflow, status, step, attempt, seq, state, subject, \
                idempotency_key, parent_run_id, held, due_at, created_at, updated_at) \
             VALUES ($1, $2, $10, $3, 1, 1, $4, $5, $6, $7, $8, $9, $9, $9) \
             ON CONFLICT (workflow, idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(workflow)
        .bind(first)
        .bind(input.to_string())
        .bind(&opts.subject)
        .bind(&opts.idempotency_key)
        .bind(&opts.parent_run_id)
        .bind(&held_by)
        .bind(now)
        .bind(RunStatus::Pending)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if inserted == 0 {
            // Lost a race with a concurrent start under the same key.
            drop(tx);
            let mut tx = e.queue.begin(&e.db).await?;
            let existing = find_by_key(&mut tx, workflow, opts.idempotency_key.as_deref()).await?;
            return existing.ok_or_else(|| EngineError::UnknownRun(id));
        }
        if held_by.is_none() {
            let task = StepTask {
                run_id: id.clone(),
                seq: 1,
                step: first.to_string(),
                attempt: 1,
            };
            e.queue
                .stage(&mut tx, &queue_name(&e.config.namespace, workflow), task)
                .await?;
        }
        e.queue.commit(tx).await?;
        Ok(Started {
            run_id: id,
            created: true,
            held: held_by.is_some(),
        })
    }

    /// Hands an outside service's answer to the run waiting on `(provider, external_id)`.
    pub async fn resolve_callback(
        &self,
        provider: &str,
        external_id: &str,
        payload: &Value,
    ) -> Result<ResolveOutcome> {
        callbacks::resolve(&self.inner, provider, external_id, payload).await
    }

    /// Runs the workers, the scheduler and the reconciler until `shutdown` completes, then
    /// lets in-flight steps finish within the grace period.
    pub async fn run_until<F>(&self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::runtime::run(self.inner.clone(), shutdown).await
    }
}

async fn find_by_key(
    tx: &mut crate::queue::Txn,
    workflow: &str,
    key: Option<&str>,
) -> Result<Option<Started>> {
    let Some(key) = key else { return Ok(None) };
    let found: Option<(String, Option<Held>)> = on_tx!(tx.conn(), c => sqlx::query_as(
        "SELECT id, held FROM workflow_runs WHERE workflow = $1 AND idempotency_key = $2",
    )
    .bind(workflow)
    .bind(key)
    .fetch_optional(c)
    .await)?;
    Ok(found.map(|(run_id, held)| Started {
        run_id,
        created: false,
        held: held == Some(Held::Subject),
    }))
}
