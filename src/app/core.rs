//! The long-lived parts every command shares: the store, the device id, the rich-notification
//! keys, the subscriptions' client states and the ingest counters — and the troubles found
//! while opening them (a damaged store that was recovered, a configuration that fell back),
//! which the appliance raises as soon as its alarm runs.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use super::AppError;
use crate::config::Config;
use crate::graph::client_state::ClientStates;
use crate::graph::crypto::{EncryptionKey, KeyRing, StoredKey};
use crate::health::IngestCounters;
use crate::ingest::{InboxEntry, Ingest};
use crate::store::Store;

use crate::graph::crypto::KEY_PREFIX;
/// How long a recovered store stays a trouble (across restarts): long enough for the next
/// shift to read it.
pub const RECOVERY_TROUBLE_HOURS: i64 = 24;
/// The trouble component of a recovered store.
pub const STORE_COMPONENT: &str = "store";

/// The long-lived parts every command shares.
pub struct Core {
    pub store: Store,
    pub device_id: String,
    pub keys: KeyRing,
    pub client_states: ClientStates,
    pub counters: Arc<IngestCounters>,
    /// Troubles to raise once the alarm runs: (component, what happened in words).
    pub start_troubles: Vec<(String, String)>,
}

impl Core {
    /// Opens the store (recovering a damaged one, see [`Store::open_or_recover`]) and loads
    /// (or creates) the device id and encryption key.
    pub fn open(config: &Config) -> Result<Core, AppError> {
        let now = Utc::now();
        let (store, recovered) = Store::open_or_recover(&config.data_dir, now)?;
        let mut start_troubles = Vec::new();
        // This start's recovery, or one recorded by an earlier start that is still recent.
        let recovery = recovered
            .or_else(|| store.last_recovery())
            .filter(|r| now - r.at < chrono::Duration::hours(RECOVERY_TROUBLE_HOURS));
        if let Some(recovery) = recovery {
            let detail = format!(
                "{} (at {})",
                recovery.describe(),
                recovery.at.format("%Y-%m-%d %H:%M UTC")
            );
            tracing::error!(%detail, "the store was recovered");
            start_troubles.push((STORE_COMPONENT.to_string(), detail));
        }
        let device_id = device_id(&store, config)?;
        let keys = load_keys(&store)?;
        let client_states = ClientStates::load(&store)?;
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(config.ingest.dedupe_days));
        let pruned = store.prune_seen(cutoff)?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot old de-duplication keys");
        }
        Ok(Core {
            store,
            device_id,
            keys,
            client_states,
            counters: Arc::new(IngestCounters::default()),
            start_troubles,
        })
    }

    /// A new ingest stage handing on to `handoff`.
    pub fn ingest(&self, handoff: mpsc::Sender<InboxEntry>) -> Ingest {
        Ingest::new(
            self.store.clone(),
            self.keys.clone(),
            self.client_states.clone(),
            handoff,
            self.counters.clone(),
        )
    }
}

/// The configured device id, or the stored one, or a new one (stored).
fn device_id(store: &Store, config: &Config) -> Result<String, AppError> {
    if let Some(id) = &config.device_id {
        return Ok(id.clone());
    }
    if let Some(id) = store
        .settings
        .get("device_id")?
        .and_then(|v| v.as_str().map(str::to_string))
    {
        return Ok(id);
    }
    let mut bytes = [0u8; 3];
    openssl::rand::rand_bytes(&mut bytes).map_err(crate::graph::crypto::KeyError::from)?;
    let id = format!(
        "beacon-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    store.settings.insert("device_id", &serde_json::json!(id))?;
    store.flush()?;
    Ok(id)
}

/// Loads the rich-notification keys, each proved by a round trip
/// ([`EncryptionKey::self_test`]; one that fails is skipped with an error); creates the first
/// one on a new appliance.
pub fn load_keys(store: &Store) -> Result<KeyRing, AppError> {
    let mut keys = Vec::new();
    for (name, value) in store.secrets_with_prefix(KEY_PREFIX)? {
        match serde_json::from_str::<StoredKey>(value.expose()) {
            Ok(stored) => {
                let key = EncryptionKey::from_stored(&stored)?;
                // Proved now rather than at the first emergency, which then also finds
                // OpenSSL's per-key state built (see `self_test`). A key that cannot unwrap is
                // of no use: without it, a chat message encrypted for it is fetched from
                // Graph instead, and a call event is refused in words.
                match key.self_test() {
                    Ok(()) => keys.push(key),
                    Err(e) => tracing::error!(name, error = %e, "encryption key skipped"),
                }
            }
            // Only where and what kind: serde's message could quote the key material.
            Err(e) => tracing::error!(
                name,
                kind = ?e.classify(),
                line = e.line(),
                column = e.column(),
                "unreadable encryption key skipped"
            ),
        }
    }
    if keys.is_empty() {
        let key = crate::graph::keys::new_key(Utc::now())?;
        save_key(store, &key)?;
        tracing::info!(id = key.id, "created the rich-notification encryption key");
        keys.push(key);
    }
    Ok(KeyRing::new(keys))
}

/// Persists a key in the secrets tree.
pub fn save_key(store: &Store, key: &EncryptionKey) -> Result<(), AppError> {
    crate::graph::keys::save(store, key).map_err(|e| match e {
        crate::graph::keys::KeysError::Key(e) => AppError::Key(e),
        crate::graph::keys::KeysError::Store(e) => AppError::Store(e),
    })
}
