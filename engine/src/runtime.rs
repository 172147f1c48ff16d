//! The worker runtime: one apalis worker per workflow queue (a unique name per life, local
//! wake-ups and the process's LISTEN plus an interval poll), the scheduler and the reconciler,
//! every one supervised, until shutdown; then in-flight steps get the grace period.

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::ext::poll_strategy::Strategy;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::Result;
use crate::health::LoopName;
use crate::inner::Inner;
use crate::nudge::Nudge;
use crate::queue::{QueueBackend, StepTask, listener, redis_storage};
use crate::runs::queue_name;
use crate::supervisor::supervise;
use crate::worker::execute;

#[derive(Clone)]
struct WorkerCtx {
    engine: Arc<Inner>,
    workflow: &'static str,
}

async fn handle(task: StepTask, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    execute(&ctx.engine, ctx.workflow, task)
        .await
        .map_err(|e| Box::new(e) as BoxDynError)
}

/// Runs every role of the engine in this process until `shutdown`: each queue worker, the
/// scheduler, the reconciler and (on Postgres) the queue listener, each supervised.
pub(crate) async fn run<F>(e: Arc<Inner>, shutdown: F) -> Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    for (&workflow, _) in e.workflows.iter() {
        let name = LoopName::QueueWorker(queue_name(&e.config.namespace, workflow));
        let (e2, stop) = (e.clone(), stop_rx.clone());
        loops.push(tokio::spawn(supervise(
            e.health.clone(),
            name,
            stop_rx.clone(),
            move |generation| queue_worker(e2.clone(), workflow, generation, stop.clone()),
        )));
    }
    let (e2, stop) = (e.clone(), stop_rx.clone());
    loops.push(tokio::spawn(supervise(
        e.health.clone(),
        LoopName::Background("scheduler"),
        stop_rx.clone(),
        move |_| crate::scheduler::run(e2.clone(), stop.clone()),
    )));
    let (e2, stop) = (e.clone(), stop_rx.clone());
    loops.push(tokio::spawn(supervise(
        e.health.clone(),
        LoopName::Background("reconciler"),
        stop_rx.clone(),
        move |_| crate::reconciler::run(e2.clone(), stop.clone()),
    )));
    if let QueueBackend::Postgres { pool, wakers } = &e.queue {
        let (pool, wakers, stop) = (pool.clone(), wakers.clone(), stop_rx.clone());
        loops.push(tokio::spawn(supervise(
            e.health.clone(),
            LoopName::Background("queue-listener"),
            stop_rx.clone(),
            move |_| listener::run(pool.clone(), wakers.clone(), stop.clone()),
        )));
    }
    shutdown.await;
    info!(
        "shutting down: no new tasks, in-flight steps get {:?}",
        e.config.shutdown_grace
    );
    let _ = stop_tx.send(true);
    let all = futures::future::join_all(loops);
    if tokio::time::timeout(e.config.shutdown_grace, all)
        .await
        .is_err()
    {
        warn!("grace period over: unfinished steps are left to the reconciler");
    }
    Ok(())
}

async fn stop_signal(mut stop: watch::Receiver<bool>) -> Result<(), std::io::Error> {
    let _ = stop.wait_for(|s| *s).await;
    Ok(())
}

/// Heartbeat every 5 s; a worker silent for 6 beats is dead and its tasks go back.
macro_rules! apalis_config {
    ($config:ty, $queue:expr, $batch:expr) => {
        <$config>::default()
            .queue($queue)
            .batch_size($batch)
            .heartbeat_interval(Duration::from_secs(5))
            .missed_heartbeats(6)
    };
}

/// Runs one apalis worker over `$storage`, woken by `$strategy`, until `$stop`.
macro_rules! run_apalis_worker {
    ($name:expr, $storage:expr, $strategy:expr, $ctx:expr, $conc:expr, $stop:expr) => {
        WorkerBuilder::new($name)
            .backend($storage.poll_with_strategy($strategy))
            .data($ctx)
            .concurrency($conc)
            .build(handle)
            .run_until(stop_signal($stop))
            .await
    };
}

/// Wake-ups from this process's own commits, then an interval poll for everything else.
fn wake_ups(e: &Inner, queue: &str, interval: Duration) -> Strategy {
    let mut s = Strategy::new();
    if let Some(rx) = e.queue.local_waker(queue) {
        s = s.stream(Nudge::new(rx));
    }
    s.interval(interval)
}

/// One life of the apalis worker of `workflow`'s queue. Every life has a name of its own:
/// apalis leaves the tasks of a restarted same-named worker Running forever, and apalis-redis
/// refuses a name that Redis forgot ("worker not registered").
async fn queue_worker(
    e: Arc<Inner>,
    workflow: &'static str,
    generation: u64,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let queue = queue_name(&e.config.namespace, workflow);
    let name = format!("{queue}-{}-{generation}", e.instance);
    if generation > 0
        && let Some(lost) = e.queue.lost_tasks()
    {
        // The worker stopped because Redis failed it; Redis may have come back empty.
        lost.suspect();
    }
    let conc = e.config.concurrency.max(1);
    let tick = e.config.tick.max(Duration::from_millis(50));
    let ctx = WorkerCtx {
        engine: e.clone(),
        workflow,
    };
    let res = match &e.queue {
        QueueBackend::Postgres { pool, .. } => {
            // No lock events: our claim already records who runs the step, and the orphan
            // re-enqueue covers Queued as well as Running tasks. Other processes' NOTIFYs
            // come through the process's one listener (`queue::listener`).
            let cfg = apalis_config!(apalis_postgres::Config, &queue, conc).lock_tasks(false);
            let storage = apalis_postgres::PostgresStorage::<StepTask>::new(pool).with_config(cfg);
            let strategy = wake_ups(&e, &queue, Duration::from_secs(1));
            run_apalis_worker!(name, storage, strategy, ctx, conc, stop.clone())
        }
        QueueBackend::Sqlite { writer, .. } => {
            // apalis-sqlite's fetches, acks and heartbeats are writes: on the one writer
            // connection they queue behind the group commits instead of meeting them in
            // SQLite's busy handler, whose sleeps were the 1.1 s p99 at concurrency 32.
            let cfg = apalis_config!(apalis_sqlite::Config, &queue, conc);
            let storage = apalis_sqlite::SqliteStorage::<StepTask>::new(writer).with_config(cfg);
            let strategy = wake_ups(&e, &queue, tick);
            run_apalis_worker!(name, storage, strategy, ctx, conc, stop.clone())
        }
        QueueBackend::Redis { conn, .. } => {
            let cfg = apalis_config!(apalis_redis::Config, &queue, conc);
            let storage = redis_storage(conn.clone(), &queue).with_config(cfg);
            let strategy = wake_ups(&e, &queue, tick);
            run_apalis_worker!(name, storage, strategy, ctx, conc, stop.clone())
        }
    };
    res.map_err(|err| format!("{queue}: {err}"))?;
    crate::supervisor::unless_stopped(&stop)
}
