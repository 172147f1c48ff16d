//! Fault injection: what can go wrong with a FAL request, on purpose.

use serde::{Deserialize, Serialize};

/// One fault of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The job fails: an `ERROR` callback, status COMPLETED with an error.
    Error,
    /// No callback at all: only polling finds the result.
    NoCallback,
    /// The callback is delivered twice.
    Duplicate,
    /// The callback comes `late_ms` after the job finished.
    Late,
    /// Submit answers 503 (runner_scheduling_failure).
    #[serde(rename = "submit-503")]
    Submit503,
    /// Submit answers 429.
    #[serde(rename = "submit-429")]
    Submit429,
    /// Every answer takes `slow_ms` longer.
    Slow,
    /// The first generated image is flagged in `has_nsfw_concepts`.
    Nsfw,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_string())).ok()
    }

    /// Parses `x-sim-fault: error, duplicate`.
    pub fn parse_list(s: &str) -> Vec<Fault> {
        s.split(',').filter_map(Fault::parse).collect()
    }
}

/// Faults applied to every request by probability (0 = never, 1 = always), and their sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub error_rate: f64,
    pub no_callback_rate: f64,
    pub duplicate_rate: f64,
    pub late_rate: f64,
    pub submit_5xx_rate: f64,
    pub slow_rate: f64,
    pub late_ms: u64,
    pub slow_ms: u64,
}

impl Faults {
    /// Draws this request's faults.
    pub fn draw(&self) -> Vec<Fault> {
        let mut out = Vec::new();
        for (rate, fault) in [
            (self.error_rate, Fault::Error),
            (self.no_callback_rate, Fault::NoCallback),
            (self.duplicate_rate, Fault::Duplicate),
            (self.late_rate, Fault::Late),
            (self.submit_5xx_rate, Fault::Submit503),
            (self.slow_rate, Fault::Slow),
        ] {
            if rate > 0.0 && rand::random::<f64>() < rate {
                out.push(fault);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_parse() {
        assert_eq!(
            Fault::parse_list("error, no-callback,submit-503,bogus"),
            vec![Fault::Error, Fault::NoCallback, Fault::Submit503]
        );
    }

    #[test]
    fn certain_faults_always_happen() {
        let f = Faults {
            duplicate_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(f.draw(), vec![Fault::Duplicate]);
        assert!(Faults::default().draw().is_empty());
    }
}
