//! The rich-notification keys as the store keeps them (the secrets tree, `rich-key/<id>`,
//! files 0600): made on a new appliance, saved, and rotated when a box of the fleet was stolen
//! (it holds the private key every subscription's notifications are encrypted for).

use chrono::{DateTime, Utc};

use super::crypto::{EncryptionKey, KeyError, KeyRing, KEY_PREFIX};
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Validity of a generated encryption certificate.
pub const KEY_DAYS: u32 = 365;

/// Why a key could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new key, named after the second it was made (`beacon-20261206101500`).
pub fn new_key(now: DateTime<Utc>) -> Result<EncryptionKey, KeyError> {
    let id = format!("beacon-{}", now.format("%Y%m%d%H%M%S"));
    EncryptionKey::generate(&id, now, KEY_DAYS)
}

/// Keeps `key` in the secrets tree, durably.
pub fn save(store: &Store, key: &EncryptionKey) -> Result<(), KeysError> {
    let stored = key.to_stored()?;
    let json = serde_json::to_string(&stored).map_err(|e| KeyError::from_message(e.to_string()))?;
    store.set_secret(&format!("{KEY_PREFIX}{}", key.id), &Secret::new(json))?;
    store.flush()?;
    Ok(())
}

/// A new key made current in `ring` and kept in `store`; the key current until now stays for
/// the notifications already encrypted for it, older ones are removed from both.
pub fn rotate(
    store: &Store,
    ring: &KeyRing,
    now: DateTime<Utc>,
) -> Result<EncryptionKey, KeysError> {
    let key = new_key(now)?;
    save(store, &key)?;
    for dropped in ring.rotate_to(key.clone()) {
        store.remove_secret(&format!("{KEY_PREFIX}{dropped}"))?;
    }
    store.flush()?;
    tracing::warn!(id = key.id, "the rich-notification key was rotated");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_makes_a_new_current_key_and_keeps_only_the_one_before() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let first_at = Utc::now() - chrono::Duration::days(2);
        let first = new_key(first_at).expect("key");
        save(&store, &first).expect("save");
        let ring = KeyRing::new(vec![first.clone()]);
        let copy = ring.clone();
        let second = rotate(&store, &ring, first_at + chrono::Duration::days(1)).expect("rotate");
        assert_eq!(
            copy.current().map(|k| k.id),
            Some(second.id.clone()),
            "every clone sees it"
        );
        assert!(
            copy.has(&first.id),
            "the one before stays for what is on its way"
        );
        let third = rotate(&store, &ring, Utc::now()).expect("rotate");
        assert_eq!(ring.ids(), [third.id.clone(), second.id.clone()]);
        let kept: Vec<String> = store
            .secrets_with_prefix(KEY_PREFIX)
            .expect("read")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(!kept.iter().any(|k| k.ends_with(&first.id)), "{kept:?}");
    }
}
