//! Telegram's outgoing limits (about one message per second per chat, 30 per second
//! overall): every call reserves the next free slot of its chat and of the whole bot, then
//! sleeps until it. A 429 freezes the chat (or the bot) for `retry_after`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Limiter {
    chat_interval: Duration,
    overall_interval: Duration,
    slots: Mutex<Slots>,
}

struct Slots {
    next_overall: Instant,
    next_by_chat: HashMap<i64, Instant>,
}

impl Limiter {
    pub fn new(chat_interval: Duration, per_second: u32) -> Limiter {
        Limiter {
            chat_interval,
            overall_interval: Duration::from_secs(1) / per_second.max(1),
            slots: Mutex::new(Slots {
                next_overall: Instant::now(),
                next_by_chat: HashMap::new(),
            }),
        }
    }

    /// Waits for the next slot of `chat` (and of the bot).
    pub async fn wait(&self, chat: Option<i64>) {
        let at = {
            let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let mut at = s.next_overall.max(now);
            if let Some(c) = chat {
                if let Some(next) = s.next_by_chat.get(&c) {
                    at = at.max(*next);
                }
                s.next_by_chat.insert(c, at + self.chat_interval);
                if s.next_by_chat.len() > 50_000 {
                    s.next_by_chat.retain(|_, t| *t > now);
                }
            }
            s.next_overall = at + self.overall_interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Telegram said 429: nothing more to `chat` (or to anyone) for `d`.
    pub fn freeze(&self, chat: Option<i64>, d: Duration) {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + d;
        match chat {
            Some(c) => {
                let e = s.next_by_chat.entry(c).or_insert(until);
                *e = (*e).max(until);
            }
            None => s.next_overall = s.next_overall.max(until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_chat_gets_a_slot_per_interval_others_are_not_held_up() {
        let l = Limiter::new(Duration::from_secs(1), 30);
        let t0 = Instant::now();
        l.wait(Some(1)).await;
        l.wait(Some(1)).await;
        l.wait(Some(1)).await;
        assert!(t0.elapsed() >= Duration::from_secs(2));
        let t1 = Instant::now();
        l.wait(Some(2)).await;
        assert!(t1.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn overall_rate_and_freeze() {
        let l = Limiter::new(Duration::from_millis(1), 10);
        let t0 = Instant::now();
        for c in 0..11 {
            l.wait(Some(c)).await;
        }
        assert!(t0.elapsed() >= Duration::from_secs(1));
        l.freeze(Some(5), Duration::from_secs(7));
        let t1 = Instant::now();
        l.wait(Some(5)).await;
        assert!(t1.elapsed() >= Duration::from_secs(7));
    }
}
