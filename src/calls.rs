//! The typed call log: the one [`CallRecord`] type, and [`CallLog`], the one place that reads
//! and writes the `calls` tree. Recognition writes a record right after raising the alarm;
//! MQTT, the notifiers, the display and the console read it, and wait for a new call's record
//! with [`CallLog::wait_for`] instead of polling the store. A record that cannot be read is
//! an error the caller sees, or — where a list is shown — a warning in the log naming its key,
//! never a silent gap. The JSON is the one the tree has always held (no migration).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::emergency::{EmergencyCall, Kind};
use crate::store::{Store, StoreError, Typed};

/// What the `calls` tree holds for one call (key `chat-id/message-id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub key: String,
    pub kind: Kind,
    /// Why, in words.
    pub reason: String,
    pub call: EmergencyCall,
    /// The zone that matched, when zones are configured.
    pub zone: Option<String>,
    /// Whether this appliance's outputs fired for it.
    pub alarmed_locally: bool,
    /// Found after a gap (resync) or delivered long after it was sent.
    pub late: bool,
    pub received_at: DateTime<Utc>,
    pub recognised_at: DateTime<Utc>,
    /// Edits merged in, and when the last one was.
    pub updates: u32,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// The change notification that brought it, as it arrived (`clientState` redacted,
    /// ciphertext left out); absent when it was found by a resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Value>,
    /// Which paths reported the call and when, first first. Empty in records written before
    /// paths were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Sighting>,
    /// When the call ended, as Graph's emergency call events said (`callEnded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The Graph emergency call event (`callStarted`, decrypted) that reported the call, when
    /// one did; `call` then holds what it and the chat message say together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_event: Option<Value>,
}

/// A way a call reaches the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// A chat-message change notification through the Event Hub (push).
    ChatNotification,
    /// Reading the chats from Graph: the reconciliation poll, or the resync after a gap.
    ChatPoll,
    /// A Graph emergency call event (`getEmergencyEventsByPolicy`) through the Event Hub.
    CallEvent,
}

impl Path {
    /// Every path, in the order they are shown.
    pub const ALL: [Path; 3] = [Path::ChatNotification, Path::ChatPoll, Path::CallEvent];

    /// The path's name in words, as troubles and pages say it.
    pub fn words(self) -> &'static str {
        match self {
            Path::ChatNotification => "chat notifications",
            Path::ChatPoll => "the chat poll",
            Path::CallEvent => "emergency call events",
        }
    }

    /// The path's short name (metrics labels, MQTT, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Path::ChatNotification => "chat_notification",
            Path::ChatPoll => "chat_poll",
            Path::CallEvent => "call_event",
        }
    }
}

/// One path reporting a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub path: Path,
    pub at: DateTime<Utc>,
}

impl CallRecord {
    /// When `path` reported this call, if it did.
    pub fn seen_by(&self, path: Path) -> Option<DateTime<Utc>> {
        self.sources.iter().find(|s| s.path == path).map(|s| s.at)
    }

    /// Records that `path` reported the call at `at`; false when it had already.
    pub fn add_sighting(&mut self, path: Path, at: DateTime<Utc>) -> bool {
        if self.seen_by(path).is_some() {
            return false;
        }
        self.sources.push(Sighting { path, at });
        true
    }

    /// The path that reported the call first.
    pub fn first_path(&self) -> Option<Path> {
        self.sources.iter().min_by_key(|s| s.at).map(|s| s.path)
    }

    /// The paths that reported the call, first first, in words ("emergency call events, then
    /// chat notifications"); empty for records written before paths were kept.
    pub fn sources_in_words(&self) -> String {
        let mut sightings = self.sources.clone();
        sightings.sort_by_key(|s| s.at);
        sightings
            .iter()
            .map(|s| s.path.words())
            .collect::<Vec<_>>()
            .join(", then ")
    }
}

/// The `calls` tree, typed. Cheap to clone; every clone sees the same tree.
#[derive(Clone)]
pub struct CallLog {
    tree: Typed<CallRecord>,
    aliases: Typed<String>,
}

impl CallLog {
    /// The call log of `store`.
    pub fn of(store: &Store) -> CallLog {
        CallLog {
            tree: store.calls.read_as(),
            aliases: store.call_aliases.clone(),
        }
    }

    /// The record of call `key` (`chat-id/message-id`); an unreadable one is an error.
    pub fn get(&self, key: &str) -> Result<Option<CallRecord>, StoreError> {
        self.tree.get(key)
    }

    /// The key the record of the call reported as `key` is kept under: `key` itself, or the
    /// key of the first report when `key` is a later source's report of the same call.
    pub fn resolve(&self, key: &str) -> Result<String, StoreError> {
        Ok(self.aliases.get(key)?.unwrap_or_else(|| key.to_string()))
    }

    /// Notes that the report `alias` (another source's key) is the call kept as `key`.
    pub fn alias(&self, alias: &str, key: &str) -> Result<(), StoreError> {
        if alias != key {
            self.aliases.insert(alias, &key.to_string())?;
        }
        Ok(())
    }

    /// Writes `record` under its key (flushing is the writer's business).
    pub fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        self.tree.insert(&record.key, record)
    }

    /// Notes on call `key`'s record (or the record `key` is an alias of) that `path` reported
    /// it at `at` (a later report of a call another path brought first). False when there is no such call or `path` had already.
    pub fn add_sighting(
        &self,
        key: &str,
        path: Path,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = self.get(&self.resolve(key)?)? else {
            return Ok(false);
        };
        if !record.add_sighting(path, at) {
            return Ok(false);
        }
        self.put(&record)?;
        Ok(true)
    }

    /// The record of call `key`, waiting up to `within` for it to be written.
    pub async fn wait_for(
        &self,
        key: &str,
        within: Duration,
    ) -> Result<Option<CallRecord>, StoreError> {
        self.tree.wait_for(key, within).await
    }

    /// Every readable record, newest first (by arrival). Unreadable ones are logged by key,
    /// for `reader` (who skipped them), and left out.
    pub fn all(&self, reader: &str) -> Vec<CallRecord> {
        let mut calls: Vec<CallRecord> = self
            .tree
            .iter()
            .filter_map(|(key, record)| match record {
                Ok(record) => Some(record),
                Err(error) => {
                    tracing::warn!(key, reader, %error, "an unreadable call record is skipped");
                    None
                }
            })
            .collect();
        calls.sort_by_key(|c| std::cmp::Reverse(c.received_at));
        calls
    }
}
