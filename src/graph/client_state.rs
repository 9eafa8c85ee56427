//! The live subscriptions' `clientState` secrets and the constant-time check of a
//! notification's echo against them (graph-teams.md C.3: over Event Hubs, clientState is the
//! only per-notification proof that the notification belongs to our subscription).
//!
//! The subscription keeper adds a state when it creates a subscription and removes it when the
//! subscription is gone; the set is persisted in the store's secrets tree as
//! `client-state/<subscription-id>` and shared between tasks.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::secret::Secret;
use crate::store::{Store, StoreError};

const PREFIX: &str = "client-state/";

/// Shared, persisted set of live client states.
#[derive(Clone, Default)]
pub struct ClientStates {
    inner: Arc<RwLock<BTreeMap<String, Secret>>>,
}

impl std::fmt::Debug for ClientStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStates")
            .field("subscriptions", &self.len())
            .finish()
    }
}

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The notification carried no clientState.
    Missing,
    /// It carried one that matches no live subscription.
    Mismatch,
    /// No subscription has been set up on this appliance yet.
    NoneConfigured,
}

impl ClientStates {
    /// Loads the persisted states.
    pub fn load(store: &Store) -> Result<ClientStates, StoreError> {
        let states = store
            .secrets_with_prefix(PREFIX)?
            .into_iter()
            .map(|(name, value)| (name[PREFIX.len()..].to_string(), value))
            .collect();
        Ok(ClientStates {
            inner: Arc::new(RwLock::new(states)),
        })
    }

    /// Records (and persists) the state of a subscription.
    pub fn add(
        &self,
        store: &Store,
        subscription_id: &str,
        state: Secret,
    ) -> Result<(), StoreError> {
        store.set_secret(&format!("{PREFIX}{subscription_id}"), &state)?;
        store.flush()?;
        if let Ok(mut map) = self.inner.write() {
            map.insert(subscription_id.to_string(), state);
        }
        Ok(())
    }

    /// Forgets a subscription's state.
    pub fn remove(&self, store: &Store, subscription_id: &str) -> Result<(), StoreError> {
        store.remove_secret(&format!("{PREFIX}{subscription_id}"))?;
        if let Ok(mut map) = self.inner.write() {
            map.remove(subscription_id);
        }
        Ok(())
    }

    /// Whether we hold the state of this subscription (i.e. it is ours).
    pub fn knows(&self, subscription_id: &str) -> bool {
        self.inner
            .read()
            .map(|m| m.contains_key(subscription_id))
            .unwrap_or(false)
    }

    /// Number of live subscriptions.
    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no subscription is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a notification's `clientState` against every live state, in constant time per
    /// comparison (the loop does not stop at the first match).
    pub fn verify(&self, presented: Option<&str>) -> Verdict {
        let Ok(map) = self.inner.read() else {
            return Verdict::NoneConfigured;
        };
        if map.is_empty() {
            return Verdict::NoneConfigured;
        }
        let Some(presented) = presented else {
            return Verdict::Missing;
        };
        let mut matched = false;
        for state in map.values() {
            matched |= constant_time_eq(presented.as_bytes(), state.expose().as_bytes());
        }
        if matched {
            Verdict::Accepted
        } else {
            Verdict::Mismatch
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_against_live_states_and_persist() {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default();
        let store = Store::open(&dir).map_err(|e| e.to_string());
        let Ok(store) = store else { panic!("store") };
        let states = ClientStates::default();
        assert_eq!(states.verify(Some("x")), Verdict::NoneConfigured);
        let _ = states.add(&store, "sub-1", Secret::new("state-one"));
        let _ = states.add(&store, "sub-2", Secret::new("state-two"));
        assert_eq!(states.verify(Some("state-two")), Verdict::Accepted);
        assert_eq!(states.verify(Some("state-twO")), Verdict::Mismatch);
        assert_eq!(states.verify(Some("state-tw")), Verdict::Mismatch);
        assert_eq!(states.verify(None), Verdict::Missing);
        let reloaded = ClientStates::load(&store).map(|s| s.verify(Some("state-one")));
        assert_eq!(reloaded.ok(), Some(Verdict::Accepted));
        let _ = states.remove(&store, "sub-1");
        assert_eq!(states.verify(Some("state-one")), Verdict::Mismatch);
        assert!(!format!("{states:?}").contains("state-"));
    }
}
