//! Photos of an album arrive as separate updates within a second or two. The "7 of 10"
//! answer waits until the photos stop coming, so an album of 20 gets one answer, not 20
//! (Telegram allows about one message per second per chat).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Debounce {
    seq: AtomicU64,
    latest: Mutex<HashMap<i64, u64>>,
}

impl Debounce {
    /// Marks news for `chat`; returns its ticket.
    pub fn touch(&self, chat: i64) -> u64 {
        let t = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chat, t);
        t
    }

    /// True when `ticket` is still the newest news of `chat` (and forgets it).
    pub fn settled(&self, chat: i64, ticket: u64) -> bool {
        let mut m = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(&chat) == Some(&ticket) {
            m.remove(&chat);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_ticket_settles() {
        let d = Debounce::default();
        let a = d.touch(1);
        let b = d.touch(1);
        let c = d.touch(2);
        assert!(!d.settled(1, a));
        assert!(d.settled(1, b));
        assert!(d.settled(2, c));
        assert!(!d.settled(1, b));
    }
}
