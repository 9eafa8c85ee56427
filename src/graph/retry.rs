//! When to retry a Graph or identity-platform call, and how long to wait (pure).
//!
//! * 429 and 503 with `Retry-After`: wait exactly that long (graph-teams.md D.3), capped.
//! * 429 without it, other 5xx, timeouts and network errors: exponential backoff with full
//!   jitter (the jitter fraction is passed in, so the schedule is testable).
//! * Everything else (4xx): no retry — the caller decides (401 → refresh the token once).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits of the retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff step.
    pub base: Duration,
    /// Longest backoff step.
    pub cap: Duration,
    /// Longest `Retry-After` honoured; a longer one gives up (the caller reports trouble).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// What one attempt produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An HTTP answer, with its `Retry-After` when it had one.
    Status(u16, Option<Duration>),
    /// Connection refused, reset, DNS, timeout.
    Network,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Done: return this answer to the caller.
    Accept,
    /// Wait, then try again.
    RetryAfter(Duration),
    /// Retryable, but out of attempts (or the server asked for too long a wait).
    GiveUp,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based). `jitter` in [0, 1].
    pub fn decide(&self, attempt: u32, outcome: Attempt, jitter: f64) -> Decision {
        let retryable = match outcome {
            Attempt::Network => true,
            Attempt::Status(status, _) => status == 429 || (500..600).contains(&status),
        };
        if !retryable {
            return Decision::Accept;
        }
        if attempt >= self.max_attempts {
            return Decision::GiveUp;
        }
        if let Attempt::Status(_, Some(wait)) = outcome {
            return if wait <= self.max_retry_after {
                Decision::RetryAfter(wait)
            } else {
                Decision::GiveUp
            };
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let step = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        // "Full jitter", but never less than half a step: spreads retries without hammering.
        Decision::RetryAfter(step.mul_f64(0.5 + jitter / 2.0))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let d = policy().decide(1, Attempt::Status(429, Some(Duration::from_secs(7))), 0.9);
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(7)));
        let d = policy().decide(1, Attempt::Status(503, Some(Duration::from_secs(2))), 0.0);
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(2)));
    }

    #[test]
    fn too_long_a_retry_after_gives_up() {
        let d = policy().decide(
            1,
            Attempt::Status(429, Some(Duration::from_secs(3600))),
            0.0,
        );
        assert_eq!(d, Decision::GiveUp);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = policy();
        let wait = |attempt, jitter| match p.decide(attempt, Attempt::Status(502, None), jitter) {
            Decision::RetryAfter(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(1, 1.0), Duration::from_millis(500));
        assert_eq!(wait(1, 0.0), Duration::from_millis(250));
        assert_eq!(wait(2, 1.0), Duration::from_millis(1000));
        assert_eq!(wait(3, 1.0), Duration::from_millis(2000));
        let big = RetryPolicy {
            max_attempts: 40,
            ..p
        };
        assert_eq!(
            big.decide(30, Attempt::Network, 1.0),
            Decision::RetryAfter(Duration::from_secs(30))
        );
    }

    #[test]
    fn client_errors_are_not_retried_and_attempts_run_out() {
        for status in [200, 201, 204, 400, 401, 403, 404, 409] {
            assert_eq!(
                policy().decide(1, Attempt::Status(status, None), 0.5),
                Decision::Accept
            );
        }
        assert_eq!(policy().decide(6, Attempt::Network, 0.5), Decision::GiveUp);
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
