//! The outbox: every outbound message is written to the store's `outbox` tree before it is
//! sent, retried with backoff until delivered or expired, and kept with its result — the
//! web console shows these entries on the call's timeline.
//!
//! * Entries: key = zero-padded id from `store.next_id()`, value = [`OutboxEntry`] JSON with
//!   `call_key`, `channel`, `recipient` (display form, never a secret), `kind`, `status`
//!   (`pending` | `delivered` | `expired`), `attempts`, `created_at`, `delivered_at`,
//!   `last_error` (words, no secret), and what is needed to send it again after a restart.
//! * Enqueueing is idempotent per call + channel + recipient + kind: the set of those keys is
//!   rebuilt from the tree when the outbox is opened, so neither a repeated transition nor a
//!   restart sends a message twice.
//! * The retry schedule ([`Policy::next_attempt`]) and expiry are pure functions of the
//!   attempts and the time passed in.
//!
//! One delivery task owns the outbox; the lock only keeps the key set and the tree in step.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::channel::{Channel, DeliveryError};
use super::message_kind::MessageKind;
use super::plan::{Details, Message};
use crate::store::{Store, StoreError};

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Delivered,
    Expired,
}

/// One message in the outbox (see the module docs for the shared fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub call_key: Option<String>,
    pub channel: Channel,
    pub recipient: String,
    pub kind: MessageKind,
    pub status: Status,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Not before this time (backoff, `Retry-After`).
    pub next_attempt_at: DateTime<Utc>,
    /// Given up after this time.
    pub expires_at: DateTime<Utc>,
    pub subject: String,
    pub body: String,
    pub details: Details,
}

impl OutboxEntry {
    /// The idempotency key: one message per call, channel, recipient and kind.
    pub fn once_key(&self) -> String {
        once_key(
            self.call_key.as_deref(),
            self.channel,
            &self.recipient,
            self.kind,
        )
    }

    /// Whether it should be tried at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Pending && self.next_attempt_at <= now
    }

    /// The entry after a successful attempt at `now`.
    pub fn delivered(mut self, now: DateTime<Utc>) -> OutboxEntry {
        self.attempts += 1;
        self.status = Status::Delivered;
        self.delivered_at = Some(now);
        self.last_attempt_at = Some(now);
        self
    }

    /// The entry after a failed attempt at `now`: next try per `policy` (not before the
    /// peer's `Retry-After`, at the latest at expiry), or expired when its time is up.
    pub fn failed(
        mut self,
        error: &DeliveryError,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> OutboxEntry {
        self.attempts += 1;
        self.last_attempt_at = Some(now);
        self.last_error = Some(error.to_string());
        if now >= self.expires_at {
            self.status = Status::Expired;
            return self;
        }
        let retry_after = match error {
            DeliveryError::Retryable {
                retry_after_secs, ..
            } => *retry_after_secs,
            DeliveryError::Permanent { .. } => None,
        };
        let next = if error.is_permanent() {
            // Refused as it is: only a configuration change (and restart) can help.
            now + policy.max
        } else {
            policy.next_attempt(self.attempts, now, retry_after)
        };
        self.next_attempt_at = next.min(self.expires_at);
        self
    }
}

fn once_key(
    call_key: Option<&str>,
    channel: Channel,
    recipient: &str,
    kind: MessageKind,
) -> String {
    format!(
        "{}|{}|{}|{}",
        call_key.unwrap_or("-"),
        channel.name(),
        recipient,
        kind.name()
    )
}

/// Retry and expiry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub first: Duration,
    pub max: Duration,
    pub expire: Duration,
}

impl Policy {
    /// When to try again after `attempts` failed attempts: `first`, doubling, capped at
    /// `max`; never earlier than the peer's `Retry-After` (itself capped at `max`).
    pub fn next_attempt(
        &self,
        attempts: u32,
        now: DateTime<Utc>,
        retry_after_secs: Option<u64>,
    ) -> DateTime<Utc> {
        let doublings = attempts.saturating_sub(1).min(30);
        let backoff = self
            .first
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max);
        let asked = retry_after_secs
            .and_then(|s| i64::try_from(s).ok())
            .map(Duration::seconds)
            .unwrap_or_else(Duration::zero)
            .min(self.max);
        now + backoff.max(asked)
    }
}

/// The durable queue over the `outbox` tree.
pub struct Outbox {
    store: Store,
    once: Mutex<HashSet<String>>,
}

impl Outbox {
    /// Opens the outbox, learning which messages exist already. Entries that do not decode
    /// are logged and left alone.
    pub fn open(store: Store) -> Outbox {
        let mut once = HashSet::new();
        for (key, value) in store.outbox.iter() {
            match value.and_then(|v| decode(&key, v)) {
                Ok(entry) => {
                    once.insert(entry.once_key());
                }
                Err(e) => tracing::error!(error = %e, "unreadable outbox entry"),
            }
        }
        Outbox {
            store,
            once: Mutex::new(once),
        }
    }

    /// Writes `message` as a pending entry, unless the same call, channel, recipient and kind
    /// was queued before. Returns the new entry's id. The caller flushes before sending.
    pub fn enqueue(
        &self,
        message: Message,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Option<String>, StoreError> {
        let key = once_key(
            message.call_key.as_deref(),
            message.channel,
            &message.recipient,
            message.kind,
        );
        let mut once = self.once.lock().unwrap_or_else(|p| p.into_inner());
        if once.contains(&key) {
            return Ok(None);
        }
        let entry = OutboxEntry {
            call_key: message.call_key,
            channel: message.channel,
            recipient: message.recipient,
            kind: message.kind,
            status: Status::Pending,
            attempts: 0,
            created_at: now,
            delivered_at: None,
            last_error: None,
            last_attempt_at: None,
            next_attempt_at: now,
            expires_at: now + policy.expire,
            subject: message.subject,
            body: message.body,
            details: message.details,
        };
        let id = format!("{:020}", self.store.next_id()?);
        self.put(&id, &entry)?;
        once.insert(key);
        Ok(Some(id))
    }

    /// Pending entries in id order.
    pub fn pending(&self) -> Vec<(String, OutboxEntry)> {
        self.store
            .outbox
            .iter()
            .filter_map(|(key, value)| match value.and_then(|v| decode(&key, v)) {
                Ok(entry) if entry.status == Status::Pending => Some((key, entry)),
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox entry");
                    None
                }
            })
            .collect()
    }

    /// Every entry in id order (tests, the console).
    pub fn all(&self) -> Vec<(String, OutboxEntry)> {
        self.store
            .outbox
            .iter()
            .filter_map(|(key, value)| {
                let entry = value.and_then(|v| decode(&key, v)).ok()?;
                Some((key, entry))
            })
            .collect()
    }

    /// Replaces entry `id` (after an attempt).
    pub fn put(&self, id: &str, entry: &OutboxEntry) -> Result<(), StoreError> {
        let value = serde_json::to_value(entry).map_err(|e| StoreError::Corrupt {
            tree: "outbox".into(),
            key: id.into(),
            reason: e.to_string(),
        })?;
        self.store.outbox.insert(id, &value)
    }

    /// Makes everything written so far durable (on the blocking pool).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(result) => result,
            Err(_) => self.store.flush(),
        }
    }
}

fn decode(key: &str, value: serde_json::Value) -> Result<OutboxEntry, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        tree: "outbox".into(),
        key: key.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            first: Duration::seconds(5),
            max: Duration::seconds(300),
            expire: Duration::hours(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let secs =
            |attempts, after| (policy().next_attempt(attempts, now, after) - now).num_seconds();
        assert_eq!(secs(1, None), 5);
        assert_eq!(secs(2, None), 10);
        assert_eq!(secs(3, None), 20);
        assert_eq!(secs(7, None), 300);
        assert_eq!(secs(1000, None), 300);
        assert_eq!(secs(1, Some(60)), 60);
        assert_eq!(secs(1, Some(100_000)), 300);
        assert_eq!(secs(4, Some(1)), 40);
    }

    fn entry(now: DateTime<Utc>) -> OutboxEntry {
        OutboxEntry {
            call_key: Some("c/m".into()),
            channel: Channel::Sms,
            recipient: "+14255550100".into(),
            kind: MessageKind::Alarm,
            status: Status::Pending,
            attempts: 0,
            created_at: now,
            delivered_at: None,
            last_error: None,
            last_attempt_at: None,
            next_attempt_at: now,
            expires_at: now + policy().expire,
            subject: String::new(),
            body: String::new(),
            details: Details::default(),
        }
    }

    #[test]
    fn failures_retry_until_expiry_then_expire_with_the_reason() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let down = DeliveryError::retryable("Twilio: cannot connect");
        let e = entry(t0).failed(&down, t0, &policy());
        assert_eq!((e.status, e.attempts), (Status::Pending, 1));
        assert_eq!(e.next_attempt_at, t0 + Duration::seconds(5));
        // Near the end, the next attempt is at the expiry, not after it.
        let late = t0 + Duration::minutes(59) + Duration::seconds(55);
        let e = e.failed(&down, late, &policy());
        assert_eq!(e.next_attempt_at, t0 + Duration::hours(1));
        assert!(!e.is_due(late));
        assert!(e.is_due(t0 + Duration::hours(1)));
        // The attempt at the expiry fails: given up, with the words.
        let e = e.failed(&down, t0 + Duration::hours(1), &policy());
        assert_eq!(e.status, Status::Expired);
        assert_eq!(e.last_error.as_deref(), Some("Twilio: cannot connect"));
        assert!(!e.is_due(t0 + Duration::hours(2)));
    }

    #[test]
    fn permanent_refusal_waits_the_longest_and_success_records_the_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let refused = DeliveryError::permanent("Twilio answered 401");
        let e = entry(t0).failed(&refused, t0, &policy());
        assert_eq!(e.next_attempt_at, t0 + Duration::seconds(300));
        let t1 = t0 + Duration::seconds(300);
        let e = e.delivered(t1);
        assert_eq!(
            (e.status, e.attempts, e.delivered_at),
            (Status::Delivered, 2, Some(t1))
        );
        assert!(!e.is_due(t1));
    }
}
