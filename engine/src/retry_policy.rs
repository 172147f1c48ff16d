//! Per-step retry policy: attempts, exponential backoff with full jitter, and a timeout.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: i64,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A step running longer than this is abandoned and counts as a retryable failure.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn attempts(mut self, n: i64) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Delay before attempt `next_attempt` (2, 3, …): a uniformly random point in
    /// `[cap/2, cap]`, where cap doubles from the initial backoff up to the maximum.
    /// Half the cap is kept so that a retry storm still spreads but never fires at once.
    pub fn backoff_for(&self, next_attempt: i64) -> Duration {
        let exp = (next_attempt - 2).clamp(0, 30) as u32;
        let cap = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_backoff);
        let half = cap / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    pub fn exhausted(&self, attempt: i64) -> bool {
        attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let b2 = p.backoff_for(2);
            assert!(b2 >= Duration::from_millis(50) && b2 <= Duration::from_millis(100));
            let b4 = p.backoff_for(4);
            assert!(b4 >= Duration::from_millis(200) && b4 <= Duration::from_millis(400));
            let b20 = p.backoff_for(20);
            assert!(b20 >= Duration::from_millis(500) && b20 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn exhausted_counts_the_first_attempt() {
        let p = RetryPolicy::default().attempts(3);
        assert!(!p.exhausted(2));
        assert!(p.exhausted(3));
    }
}
