//! Test support: the real Kafka-protocol broker started by `scripts/test-env`, notification
//! builders that follow graph-teams.md (H.1–H.6), and a small harness that runs Beacon's real
//! consumer and collects what it hands on.
#![allow(dead_code)]

pub mod browser;
pub mod campaign;
pub mod console;
pub mod fake_channels;
pub mod fake_cloud;
pub mod in_process;
pub mod kafka;
pub mod metrics;
pub mod mqtt;
pub mod notifications;
pub mod notify_harness;
pub mod process;
pub mod signed_in;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use beacon::eventhub::consumer::{self, ConsumerHandle, ConsumerSettings};
use beacon::graph::client_state::ClientStates;
use beacon::graph::crypto::KeyRing;
use beacon::graph::fleet::FleetSecrets;
use beacon::health::IngestCounters;
use beacon::ingest::{InboxEntry, Ingest};
use beacon::secret::Secret;
use beacon::store::Store;
use tokio::sync::mpsc;

/// The clientState every test subscription uses.
pub const CLIENT_STATE: &str = "test-client-state-4f2a9c";

/// One simulated appliance: its own store directory, keys and client state.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub keys: KeyRing,
    pub client_states: ClientStates,
    pub counters: Arc<IngestCounters>,
}

impl Appliance {
    pub fn new() -> Appliance {
        let dir = tempfile::tempdir().expect("temp dir");
        Appliance::open(dir)
    }

    /// Reopens the store in `dir` (as after a restart).
    pub fn open(dir: tempfile::TempDir) -> Appliance {
        let store = Store::open(&dir.path().join("data")).expect("store");
        let keys = beacon::app::load_keys(&store).expect("keys");
        let client_states = seed_fleet(&store);
        Appliance {
            dir,
            store,
            keys,
            client_states,
            counters: Arc::new(IngestCounters::default()),
        }
    }

    /// Closes the store and opens it again from disk.
    pub fn restart(self) -> Appliance {
        let Appliance { dir, store, .. } = self;
        store.flush().expect("flush");
        drop(store);
        Appliance::open(dir)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the real consumer on `topic` in `group`.
    pub fn consume(&self, topic: &str, group: &str, commit: bool) -> Running {
        let (tx, rx) = mpsc::channel(4096);
        let ingest = Ingest::new(
            self.store.clone(),
            self.keys.clone(),
            self.client_states.clone(),
            tx,
            self.counters.clone(),
        );
        let settings = ConsumerSettings {
            target: kafka::target(topic),
            group_id: group.to_string(),
            client_id: format!("test-{group}"),
            ca_file: Some(kafka::broker().ca),
            instance_id: None,
            max_batch: 500,
            commit,
        };
        let handle = consumer::spawn(settings, ingest).expect("consumer");
        Running { handle, rx }
    }
}

/// A running consumer and what it hands on.
pub struct Running {
    pub handle: ConsumerHandle,
    pub rx: mpsc::Receiver<InboxEntry>,
}

impl Running {
    /// Waits until `n` hand-offs arrived (or `timeout` passed) and returns them.
    pub async fn take(&mut self, n: usize, timeout: Duration) -> Vec<InboxEntry> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(entry)) => got.push(entry),
                _ => break,
            }
        }
        got
    }

    /// Waits for the hand-off of message `message_id` and returns everything handed on
    /// until then (inclusive).
    pub async fn until_message(&mut self, message_id: &str, timeout: Duration) -> Vec<InboxEntry> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(entry)) => {
                    let done = message_id_of(&entry) == Some(message_id);
                    got.push(entry);
                    if done {
                        return got;
                    }
                }
                _ => panic!(
                    "message {message_id} was not handed on within {timeout:?}; got {} others",
                    got.len()
                ),
            }
        }
    }

    /// Stops the consumer (finish batch, flush, commit, leave the group).
    pub async fn stop(self) {
        let Running { handle, rx } = self;
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .expect("shutdown");
        drop(rx);
    }
}

pub fn message_id_of(entry: &InboxEntry) -> Option<&str> {
    match &entry.notification {
        beacon::ingest::Notification::Message { message_id, .. } => Some(message_id),
        _ => None,
    }
}

/// Creates a store in `data` holding the test fleet's clientState and subscription, as the
/// subscription keeper would leave it, for commands that open the store themselves
/// (`beacon replay`).
pub fn seed_store(data: &std::path::Path) {
    let store = Store::open(data).expect("store");
    seed_fleet(&store);
}

/// The test fleet on `store`: clientState [`CLIENT_STATE`], its subscription the one every
/// test notification names ([`notifications::SUBSCRIPTION_ID`]). Idempotent.
pub fn seed_fleet(store: &Store) -> ClientStates {
    let states = ClientStates::load(store).expect("client states");
    states
        .replace(
            store,
            FleetSecrets::with_client_state("fleet-test", Secret::new(CLIENT_STATE)),
        )
        .expect("fleet secrets");
    states
        .adopt(store, notifications::SUBSCRIPTION_ID)
        .expect("fleet subscription");
    store.flush().expect("flush");
    states
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}
