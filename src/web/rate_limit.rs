//! Login rate limiting (pure; time passed in): failed logins are counted per client (IPv4
//! address or IPv6 /64, see [`client_prefix`]) over the last minute; at the limit, further
//! attempts are refused until the oldest failure is a minute old. A successful login clears
//! the client's count. The table holds at most [`MAX_CLIENTS`] clients: when full, clients
//! whose failures are all older than a minute go first, then the one quiet the longest.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use super::client_prefix::client_prefix;

/// Most clients whose failures are remembered at once.
pub const MAX_CLIENTS: usize = 4096;

/// Failed attempts per client.
pub struct LoginLimiter {
    per_minute: usize,
    max_clients: usize,
    failures: HashMap<IpAddr, VecDeque<DateTime<Utc>>>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter::bounded(per_minute, MAX_CLIENTS)
    }

    /// A limiter remembering at most `max_clients` clients.
    pub fn bounded(per_minute: u32, max_clients: usize) -> LoginLimiter {
        LoginLimiter {
            per_minute: per_minute.max(1) as usize,
            max_clients: max_clients.max(1),
            failures: HashMap::new(),
        }
    }

    /// Clients remembered now.
    pub fn clients(&self) -> usize {
        self.failures.len()
    }

    /// `None` when `addr` may try now, else how long it must wait.
    pub fn wait(&mut self, addr: IpAddr, now: DateTime<Utc>) -> Option<Duration> {
        let window = Duration::minutes(1);
        let addr = client_prefix(addr);
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
        let addr = client_prefix(addr);
        if !self.failures.contains_key(&addr) && self.failures.len() >= self.max_clients {
            self.make_room(now);
        }
        let recent = self.failures.entry(addr).or_default();
        recent.push_back(now);
        // Only the last `per_minute` failures decide the wait: older ones need not be kept.
        while recent.len() > self.per_minute {
            recent.pop_front();
        }
    }

    /// Clears `addr` after a successful login.
    pub fn succeeded(&mut self, addr: IpAddr) {
        self.failures.remove(&client_prefix(addr));
    }

    /// Frees one place at least: forgets clients without a failure in the last minute, and
    /// if every one has, the client whose last failure is the oldest.
    fn make_room(&mut self, now: DateTime<Utc>) {
        self.failures
            .retain(|_, v| v.back().is_some_and(|at| *at + Duration::minutes(1) > now));
        if self.failures.len() < self.max_clients {
            return;
        }
        let quietest = self
            .failures
            .iter()
            .min_by_key(|(_, v)| v.back().copied())
            .map(|(addr, _)| *addr);
        if let Some(addr) = quietest {
            self.failures.remove(&addr);
        }
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
    fn an_ipv6_client_is_limited_per_64_not_per_address() {
        let mut limiter = LoginLimiter::new(3);
        // Each attempt from a new address of the same /64 (as a privacy-address host could).
        for s in 0..3 {
            let ip: IpAddr = format!("2001:db8:5:6::{:x}", s + 1)
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(limiter.wait(ip, at(s)), None);
            limiter.failed(ip, at(s));
        }
        let fresh: IpAddr = "2001:db8:5:6:ffff::9"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limiter.wait(fresh, at(10)), Some(Duration::seconds(50)));
        let next_net: IpAddr = "2001:db8:5:7::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limiter.wait(next_net, at(10)), None);
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_clients_still_blocked() {
        let mut limiter = LoginLimiter::bounded(2, 100);
        let blocked: IpAddr = [10, 9, 9, 9].into();
        limiter.failed(blocked, at(0));
        limiter.failed(blocked, at(0));
        // A flood of one failure each from many addresses, all within the minute.
        for n in 0..10_000u32 {
            limiter.failed(IpAddr::from(n.to_be_bytes()), at(30));
        }
        assert!(limiter.clients() <= 100, "{}", limiter.clients());
        // Evicted first: the quietest; the flood cannot clear a recently blocked client
        // before its own entries are older than every other's.
        let mut limiter = LoginLimiter::bounded(2, 100);
        for n in 0..99u32 {
            limiter.failed(IpAddr::from(n.to_be_bytes()), at(0));
        }
        limiter.failed(blocked, at(5));
        limiter.failed(blocked, at(5));
        limiter.failed([10, 1, 1, 1].into(), at(6));
        assert!(limiter.wait(blocked, at(10)).is_some(), "still blocked");
        assert_eq!(limiter.clients(), 100);
        // Past the minute, everyone quiet is forgotten when room is needed.
        limiter.failed([10, 1, 1, 2].into(), at(70));
        assert_eq!(limiter.clients(), 1, "only the new one stays");
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
