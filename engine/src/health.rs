//! What the supervised loops of this process say about themselves: up, or down since when and
//! why, and how often each was restarted. `/ready` and the metrics read it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::time::now_ms;

/// A supervised loop: a queue worker (named after its queue) or another background loop.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LoopName {
    /// The apalis worker of one queue.
    QueueWorker(String),
    /// Any other loop: `scheduler`, `reconciler`, `queue-listener`, `fal-handover`, …
    Background(&'static str),
}

impl LoopName {
    pub fn queue(&self) -> Option<&str> {
        match self {
            LoopName::QueueWorker(q) => Some(q),
            LoopName::Background(_) => None,
        }
    }
}

impl std::fmt::Display for LoopName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopName::QueueWorker(q) => write!(f, "queue worker {q}"),
            LoopName::Background(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopState {
    pub up: bool,
    /// When it last went up or down (unix ms).
    pub since_ms: i64,
    /// Why it is down: a short sentence of ours, never a backend's error text.
    pub reason: Option<&'static str>,
    pub restarts: u64,
}

/// Shared by every loop of a process; cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    loops: Arc<Mutex<BTreeMap<LoopName, LoopState>>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<LoopName, LoopState>> {
        self.loops.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn up(&self, name: &LoopName) {
        let mut loops = self.lock();
        let s = loops.entry(name.clone()).or_insert(LoopState {
            up: false,
            since_ms: now_ms(),
            reason: None,
            restarts: 0,
        });
        if !s.up {
            s.up = true;
            s.since_ms = now_ms();
            s.reason = None;
        }
    }

    pub(crate) fn down(&self, name: &LoopName, reason: &'static str) {
        let mut loops = self.lock();
        let s = loops.entry(name.clone()).or_insert(LoopState {
            up: true,
            since_ms: now_ms(),
            reason: None,
            restarts: 0,
        });
        if s.up {
            s.since_ms = now_ms();
        }
        s.up = false;
        s.reason = Some(reason);
    }

    pub(crate) fn restarted(&self, name: &LoopName) {
        if let Some(s) = self.lock().get_mut(name) {
            s.restarts += 1;
        }
    }

    /// A loop that ended because the process is stopping is no longer reported.
    pub(crate) fn gone(&self, name: &LoopName) {
        self.lock().remove(name);
    }

    /// Every loop this process runs, by name.
    pub fn snapshot(&self) -> Vec<(LoopName, LoopState)> {
        self.lock()
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }

    /// The loops that are down, with why.
    pub fn down_loops(&self) -> Vec<(LoopName, &'static str)> {
        self.lock()
            .iter()
            .filter(|(_, s)| !s.up)
            .map(|(n, s)| (n.clone(), s.reason.unwrap_or("down")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_goes_down_and_up_and_counts_restarts() {
        let h = Health::default();
        let w = LoopName::QueueWorker("aisha.noop3".into());
        h.up(&w);
        assert!(h.down_loops().is_empty());
        h.down(&w, "stopped with an error");
        h.restarted(&w);
        assert_eq!(h.down_loops(), vec![(w.clone(), "stopped with an error")]);
        h.up(&w);
        let snap = h.snapshot();
        assert_eq!(snap.len(), 1);
        assert!(snap[0].1.up);
        assert_eq!(snap[0].1.restarts, 1);
        h.gone(&w);
        assert!(h.snapshot().is_empty());
    }
}
