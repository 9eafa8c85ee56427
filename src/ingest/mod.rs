//! The durable ingest stage: every Event Hub record becomes zero or more durable,
//! de-duplicated notifications handed to recognition exactly once.
//!
//! For each record: decode ([`crate::graph::notification`]) → ignore validation messages →
//! check `clientState` (a notification of a subscription that is not the fleet's is counted
//! as foreign and let be; one this box cannot tell, having lost the fleet's secrets with a
//! damaged store, is kept whole in the `unverified` tree and read again by
//! [`Ingest::reread_unverified`] when the consumer starts and every 30 s after) → decrypt rich content (a Graph emergency call event is always rich,
//! and is admitted only when it reads as one) → derive the de-duplication key ([`dedupe`]) →
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
    /// A Graph emergency call event, decrypted (the `emergencyCallEvent` as Graph sent it;
    /// [`crate::graph::emergency_events::decode`] reads it).
    CallEvent {
        subscription_id: String,
        event: serde_json::Value,
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

/// Told of every duplicate notification of a message's creation (the assembly uses it to
/// note on a call that push reported it after the poll had found it).
pub type DuplicateHook = Arc<dyn Fn(&InboxEntry) -> Result<(), StoreError> + Send + Sync>;

/// The stage. One per consumer thread (or replay).
pub struct Ingest {
    store: Store,
    keys: KeyRing,
    client_states: ClientStates,
    handoff: mpsc::Sender<InboxEntry>,
    counters: Arc<IngestCounters>,
    on_duplicate: Option<DuplicateHook>,
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
            on_duplicate: None,
        }
    }

    /// Calls `hook` with every duplicate notification of a message's creation.
    pub fn on_duplicate(mut self, hook: DuplicateHook) -> Ingest {
        self.on_duplicate = Some(hook);
        self
    }

    /// Makes the calling thread ready to decrypt: every key's self-test, run here
    /// ([`KeyRing::self_test`]), so that the first notification on this thread does not make
    /// what OpenSSL keeps per thread on its way to the strobe. The consumer calls it on its
    /// own thread before its first poll. A key that fails is logged; its notifications are
    /// refused or fetched as before.
    pub fn prepare_thread(&self) {
        for failure in self.keys.self_test() {
            tracing::error!(error = %failure, "an encryption key fails its self-test");
        }
    }

    /// The store this stage writes to (the caller flushes it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads the records kept unverified again (see the module doc): each is taken out and
    /// processed as it first arrived, so one that is now the fleet's is handed on (a
    /// duplicate if the chat poll found its message meanwhile), a stranger's is let be, and
    /// one that still cannot be told is kept again. Returns how many were read. Blocks like
    /// [`Ingest::process`]; the caller flushes.
    pub fn reread_unverified(&self) -> Result<usize, StoreError> {
        if self.store.unverified.is_empty() || self.client_states.unverifiable() {
            return Ok(0);
        }
        let mut read = 0;
        // Collected first: a record kept again must not be met again in this pass.
        let all: Vec<_> = self.store.unverified.iter().collect();
        for (key, kept) in all {
            let kept = match kept {
                Ok(kept) => kept,
                Err(e) => {
                    tracing::error!(error = %e, key, "an unverified record is unreadable; left where it is");
                    continue;
                }
            };
            self.process(Record {
                body: kept.body.as_bytes(),
                position: &kept.position,
                received_at: kept.at,
            })?;
            self.store.unverified.remove(&key)?;
            read += 1;
        }
        if read > 0 {
            tracing::info!(
                read,
                "records kept unverified were read again with the fleet's secrets"
            );
        }
        Ok(read)
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
        // Parsed once: decoding reads it, and so does what is kept of each item.
        let decoded = notification::parse(record.body)
            .and_then(|body| notification::decode_parsed(&body).map(|items| (body, items)));
        let (body, items) = match decoded {
            Ok(decoded) => decoded,
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
        let mut unverifiable = false;
        for (index, item) in items.into_iter().enumerate() {
            let position = if many {
                format!("{}#{index}", record.position)
            } else {
                record.position.to_string()
            };
            match self.admit(item, index, &position, record, &body)? {
                Admitted::HandedOff => outcome.handed_off += 1,
                Admitted::Duplicate => outcome.duplicates += 1,
                Admitted::Rejected => outcome.rejected += 1,
                Admitted::Ignored => outcome.ignored += 1,
                Admitted::Unverifiable => {
                    outcome.rejected += 1;
                    unverifiable = true;
                }
            }
        }
        if unverifiable {
            // The whole record once, however many of its items could not be told: read
            // again, the ones admitted meanwhile are duplicates.
            self.store
                .keep_unverified(record.received_at, record.position, record.body)?;
        }
        Ok(outcome)
    }

    fn admit(
        &self,
        item: Result<Item, notification::ItemError>,
        index: usize,
        position: &str,
        record: Record<'_>,
        body: &serde_json::Value,
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
            Item::CallEvent(e) => (e.subscription_id.as_str(), e.client_state.as_deref()),
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
            Verdict::Unverifiable => {
                IngestCounters::bump(&self.counters.unverifiable);
                tracing::warn!(
                    position,
                    "notification of an unknown subscription kept unverified: this box lost \
                     its fleet's secrets with a damaged store"
                );
                return Ok(Admitted::Unverifiable);
            }
            Verdict::Missing => {
                return self.refuse_as_forged(
                    &self.counters.client_state_rejects,
                    "clientState missing on a subscription of this fleet",
                    position,
                    record,
                )
            }
            Verdict::Mismatch => {
                return self.refuse_as_forged(
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
            Item::CallEvent(e) => {
                let event = match self.decrypt(&e.encrypted, position, record)? {
                    Decrypted::Json(event) => event,
                    // There is no GET for a call event: what cannot be read is kept refused
                    // (the chat path still reports the call).
                    Decrypted::UnknownCertificate(id) => {
                        return self.refuse(
                            &self.counters.rejected_items,
                            &format!("emergency call event encrypted for certificate {id}, which this appliance does not hold"),
                            position,
                            record,
                        )
                    }
                    Decrypted::Refused(refused) => return Ok(refused),
                };
                let decoded = match crate::graph::emergency_events::decode(&event) {
                    Ok(decoded) => decoded,
                    Err(error) => {
                        return self.refuse(
                            &self.counters.rejected_items,
                            &error.to_string(),
                            position,
                            record,
                        )
                    }
                };
                (
                    dedupe::call_event_key(
                        &decoded.id,
                        &format!("{:?}", decoded.event_type),
                        &decoded.at.to_rfc3339(),
                    ),
                    Notification::CallEvent {
                        subscription_id: e.subscription_id,
                        event,
                    },
                )
            }
            Item::Change(c) => {
                let message = match &c.encrypted {
                    None => None,
                    Some(content) => match self.decrypt(content, position, record)? {
                        Decrypted::Json(message) => Some(message),
                        // Not for a certificate we hold (lost key, rotation race): the message
                        // can still be fetched from Graph, the source of truth.
                        Decrypted::UnknownCertificate(_) => None,
                        Decrypted::Refused(refused) => return Ok(refused),
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
            Notification::Message { .. } | Notification::CallEvent { .. } => {
                notification::kept_item(body, index)
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
            self.note_late_push(&entry)?;
            return Ok(Admitted::Duplicate);
        }
        IngestCounters::bump(&self.counters.handed_off);
        // A closed channel means shutdown: the entry is in the inbox and resumes on restart.
        let _ = self.handoff.blocking_send(entry);
        Ok(Admitted::HandedOff)
    }

    /// Decrypts rich content into JSON; refusals are kept and counted here.
    fn decrypt(
        &self,
        content: &notification::EncryptedContent,
        position: &str,
        record: Record<'_>,
    ) -> Result<Decrypted, StoreError> {
        let refused = match self.keys.decrypt(content) {
            Ok(plain) => match serde_json::from_slice::<serde_json::Value>(&plain) {
                Ok(value) => return Ok(Decrypted::Json(value)),
                Err(_) => self.refuse(
                    &self.counters.rejected_items,
                    "decrypted content is not JSON",
                    position,
                    record,
                )?,
            },
            Err(DecryptError::UnknownCertificate(id)) => {
                IngestCounters::bump(&self.counters.unknown_certificate);
                return Ok(Decrypted::UnknownCertificate(id));
            }
            Err(e @ DecryptError::SignatureMismatch) => self.refuse_as_forged(
                &self.counters.signature_rejects,
                &e.to_string(),
                position,
                record,
            )?,
            Err(e) => self.refuse(
                &self.counters.rejected_items,
                &e.to_string(),
                position,
                record,
            )?,
        };
        Ok(Decrypted::Refused(refused))
    }

    /// A notification of a message seen before (found by the poll first, or redelivered):
    /// the hook is told, so a call can note when push reported it.
    fn note_late_push(&self, entry: &InboxEntry) -> Result<(), StoreError> {
        let created = matches!(
            entry.notification,
            Notification::Message {
                change_type: ChangeType::Created,
                ..
            }
        );
        match &self.on_duplicate {
            Some(hook) if created => hook(entry),
            _ => Ok(()),
        }
    }

    /// Refuses a notification that may be forged, remembering when (for the trouble's words).
    fn refuse_as_forged(
        &self,
        counter: &std::sync::atomic::AtomicU64,
        reason: &str,
        position: &str,
        record: Record<'_>,
    ) -> Result<Admitted, StoreError> {
        self.counters
            .last_refused_ms
            .store(record.received_at.timestamp_millis(), Ordering::Relaxed);
        self.refuse(counter, reason, position, record)
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

/// Rich content, decrypted or not.
enum Decrypted {
    Json(serde_json::Value),
    /// For a certificate this appliance does not hold (its id).
    UnknownCertificate(String),
    /// Refused (kept and counted already).
    Refused(Admitted),
}

enum Admitted {
    HandedOff,
    Duplicate,
    Rejected,
    Ignored,
    /// Not told the fleet's or a stranger's: the record is kept to be read again.
    Unverifiable,
}
