//! The durable ingest stage: every Event Hub record becomes zero or more durable,
//! de-duplicated notifications handed to recognition exactly once.
//!
//! For each record: decode ([`crate::graph::notification`]) → ignore validation messages →
//! check `clientState` (a notification of a subscription that is not the fleet's is counted
//! as foreign and let be) → decrypt rich content → derive the de-duplication key ([`dedupe`]) →
//! atomically mark it seen and put it in the store's inbox → hand it on through a bounded
//! channel. Hand-off does not wait for the disk; the caller flushes the store once per batch
//! and only then commits the Kafka offsets ([`crate::eventhub::consumer`]). Anything refused is
//! kept in the `rejected` tree with the reason and counted, so it never blocks its partition.
//!
//! The inbox is what makes the offset commit safe: recognition may need a Graph fetch that
//! takes seconds, but the notification is already on disk, and [`stage::resume`] hands pending
//! inbox entries on again after a restart. Its settings are the `[ingest]` section ([`config`]).

pub mod config;
pub mod dedupe;
pub mod stage;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::graph::client_state::{ClientStates, Verdict};
use crate::graph::crypto::{DecryptError, KeyRing};
use crate::graph::notification::{self, ChangeType, Item, LifecycleEvent};
use crate::health::IngestCounters;
use crate::store::{Store, StoreError, Typed};

/// A notification accepted from the hub, as recognition receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    /// A chat message was created, updated or deleted.
    Message {
        subscription_id: String,
        chat_id: String,
        message_id: String,
        change_type: ChangeType,
        /// The decrypted `chatMessage` of a rich notification; `None` means fetch it.
        message: Option<serde_json::Value>,
    },
    /// A subscription needs attention (for the subscription keeper).
    Lifecycle {
        subscription_id: String,
        event: LifecycleEvent,
    },
}

/// What the inbox holds, and what is handed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The de-duplication key; also the inbox key.
    pub key: String,
    pub received_at: DateTime<Utc>,
    /// `topic/partition@offset` or `replay:file:line`.
    pub position: String,
    pub notification: Notification,
    /// The notification as it arrived (`clientState` redacted, ciphertext left out), for the
    /// call's page. Absent in entries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

/// The durable inbox: notifications accepted from the hub and not yet fully handled.
pub fn inbox(store: &Store) -> Typed<InboxEntry> {
    store.inbox.read_as()
}

/// One record as taken from the hub (or a replay file).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub body: &'a [u8],
    pub position: &'a str,
    pub received_at: DateTime<Utc>,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    pub handed_off: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub ignored: usize,
}

/// The stage. One per consumer thread (or replay).
pub struct Ingest {
    store: Store,
    keys: KeyRing,
    client_states: ClientStates,
    handoff: mpsc::Sender<InboxEntry>,
    counters: Arc<IngestCounters>,
}

impl Ingest {
    pub fn new(
        store: Store,
        keys: KeyRing,
        client_states: ClientStates,
        handoff: mpsc::Sender<InboxEntry>,
        counters: Arc<IngestCounters>,
    ) -> Ingest {
        Ingest {
            store,
            keys,
            client_states,
            handoff,
            counters,
        }
    }

    /// The store this stage writes to (the caller flushes it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes one record. Errors only when the store cannot be written: then nothing may be
    /// committed, and the same record must be offered again.
    ///
    /// Blocks when recognition is behind and the hand-off channel is full (back-pressure on the
    /// hub, never a dropped notification). Must therefore not run on an async executor thread.
    pub fn process(&self, record: Record<'_>) -> Result<RecordOutcome, StoreError> {
        IngestCounters::bump(&self.counters.records);
        self.counters
            .last_record_ms
            .store(record.received_at.timestamp_millis(), Ordering::Relaxed);
        let mut outcome = RecordOutcome::default();
        let items = match notification::decode(record.body) {
            Ok(items) => items,
            Err(e) => {
                IngestCounters::bump(&self.counters.rejected_records);
                self.store.reject(
                    record.received_at,
                    Some(record.position),
                    &e.to_string(),
                    record.body,
                )?;
                outcome.rejected += 1;
                return Ok(outcome);
            }
        };
        let many = items.len() > 1;
        for (index, item) in items.into_iter().enumerate() {
            let position = if many {
                format!("{}#{index}", record.position)
            } else {
                record.position.to_string()
            };
            match self.admit(item, index, &position, record)? {
                Admitted::HandedOff => outcome.handed_off += 1,
                Admitted::Duplicate => outcome.duplicates += 1,
                Admitted::Rejected => outcome.rejected += 1,
                Admitted::Ignored => outcome.ignored += 1,
            }
        }
        Ok(outcome)
    }

    fn admit(
        &self,
        item: Result<Item, notification::ItemError>,
        index: usize,
        position: &str,
        record: Record<'_>,
    ) -> Result<Admitted, StoreError> {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                return self.refuse(
                    &self.counters.rejected_items,
                    &e.to_string(),
                    position,
                    record,
                )
            }
        };
        let (subscription_id, presented) = match &item {
            Item::Validation => {
                IngestCounters::bump(&self.counters.validations);
                return Ok(Admitted::Ignored);
            }
            Item::Lifecycle(l) => (l.subscription_id.as_str(), l.client_state.as_deref()),
            Item::Change(c) => (c.subscription_id.as_str(), c.client_state.as_deref()),
        };
        match self.client_states.verify(subscription_id, presented) {
            Verdict::Accepted => {
                // Only a fleet subscription echoes the fleet's state: one made by another box
                // is learnt here if the keeper has not listed it yet.
                self.client_states.adopt(&self.store, subscription_id)?;
            }
            Verdict::Foreign => {
                // Another application's or another Beacon's subscription on a shared hub.
                IngestCounters::bump(&self.counters.foreign);
                tracing::debug!(
                    position,
                    "notification of a subscription that is not this fleet's"
                );
                return Ok(Admitted::Ignored);
            }
            Verdict::Missing => {
                return self.refuse(
                    &self.counters.client_state_rejects,
                    "clientState missing on a subscription of this fleet",
                    position,
                    record,
                )
            }
            Verdict::Mismatch => {
                return self.refuse(
                    &self.counters.client_state_rejects,
                    "clientState is not this fleet's, on a subscription of this fleet",
                    position,
                    record,
                )
            }
        }
        let (key, notification) = match item {
            Item::Validation => return Ok(Admitted::Ignored),
            Item::Lifecycle(l) => (
                dedupe::lifecycle_key(&l.subscription_id, l.event, position),
                Notification::Lifecycle {
                    subscription_id: l.subscription_id,
                    event: l.event,
                },
            ),
            Item::Change(c) => {
                let message = match &c.encrypted {
                    None => None,
                    Some(content) => match self.keys.decrypt(content) {
                        Ok(plain) => match serde_json::from_slice::<serde_json::Value>(&plain) {
                            Ok(message) => Some(message),
                            Err(_) => {
                                return self.refuse(
                                    &self.counters.rejected_items,
                                    "decrypted content is not JSON",
                                    position,
                                    record,
                                )
                            }
                        },
                        // Not for a certificate we hold (lost key, rotation race): the message
                        // can still be fetched from Graph, the source of truth.
                        Err(DecryptError::UnknownCertificate(_)) => {
                            IngestCounters::bump(&self.counters.unknown_certificate);
                            None
                        }
                        Err(e @ DecryptError::SignatureMismatch) => {
                            return self.refuse(
                                &self.counters.signature_rejects,
                                &e.to_string(),
                                position,
                                record,
                            )
                        }
                        Err(e) => {
                            return self.refuse(
                                &self.counters.rejected_items,
                                &e.to_string(),
                                position,
                                record,
                            )
                        }
                    },
                };
                let last_modified = message
                    .as_ref()
                    .and_then(|m| m.get("lastModifiedDateTime"))
                    .and_then(|v| v.as_str());
                (
                    dedupe::message_key(
                        &c.chat_id,
                        &c.message_id,
                        c.change_type,
                        last_modified,
                        position,
                    ),
                    Notification::Message {
                        subscription_id: c.subscription_id,
                        chat_id: c.chat_id,
                        message_id: c.message_id,
                        change_type: c.change_type,
                        message,
                    },
                )
            }
        };
        // Kept for messages only (lifecycle events are not shown per call); after the
        // clientState check, so what is kept came from our own subscription.
        let raw = match notification {
            Notification::Message { .. } => {
                crate::graph::notification::kept_item(record.body, index)
            }
            Notification::Lifecycle { .. } => None,
        };
        let entry = InboxEntry {
            key,
            received_at: record.received_at,
            position: position.to_string(),
            notification,
            raw,
        };
        if !self.store.admit(&entry.key, record.received_at, &entry)? {
            IngestCounters::bump(&self.counters.duplicates);
            return Ok(Admitted::Duplicate);
        }
        IngestCounters::bump(&self.counters.handed_off);
        // A closed channel means shutdown: the entry is in the inbox and resumes on restart.
        let _ = self.handoff.blocking_send(entry);
        Ok(Admitted::HandedOff)
    }

    fn refuse(
        &self,
        counter: &std::sync::atomic::AtomicU64,
        reason: &str,
        position: &str,
        record: Record<'_>,
    ) -> Result<Admitted, StoreError> {
        IngestCounters::bump(counter);
        tracing::warn!(position, reason, "notification refused");
        let kept = notification::redact_client_state(record.body);
        self.store
            .reject(record.received_at, Some(position), reason, &kept)?;
        Ok(Admitted::Rejected)
    }
}

enum Admitted {
    HandedOff,
    Duplicate,
    Rejected,
    Ignored,
}
