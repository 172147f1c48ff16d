//! The callback inbox: every verified delivery is written here (committed) before FAL gets
//! its 200, then handed to the engine. The hand-over runs beside the request, so a burst of
//! callbacks costs one insert each on the request path; a sweeper re-hands anything a crashed
//! process left behind (the engine applies a callback once however often it is handed over).

use std::sync::Arc;
use std::time::Duration;

use aisha_engine::supervisor::{supervise, unless_stopped};
use aisha_engine::time::now_ms;
use aisha_engine::{Db, Engine, LoopName, ResolveOutcome, on_db};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::jobs::PROVIDER;
use super::submissions::Submissions;
use aisha_http::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("callback inbox: {0}")]
    Db(#[from] sqlx::Error),
    #[error("callback inbox: cannot store: {0}")]
    Write(String),
    #[error("callback inbox: shutting down")]
    Closed,
}

/// One verified delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub request_id: String,
    pub endpoint: String,
    pub run_id: String,
    pub step: String,
    pub body: String,
}

/// Stores deliveries. Writes are grouped: concurrent deliveries share one multi-row insert
/// and one commit (a durable commit is the price of each 200, so fewer commits is more
/// callbacks per second), each caller still waiting for its own row to be committed.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Book-keeping after the hand-over (marks, sweeps) commits without waiting for the disk:
    /// a mark lost in a database crash only means the sweeper hands the delivery over again,
    /// which the engine answers as a duplicate.
    db: Db,
    writes: mpsc::Sender<Pending>,
}

type Pending = (Delivery, oneshot::Sender<Result<bool, String>>);

/// Writers committing in parallel, and the most rows one insert carries.
const WRITERS: usize = 2;
const BATCH: usize = 128;

impl Inbox {
    /// Starts the writers (durable commits on `db`; book-keeping on `relaxed`); they stop when
    /// the last clone of the inbox is dropped.
    pub fn start(db: &Db, relaxed: &Db) -> Inbox {
        let (writes, rx) = mpsc::channel::<Pending>(4 * BATCH);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(db.clone(), rx.clone()));
        }
        Inbox {
            db: relaxed.clone(),
            writes,
        }
    }

    /// Stores a delivery once it is committed; false when FAL's request id is already in (a
    /// duplicate).
    pub async fn store(&self, d: &Delivery) -> Result<bool, InboxError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send((d.clone(), tx))
            .await
            .map_err(|_| InboxError::Closed)?;
        rx.await
            .map_err(|_| InboxError::Closed)?
            .map_err(InboxError::Write)
    }

    async fn mark(&self, request_id: &str, outcome: &str) -> Result<(), InboxError> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE fal_inbox SET processed_at = $2, outcome = $3 WHERE request_id = $1",
        )
        .bind(request_id)
        .bind(now_ms())
        .bind(outcome)
        .execute(p)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Deliveries not handed over `older_than` after they arrived.
    pub async fn stranded(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> Result<Vec<Delivery>, InboxError> {
        let before = now_ms() - older_than.as_millis() as i64;
        Ok(on_db!(&self.db, p => sqlx::query_as(
            "SELECT request_id, endpoint, run_id, step, body FROM fal_inbox \
             WHERE processed_at IS NULL AND received_at < $1 ORDER BY received_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }

    /// Deletes deliveries handed over more than `older_than` ago.
    pub async fn prune(&self, older_than: Duration) -> Result<u64, InboxError> {
        let before = now_ms() - older_than.as_millis() as i64;
        Ok(on_db!(&self.db, p => sqlx::query(
            "DELETE FROM fal_inbox WHERE processed_at IS NOT NULL AND processed_at < $1",
        )
        .bind(before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Deliveries still waiting to be handed over.
    pub async fn backlog(&self) -> Result<i64, InboxError> {
        Ok(on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM fal_inbox WHERE processed_at IS NULL",
        )
        .fetch_one(p)
        .await)?)
    }

    /// When the first of FAL's callbacks for `run_id` arrived (ms since the epoch), if any did.
    pub async fn first_received_at(&self, run_id: &str) -> Result<Option<i64>, InboxError> {
        Ok(on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT MIN(received_at) FROM fal_inbox WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(p)
        .await)?)
    }

    /// Outcome of a delivery once handed over.
    pub async fn outcome(&self, request_id: &str) -> Result<Option<String>, InboxError> {
        Ok(on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT outcome FROM fal_inbox WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(p)
        .await)?
        .flatten())
    }
}

/// Hands stored deliveries to the engine.
#[derive(Clone)]
pub struct Handover {
    engine: Engine,
    inbox: Inbox,
    submissions: Submissions,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Delivery>,
}

/// How many deliveries are handed over at once, and how long a delivery may sit unhanded
/// before the sweeper takes it.
const PARALLEL: usize = 8;
const SWEEP_AFTER: Duration = Duration::from_secs(10);
/// Handed-over deliveries are kept this long (to answer FAL's late retries as duplicates and
/// for audits), then deleted, checked about hourly.
const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
const PRUNE_EVERY_TICKS: u64 = 720;

impl Handover {
    /// Starts the hand-over and the sweeper, supervised as `fal-handover` (restarted with
    /// backoff should they ever stop); both stop when `shutdown` fires.
    pub async fn start(
        engine: Engine,
        metrics: Arc<Metrics>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Handover, tokio::task::JoinHandle<()>), InboxError> {
        let (tx, rx) = mpsc::channel(10_000);
        let inbox = Inbox::start(engine.db(), engine.relaxed_db());
        let h = Handover {
            submissions: Submissions::new(inbox.db.clone()),
            inbox,
            engine,
            metrics,
            tx,
        };
        // The queue outlives each life of the loop, so nothing queued is lost to a restart.
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let me = h.clone();
        let task = tokio::spawn(supervise(
            h.engine.health().clone(),
            LoopName::Background("fal-handover"),
            shutdown.clone(),
            move |_| me.clone().run(rx.clone(), shutdown.clone()),
        ));
        Ok((h, task))
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Queues a stored delivery; if the queue is full the sweeper gets it later.
    pub fn enqueue(&self, d: Delivery) {
        if self.tx.try_send(d).is_err() {
            tracing::warn!("callback hand-over queue is full; the sweeper will take it");
        }
    }

    /// One life of the loop: hands over what the request path queues and sweeps up what it
    /// could not. Ends only on `shutdown`.
    async fn run(
        self,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Delivery>>>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        let me = self.clone();
        let live = async {
            let mut rx = rx.lock().await;
            futures::stream::poll_fn(|cx| rx.poll_recv(cx))
                .for_each_concurrent(PARALLEL, move |d| {
                    let me = me.clone();
                    async move { me.hand_over(d).await }
                })
                .await
        };
        let sweeper = async {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                ticks += 1;
                if ticks % PRUNE_EVERY_TICKS == 1 {
                    match self.inbox.prune(RETENTION).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "pruned handed-over callbacks"),
                        Err(e) => tracing::warn!(error = %e, "inbox pruning failed"),
                    }
                }
                // Page through everything stranded, a few at a time.
                loop {
                    match self.inbox.stranded(SWEEP_AFTER, 500).await {
                        Ok(found) => {
                            let full = found.len() == 500;
                            futures::stream::iter(found)
                                .for_each_concurrent(PARALLEL, |d| self.hand_over(d))
                                .await;
                            if !full {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "inbox sweep failed");
                            break;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = live => {}
            _ = sweeper => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
        unless_stopped(&shutdown)
    }

    /// Resolves the run waiting on the delivery's request id. A callback that finds no run
    /// parked yet is stored by the engine; if its step has not even recorded the request id
    /// (the submitter died right after FAL answered), the id is adopted from the callback.
    pub async fn hand_over(&self, d: Delivery) {
        let payload: Value = match serde_json::from_str(&d.body) {
            Ok(v) => v,
            Err(_) => Value::Null,
        };
        let outcome = match self
            .engine
            .resolve_callback(PROVIDER, &d.request_id, &payload)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(request_id = %d.request_id, error = %e, "cannot hand the callback over yet");
                return;
            }
        };
        let mut label = outcome.label();
        if outcome == ResolveOutcome::Early {
            match self
                .submissions
                .adopt(&d.run_id, &d.step, &d.request_id)
                .await
            {
                Ok(true) => {
                    tracing::info!(request_id = ?d.request_id, run_id = ?d.run_id, "callback came before the request id was recorded; adopted it");
                }
                Ok(false) => {
                    if let Ok(None) = self.submissions.by_request(&d.request_id).await {
                        label = "unknown";
                        self.metrics.callback_outcome(PROVIDER, label);
                        tracing::warn!(request_id = ?d.request_id, run_id = ?d.run_id, "callback for a request we have no submission of");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot adopt the request id"),
            }
        }
        tracing::info!(request_id = ?d.request_id, run_id = ?d.run_id, outcome = label, "FAL callback handed over");
        if let Err(e) = self.inbox.mark(&d.request_id, label).await {
            tracing::warn!(request_id = %d.request_id, error = %e, "cannot mark the callback handed over");
        }
    }
}

/// One writer: takes whatever deliveries are waiting (at least one, at most `BATCH`), inserts
/// them in one statement, commits, and answers each caller.
async fn write_batches(db: Db, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
        }
        let deliveries: Vec<&Delivery> = batch.iter().map(|(d, _)| d).collect();
        let result = insert_many(&db, &deliveries).await;
        let mut seen = std::collections::HashSet::new();
        for (d, reply) in batch {
            let answer = match &result {
                // A request id twice in one batch: the first is the new one.
                Ok(inserted) => Ok(inserted.contains(&d.request_id) && seen.insert(d.request_id)),
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.send(answer);
        }
    }
}

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING request_id`.
async fn insert_many(
    db: &Db,
    batch: &[&Delivery],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO fal_inbox (request_id, endpoint, run_id, step, body, received_at) VALUES ",
    );
    sql.push_str(&aisha_engine::db::values_placeholders(batch.len(), 6));
    sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id");
    let now = now_ms();
    // Only numbered placeholders are spliced in; every value is bound.
    let sql = sqlx::AssertSqlSafe(sql);
    let ids: Vec<String> = on_db!(db, p => {
        let mut q = sqlx::query_scalar(sql);
        for d in batch {
            q = q
                .bind(&d.request_id)
                .bind(&d.endpoint)
                .bind(&d.run_id)
                .bind(&d.step)
                .bind(&d.body)
                .bind(now);
        }
        q.fetch_all(p).await
    })?;
    Ok(ids.into_iter().collect())
}
