//! Login rate limiting (pure; time passed in): failed logins are counted per client address
//! over the last minute; at the limit, further attempts are refused until the oldest failure
//! is a minute old. A successful login clears the address's count.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

/// Failed attempts per address.
pub struct LoginLimiter {
    per_minute: usize,
    failures: HashMap<IpAddr, VecDeque<DateTime<Utc>>>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter {
            per_minute: per_minute.max(1) as usize,
            failures: HashMap::new(),
        }
    }

    /// `None` when `addr` may try now, else how long it must wait.
    pub fn wait(&mut self, addr: IpAddr, now: DateTime<Utc>) -> Option<Duration> {
        let window = Duration::minutes(1);
        let recent = self.failures.get_mut(&addr)?;
        while recent.front().is_some_and(|at| *at + window <= now) {
            recent.pop_front();
        }
        if recent.is_empty() {
            self.failures.remove(&addr);
            return None;
        }
        (recent.len() >= self.per_minute)
            .then(|| recent.front().map(|oldest| *oldest + window - now))
            .flatten()
    }

    /// Counts a failed attempt.
    pub fn failed(&mut self, addr: IpAddr, now: DateTime<Utc>) {
        // Bound memory under a flood of addresses: forget the quiet ones first.
        if self.failures.len() > 10_000 {
            self.failures
                .retain(|_, v| v.back().is_some_and(|at| *at + Duration::minutes(1) > now));
        }
        self.failures.entry(addr).or_default().push_back(now);
    }

    /// Clears `addr` after a successful login.
    pub fn succeeded(&mut self, addr: IpAddr) {
        self.failures.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
    }

    #[test]
    fn the_limit_blocks_for_the_rest_of_the_minute_then_lifts() {
        let mut limiter = LoginLimiter::new(3);
        let ip: IpAddr = [10, 0, 0, 7].into();
        for s in 0..3 {
            assert_eq!(limiter.wait(ip, at(s)), None);
            limiter.failed(ip, at(s));
        }
        assert_eq!(limiter.wait(ip, at(10)), Some(Duration::seconds(50)));
        let other: IpAddr = [10, 0, 0, 8].into();
        assert_eq!(limiter.wait(other, at(10)), None, "per address");
        assert_eq!(limiter.wait(ip, at(60)), None, "oldest failure expired");
    }

    #[test]
    fn success_clears_the_count() {
        let mut limiter = LoginLimiter::new(1);
        let ip: IpAddr = [10, 0, 0, 7].into();
        limiter.failed(ip, at(0));
        assert!(limiter.wait(ip, at(1)).is_some());
        limiter.succeeded(ip);
        assert_eq!(limiter.wait(ip, at(1)), None);
    }
}
