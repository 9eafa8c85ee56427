//! Storing a fleet's secrets handed to this box — at a join (`joining`) or after a rotation on
//! another member (`link`) — in place of its own: the fleet's clientState, peer key and
//! rich-notification keys, all or nothing.

use crate::graph::crypto::{EncryptionKey, StoredKey, KEY_PREFIX};
use crate::graph::fleet::Bundle;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Stores `bundle`'s secrets and keys in place of this box's (a join, or a rotation another
/// member handed over). False, and nothing stored, when a key in it does not read.
pub fn install_secrets(store: &Store, bundle: &Bundle) -> Result<bool, StoreError> {
    let mut keys = Vec::new();
    for json in &bundle.keys {
        let Ok(stored) = serde_json::from_str::<StoredKey>(json) else {
            return Ok(false);
        };
        if EncryptionKey::from_stored(&stored).is_err() {
            return Ok(false);
        }
        keys.push((stored.id, json));
    }
    crate::graph::client_state::ClientStates::load(store)
        .and_then(|states| states.replace(store, bundle.secrets()))?;
    if !keys.is_empty() {
        for (name, _) in store.secrets_with_prefix(KEY_PREFIX)? {
            store.remove_secret(&name)?;
        }
        for (id, json) in keys {
            store.set_secret(&format!("{KEY_PREFIX}{id}"), &Secret::new(json.clone()))?;
        }
    }
    store.flush()?;
    Ok(true)
}
