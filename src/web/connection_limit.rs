//! How many console connections may be open at once: in all, and per client (an IPv4
//! address or an IPv6 /64, see [`client_prefix`]). A connection holds a [`Slot`] from accept
//! until it ends; one over either cap is refused at once, so idle or half-open connections
//! from one client cannot take the slots another client (a guard) needs, and a flood from
//! many cannot exhaust the file descriptors the alarm's own links need.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::client_prefix::client_prefix;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the console has {0} connections open, its limit")]
    Full(usize),
    #[error("this client has {0} connections open, its limit")]
    ClientFull(usize),
}

/// The caps and the connections open now.
#[derive(Clone)]
pub struct ConnectionLimit {
    total_cap: usize,
    per_client_cap: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One open connection's place; given back when dropped.
pub struct Slot {
    client: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl ConnectionLimit {
    pub fn new(total_cap: usize, per_client_cap: usize) -> ConnectionLimit {
        ConnectionLimit {
            total_cap: total_cap.max(1),
            per_client_cap: per_client_cap.max(1),
            open: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let client = client_prefix(ip);
        let mut open = lock(&self.open);
        if open.total >= self.total_cap {
            return Err(Refusal::Full(open.total));
        }
        let of_client = open.per_client.entry(client).or_insert(0);
        if *of_client >= self.per_client_cap {
            return Err(Refusal::ClientFull(*of_client));
        }
        *of_client += 1;
        open.total += 1;
        Ok(Slot {
            client,
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        lock(&self.open).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Only clients with open connections are kept: the table is bounded by the cap.
                open.per_client.remove(&self.client);
            }
        }
    }
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    // Counts are updated in one step under the lock; a panic elsewhere cannot tear them.
    open.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn one_client_cannot_take_the_slots_of_another() {
        let limit = ConnectionLimit::new(10, 2);
        let held: Vec<Slot> = (0..2)
            .filter_map(|_| limit.admit(ip("10.0.0.7")).ok())
            .collect();
        assert_eq!(held.len(), 2);
        assert_eq!(
            limit.admit(ip("10.0.0.7")).err(),
            Some(Refusal::ClientFull(2))
        );
        assert!(
            limit.admit(ip("10.0.0.8")).is_ok(),
            "another client still gets in"
        );
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let limit = ConnectionLimit::new(10, 2);
        let _a = limit.admit(ip("2001:db8::1"));
        let _b = limit.admit(ip("2001:db8::2"));
        assert_eq!(
            limit.admit(ip("2001:db8::3")).err(),
            Some(Refusal::ClientFull(2))
        );
        assert!(limit.admit(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn the_total_is_capped_and_ended_connections_give_their_slot_back() {
        let limit = ConnectionLimit::new(3, 2);
        let first = limit.admit(ip("10.0.0.1"));
        let _second = limit.admit(ip("10.0.0.2"));
        let _third = limit.admit(ip("10.0.0.3"));
        assert_eq!(limit.admit(ip("10.0.0.4")).err(), Some(Refusal::Full(3)));
        drop(first);
        assert_eq!(limit.open(), 2);
        assert!(limit.admit(ip("10.0.0.4")).is_ok());
    }
}
