//! Ground truth after (or between) runs: what the appliance's store holds — calls, the alarm's
//! audit records (raises and troubles with their times), what still waits in the inbox, the
//! outbox — and which offsets the appliance's consumer group has committed on the broker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use beacon::store::Store;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::inject::{Injected, Landing};
use crate::support::kafka::client_config;
use crate::support::notifications::CHAT;

/// One trouble transition from the audit tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TroubleEvent {
    pub at: DateTime<Utc>,
    pub raised: bool,
    pub component: String,
}

/// The store's view, read with the appliance stopped.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Call keys recorded in `calls`, with whether the record says it alarmed locally.
    pub calls: BTreeMap<String, bool>,
    /// `call_raised` audit records per call key.
    pub raised: BTreeMap<String, usize>,
    /// When each key was first raised.
    pub raised_at: BTreeMap<String, DateTime<Utc>>,
    pub troubles: Vec<TroubleEvent>,
    /// Call keys of notifications still waiting in the inbox.
    pub waiting: BTreeSet<String>,
    /// Outbox entries per status.
    pub outbox: BTreeMap<String, usize>,
    /// Messages kept in the `messages` tree.
    pub messages: usize,
}

impl Ledger {
    /// Opens the store in `data_dir` (the appliance must not be running) and reads it.
    pub fn read(data_dir: &Path) -> Result<Ledger, String> {
        let store = Store::open(data_dir).map_err(|e| e.to_string())?;
        let mut ledger = Ledger::default();
        for (key, value) in store.calls.iter() {
            let value = value.map_err(|e| format!("calls/{key}: {e}"))?;
            ledger
                .calls
                .insert(key, value["alarmed_locally"].as_bool().unwrap_or(false));
        }
        for (key, value) in store.audit.iter() {
            let record = value.map_err(|e| format!("audit/{key}: {e}"))?;
            let at = record["at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
            match record["action"].as_str() {
                Some("call_raised") => {
                    for key in record["keys"].as_array().into_iter().flatten() {
                        if let Some(key) = key.as_str() {
                            *ledger.raised.entry(key.to_string()).or_default() += 1;
                            if let Some(at) = at {
                                ledger.raised_at.entry(key.to_string()).or_insert(at);
                            }
                        }
                    }
                }
                Some(action @ ("trouble_raised" | "trouble_cleared")) => {
                    let detail = record["detail"].as_str().unwrap_or_default();
                    // Raised: "component: detail"; cleared: "component". A component may
                    // hold a colon itself ("notify:email").
                    let component = if action == "trouble_raised" {
                        detail.split_once(": ").map_or(detail, |(c, _)| c)
                    } else {
                        detail
                    }
                    .to_string();
                    if let Some(at) = at {
                        ledger.troubles.push(TroubleEvent {
                            at,
                            raised: action == "trouble_raised",
                            component,
                        });
                    }
                }
                _ => {}
            }
        }
        for (key, entry) in beacon::ingest::inbox(&store).iter() {
            let entry = entry.map_err(|e| format!("inbox/{key}: {e}"))?;
            if let beacon::ingest::Notification::Message {
                chat_id,
                message_id,
                ..
            } = &entry.notification
            {
                ledger.waiting.insert(format!("{chat_id}/{message_id}"));
            }
        }
        for (_, entry) in store.outbox.iter() {
            let status = entry
                .ok()
                .and_then(|e| e["status"].as_str().map(str::to_string))
                .unwrap_or_else(|| "unreadable".into());
            *ledger.outbox.entry(status).or_default() += 1;
        }
        ledger.messages = store.messages.len();
        Ok(ledger)
    }

    /// The first raise of a trouble of `component` at or after `since`.
    pub fn trouble_raised_after(
        &self,
        component: &str,
        since: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.troubles
            .iter()
            .filter(|t| t.raised && t.component == component && t.at >= since)
            .map(|t| t.at)
            .min()
    }

    /// The first clearing of a trouble of `component` at or after `since`.
    pub fn trouble_cleared_after(
        &self,
        component: &str,
        since: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.troubles
            .iter()
            .filter(|t| !t.raised && t.component == component && t.at >= since)
            .map(|t| t.at)
            .min()
    }
}

/// The offsets `group` has committed on `topic`'s partitions (missing: nothing committed).
pub fn committed_offsets(group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(15))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Injected emergencies whose record's offset is committed but which the store has neither
/// as a call nor waiting in the inbox: committed and lost. Also returns how many were covered
/// by a commit.
pub fn committed_but_absent(
    injected: &[Injected],
    landings: &BTreeMap<String, Landing>,
    committed: &BTreeMap<i32, i64>,
    ledger: &Ledger,
) -> (usize, Vec<String>) {
    let mut covered = 0;
    let mut absent = Vec::new();
    for item in injected {
        let Some(Ok((partition, offset))) = landings.get(&item.message_id) else {
            continue;
        };
        if committed.get(partition).is_some_and(|c| offset < c) {
            covered += 1;
            let key = item.key();
            if !ledger.calls.contains_key(&key) && !ledger.waiting.contains(&key) {
                absent.push(format!("{key} (partition {partition} offset {offset})"));
            }
        }
    }
    (covered, absent)
}

/// The call key for a message id in the campaign's chat.
pub fn key_of(message_id: &str) -> String {
    format!("{CHAT}/{message_id}")
}
