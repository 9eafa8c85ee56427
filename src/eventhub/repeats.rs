//! Keeps a failing connection from flooding the journal: librdkafka reports the same broker
//! error several times a second while the hub is unreachable. The first occurrence of an error
//! is logged, then the same text at most once per interval, with how many were left out.
//! Pure: time is passed in.

use std::time::{Duration, Instant};

/// How often the same error is logged again while it lasts.
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// The last error logged, and how many identical ones were not.
#[derive(Debug, Default)]
pub struct Repeats {
    last: Option<(String, Instant)>,
    left_out: u64,
}

impl Repeats {
    /// Whether to log `text` now; `Some(n)`: yes, and `n` identical ones were left out since
    /// the last time it was logged.
    pub fn admit(&mut self, text: &str, now: Instant) -> Option<u64> {
        match &self.last {
            Some((last, at)) if last == text && now.duration_since(*at) < REPEAT_EVERY => {
                self.left_out += 1;
                None
            }
            _ => {
                let left_out = std::mem::take(&mut self.left_out);
                self.last = Some((text.to_string(), now));
                Some(left_out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_error_is_logged_once_a_minute_and_a_new_one_at_once() {
        let start = Instant::now();
        let mut repeats = Repeats::default();
        assert_eq!(repeats.admit("all brokers down", start), Some(0));
        for i in 1..=50 {
            let at = start + Duration::from_millis(100 * i);
            assert_eq!(repeats.admit("all brokers down", at), None);
        }
        assert_eq!(
            repeats.admit("SASL failed", start + Duration::from_secs(6)),
            Some(50)
        );
        assert_eq!(
            repeats.admit("SASL failed", start + Duration::from_secs(7)),
            None
        );
        assert_eq!(
            repeats.admit("SASL failed", start + Duration::from_secs(67)),
            Some(1)
        );
    }
}
