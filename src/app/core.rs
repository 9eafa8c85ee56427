//! The long-lived parts every command shares: the store, the device id, the rich-notification
//! keys, the subscriptions' client states and the ingest counters.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use super::AppError;
use crate::config::Config;
use crate::graph::client_state::ClientStates;
use crate::graph::crypto::{EncryptionKey, KeyError, KeyRing, StoredKey};
use crate::health::IngestCounters;
use crate::ingest::{InboxEntry, Ingest};
use crate::store::Store;

/// Prefix of the rich-notification keys in the secrets tree.
const KEY_PREFIX: &str = "rich-key/";
/// Validity of a generated encryption certificate.
const KEY_DAYS: u32 = 365;

/// The long-lived parts every command shares.
pub struct Core {
    pub store: Store,
    pub device_id: String,
    pub keys: KeyRing,
    pub client_states: ClientStates,
    pub counters: Arc<IngestCounters>,
}

impl Core {
    /// Opens the store and loads (or creates) the device id and encryption key.
    pub fn open(config: &Config) -> Result<Core, AppError> {
        let store = Store::open(&config.data_dir)?;
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
        })
    }

    /// A new ingest stage handing on to `handoff`. A notification of a message the poll found
    /// first is noted on its call (if it is one) as push reporting it, for path supervision.
    pub fn ingest(&self, handoff: mpsc::Sender<InboxEntry>) -> Ingest {
        let calls = crate::calls::CallLog::of(&self.store);
        Ingest::new(
            self.store.clone(),
            self.keys.clone(),
            self.client_states.clone(),
            handoff,
            self.counters.clone(),
        )
        .on_duplicate(Arc::new(move |entry: &InboxEntry| {
            if let crate::ingest::Notification::Message {
                chat_id,
                message_id,
                ..
            } = &entry.notification
            {
                calls.add_sighting(
                    &format!("{chat_id}/{message_id}"),
                    crate::calls::Path::ChatNotification,
                    entry.received_at,
                )?;
            }
            Ok(())
        }))
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
    openssl::rand::rand_bytes(&mut bytes).map_err(KeyError::from)?;
    let id = format!(
        "beacon-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    store.settings.insert("device_id", &serde_json::json!(id))?;
    store.flush()?;
    Ok(id)
}

/// Loads the rich-notification keys; creates the first one on a new appliance.
pub fn load_keys(store: &Store) -> Result<KeyRing, AppError> {
    let mut keys = Vec::new();
    for (name, value) in store.secrets_with_prefix(KEY_PREFIX)? {
        match serde_json::from_str::<StoredKey>(value.expose()) {
            Ok(stored) => keys.push(EncryptionKey::from_stored(&stored)?),
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
        let now = Utc::now();
        let id = format!("beacon-{}", now.format("%Y%m%d%H%M%S"));
        let key = EncryptionKey::generate(&id, now, KEY_DAYS)?;
        save_key(store, &key)?;
        tracing::info!(id, "created the rich-notification encryption key");
        keys.push(key);
    }
    Ok(KeyRing::new(keys))
}

/// Persists a key in the secrets tree.
pub fn save_key(store: &Store, key: &EncryptionKey) -> Result<(), AppError> {
    let stored = key.to_stored()?;
    let json = serde_json::to_string(&stored).map_err(|e| KeyError::from_message(e.to_string()))?;
    store.set_secret(
        &format!("{KEY_PREFIX}{}", key.id),
        &crate::secret::Secret::new(json),
    )?;
    store.flush()?;
    Ok(())
}
