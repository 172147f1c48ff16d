//! One LISTEN connection per process for the Postgres queue: other processes' NOTIFYs about
//! new tasks (`apalis::job::insert`, payload `{"job_type": queue, …}`) are passed to this
//! process's worker of that queue through its wake-up channel.
//!
//! apalis's own `Pubsub` holds a connection per queue for the life of the worker; with five
//! workflows that was five connections of the budget idle in LISTEN. A lost listener only
//! costs latency (the workers also poll every second), and the supervisor starts it again.

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::Wakers;

/// The channel apalis-postgres's insert trigger (and our `announce`) notifies on.
pub(crate) const CHANNEL: &str = "apalis::job::insert";

#[derive(Deserialize)]
struct Inserted {
    job_type: String,
}

/// Listens until `stop`; returns an error when the connection is lost.
pub(crate) async fn run(
    pool: PgPool,
    wakers: Wakers,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut listener = PgListener::connect_with(&pool)
        .await
        .map_err(|e| format!("cannot open the LISTEN connection: {e}"))?;
    // Reconnects are the supervisor's: one place that counts and logs them.
    listener.eager_reconnect(false);
    listener
        .listen(CHANNEL)
        .await
        .map_err(|e| format!("LISTEN failed: {e}"))?;
    // Whatever was notified while no one listened: each worker fetches once now.
    if let Ok(w) = wakers.lock() {
        for tx in w.values() {
            let _ = tx.unbounded_send(());
        }
    }
    loop {
        let note = tokio::select! {
            n = listener.try_recv() => n.map_err(|e| format!("LISTEN connection lost: {e}"))?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(note) = note else {
            return Err("LISTEN connection closed".into());
        };
        let Ok(inserted) = serde_json::from_str::<Inserted>(note.payload()) else {
            continue;
        };
        if let Ok(w) = wakers.lock()
            && let Some(tx) = w.get(&inserted.job_type)
        {
            let _ = tx.unbounded_send(());
        }
    }
}
