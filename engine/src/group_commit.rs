//! Group commit: many concurrent writes of the same kind applied in one transaction.
//!
//! Every commit of the state of record waits for its WAL flush, so a design that commits once
//! per step is capped by the flush rate. Here each writer puts its item in a shared queue; one
//! drain task (started by whoever finds it idle) takes *everything queued when it becomes
//! free* and applies it in one transaction, then answers each waiter with its own result.
//! There is no timer: a lone step is applied at once (no added latency at concurrency 1), and
//! under load the batch grows by itself with the time the previous commit took ("natural
//! batching", the leader/follower pattern of database group commit).
//!
//! A waiter learns its result only after the batch has committed. When the batch fails:
//! on a statement error each item is tried again alone (so one bad row fails alone); on a
//! lost connection every waiter gets the error at once (trying each alone would make them
//! wait out the acquire timeout one after the other). The drain task ends when the queue is
//! empty and is started again by the next item; a panic inside it fails only that batch's
//! waiters, and a drain task that is dropped half-way (runtime shutdown) fails its waiters
//! and lets the next item start a new one — it can never leave items unanswered.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use tokio::sync::oneshot;

use crate::error::{EngineError, Result};

/// Most items one transaction takes: bounds a statement's size and how long the first item
/// of a batch waits behind the others.
const MAX_BATCH: usize = 256;

/// A kind of write that can be applied many at once.
pub(crate) trait Apply: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Out: Send + 'static;
    /// Applies `batch` in one transaction and returns one result per item, in order.
    fn apply(&self, batch: &[Self::Item]) -> impl Future<Output = Result<Vec<Self::Out>>> + Send;
}

/// How many transactions a batcher committed and how many items they carried.
#[derive(Debug, Default)]
pub struct CommitStats {
    commits: AtomicU64,
    items: AtomicU64,
}

impl CommitStats {
    fn record(&self, items: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
    }

    /// `(commits, items)` so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
        )
    }
}

struct Waiting<I, O> {
    item: I,
    reply: oneshot::Sender<Result<O>>,
}

struct Queue<I, O> {
    items: Vec<Waiting<I, O>>,
    /// A drain task is running and will look at the queue again before it ends.
    busy: bool,
}

type Shared<A> = Arc<Mutex<Queue<<A as Apply>::Item, <A as Apply>::Out>>>;

pub(crate) struct Batcher<A: Apply> {
    applier: Arc<A>,
    queue: Shared<A>,
    stats: Arc<CommitStats>,
}

impl<A: Apply> Batcher<A> {
    pub(crate) fn new(applier: A) -> Self {
        Batcher {
            applier: Arc::new(applier),
            queue: Arc::new(Mutex::new(Queue {
                items: Vec::new(),
                busy: false,
            })),
            stats: Arc::default(),
        }
    }

    /// Applies a batch directly, without the queue (tests that need a batch of known content).
    #[cfg(feature = "testkit")]
    pub(crate) fn applier(&self) -> &A {
        &self.applier
    }

    pub(crate) fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Queues `item` and waits until the transaction that carries it has committed (or failed).
    pub(crate) async fn submit(&self, item: A::Item) -> Result<A::Out> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = lock(&self.queue);
            q.items.push(Waiting { item, reply });
            !std::mem::replace(&mut q.busy, true)
        };
        if start {
            tokio::spawn(drain(
                self.applier.clone(),
                self.queue.clone(),
                self.stats.clone(),
            ));
        }
        answer.await.map_err(|_| {
            EngineError::GroupCommit("the batch was abandoned before it answered".into())
        })?
    }
}

fn lock<I, O>(q: &Mutex<Queue<I, O>>) -> MutexGuard<'_, Queue<I, O>> {
    // The queue is consistent at every point a panic could leave it (a Vec and a flag).
    q.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies batches until the queue is empty.
async fn drain<A: Apply>(applier: Arc<A>, queue: Shared<A>, stats: Arc<CommitStats>) {
    let mut idle = IdleOnDrop {
        queue: queue.clone(),
        armed: true,
    };
    loop {
        let batch: Vec<Waiting<A::Item, A::Out>> = {
            let mut q = lock(&queue);
            if q.items.is_empty() {
                q.busy = false;
                idle.armed = false;
                return;
            }
            let n = q.items.len().min(MAX_BATCH);
            q.items.drain(..n).collect()
        };
        // A panic drops the batch's reply senders: its waiters get an error, the rest go on.
        if AssertUnwindSafe(commit(applier.as_ref(), batch, &stats))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("group commit panicked; its steps are handed back");
        }
    }
}

/// When a drain task is dropped before it emptied the queue (the runtime is shutting down),
/// the items still queued are answered with an error (their senders drop) and the next item
/// starts a new drain task.
struct IdleOnDrop<I, O> {
    queue: Arc<Mutex<Queue<I, O>>>,
    armed: bool,
}

impl<I, O> Drop for IdleOnDrop<I, O> {
    fn drop(&mut self) {
        if self.armed {
            let mut q = lock(&self.queue);
            q.items.clear();
            q.busy = false;
        }
    }
}

async fn commit<A: Apply>(applier: &A, batch: Vec<Waiting<A::Item, A::Out>>, stats: &CommitStats) {
    let (items, replies): (Vec<A::Item>, Vec<_>) =
        batch.into_iter().map(|w| (w.item, w.reply)).unzip();
    match applier.apply(&items).await {
        Ok(outs) if outs.len() == items.len() => {
            stats.record(items.len());
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
        }
        Ok(outs) => {
            let msg = format!("{} results for {} items", outs.len(), items.len());
            for reply in replies {
                let _ = reply.send(Err(EngineError::GroupCommit(msg.clone())));
            }
        }
        Err(err) if items.len() > 1 && is_statement_error(&err) => {
            tracing::debug!(error = %err, items = items.len(), "batch failed; applying its items one by one");
            for (item, reply) in items.iter().zip(replies) {
                let one = applier.apply(std::slice::from_ref(item)).await;
                if one.is_ok() {
                    stats.record(1);
                }
                let _ = reply.send(one.and_then(|mut v| {
                    v.pop()
                        .ok_or_else(|| EngineError::GroupCommit("no result for the item".into()))
                }));
            }
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(same_error(&err)));
            }
        }
    }
}

/// The server refused a statement of the batch (one of its rows may be at fault), as opposed
/// to the connection or the pool failing, which would fail every item alike.
fn is_statement_error(e: &EngineError) -> bool {
    matches!(e, EngineError::Database(sqlx::Error::Database(_)))
}

/// The batch's error for each of its waiters (sqlx errors are not `Clone`).
fn same_error(e: &EngineError) -> EngineError {
    match e {
        EngineError::NoConnection => EngineError::NoConnection,
        other => EngineError::GroupCommit(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles its items; fails a whole batch that holds a 0 (as a statement error would).
    struct Doubler;

    impl Apply for Doubler {
        type Item = u32;
        type Out = u32;
        async fn apply(&self, batch: &[u32]) -> Result<Vec<u32>> {
            tokio::task::yield_now().await;
            if batch.contains(&0) {
                return Err(EngineError::GroupCommit("zero".into()));
            }
            Ok(batch.iter().map(|x| x * 2).collect())
        }
    }

    #[tokio::test]
    async fn every_waiter_gets_its_own_result() {
        let b = Arc::new(Batcher::new(Doubler));
        let tasks: Vec<_> = (1..=100u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.submit(i).await) })
            })
            .collect();
        for t in tasks {
            let (i, r) = t.await.expect("task");
            assert_eq!(r.expect("applied"), i * 2);
        }
        let (commits, items) = b.stats().snapshot();
        assert_eq!(items, 100);
        assert!((1..=100).contains(&commits));
    }

    #[tokio::test]
    async fn a_failed_batch_fails_its_waiters_and_the_next_one_runs() {
        let b = Batcher::new(Doubler);
        assert!(b.submit(0).await.is_err());
        assert_eq!(b.submit(4).await.expect("applied"), 8);
    }
}
