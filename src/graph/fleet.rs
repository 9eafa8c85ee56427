//! The fleet: the appliances of one organisation that share one set of Graph subscriptions
//! (issue 17). What a subscription binds to is shared by every box of the fleet — its id, the
//! `clientState` secret every fleet subscription is created with, and (in the secrets tree
//! beside it, `rich-key/…`) the rich-notification key and certificate — so any box can create,
//! adopt and renew the fleet's subscriptions and accept every notification of them.
//!
//! A new appliance is a fleet of one: [`FleetSecrets::load_or_create`] makes the secrets on
//! first use (taking over the clientState of a subscription made by an earlier version, so an
//! upgrade keeps its subscription). They live in the store's secrets tree (files 0600) as one
//! JSON value; `Debug` never shows them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Where the fleet's secrets are kept in the secrets tree.
const SECRETS_KEY: &str = "fleet/secrets";
/// Where an earlier version kept one clientState per subscription.
pub(crate) const LEGACY_PREFIX: &str = "client-state/";
/// How many earlier clientStates stay accepted after a rotation (notifications already in the
/// hub, subscriptions not yet replaced).
const PREVIOUS_KEPT: usize = 2;

/// The fleet's identity and shared subscription secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSecrets {
    /// `fleet-` and 12 hex digits; not secret, shown on the console.
    pub id: String,
    /// The `clientState` every subscription of the fleet is created with.
    pub client_state: Secret,
    /// States of before a rotation, still accepted (newest first).
    pub previous_client_states: Vec<Secret>,
}

impl std::fmt::Debug for FleetSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSecrets")
            .field("id", &self.id)
            .field("previous_client_states", &self.previous_client_states.len())
            .finish_non_exhaustive()
    }
}

/// The stored form (plain strings: [`Secret`] serialises as `***`).
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    client_state: String,
    #[serde(default)]
    previous_client_states: Vec<String>,
}

impl FleetSecrets {
    /// A new fleet of one: a fresh id and clientState.
    pub fn generate() -> FleetSecrets {
        FleetSecrets {
            id: format!("fleet-{}", hex(&random::<6>())),
            client_state: new_client_state(),
            previous_client_states: Vec::new(),
        }
    }

    /// The stored secrets, or `None` on an appliance that has none yet.
    pub fn load(store: &Store) -> Result<Option<FleetSecrets>, StoreError> {
        let Some(value) = store.secret(SECRETS_KEY)? else {
            return Ok(None);
        };
        // Only the position: serde's message could quote the secret.
        let stored: Stored =
            serde_json::from_str(value.expose()).map_err(|e| StoreError::Corrupt {
                tree: "secrets".into(),
                key: SECRETS_KEY.into(),
                reason: format!(
                    "not the fleet's JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        Ok(Some(FleetSecrets {
            id: stored.id,
            client_state: Secret::new(stored.client_state),
            previous_client_states: stored
                .previous_client_states
                .into_iter()
                .map(Secret::new)
                .collect(),
        }))
    }

    /// The stored secrets; on first use new ones, taking over the clientState an earlier
    /// version kept for its subscription (so that subscription stays accepted).
    pub fn load_or_create(store: &Store) -> Result<FleetSecrets, StoreError> {
        if let Some(found) = FleetSecrets::load(store)? {
            return Ok(found);
        }
        let mut fleet = FleetSecrets::generate();
        let legacy = store.secrets_with_prefix(LEGACY_PREFIX)?;
        let mut states = legacy.iter().map(|(_, state)| state.clone());
        if let Some(first) = states.next() {
            fleet.client_state = first;
            fleet.previous_client_states = states.collect();
        }
        fleet.save(store)?;
        for (name, _) in legacy {
            store.remove_secret(&name)?;
        }
        store.flush()?;
        Ok(fleet)
    }

    /// Persists (and flushes) the secrets.
    pub fn save(&self, store: &Store) -> Result<(), StoreError> {
        let stored = Stored {
            id: self.id.clone(),
            client_state: self.client_state.expose().to_string(),
            previous_client_states: self
                .previous_client_states
                .iter()
                .map(|s| s.expose().to_string())
                .collect(),
        };
        let json = serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt {
            tree: "secrets".into(),
            key: SECRETS_KEY.into(),
            reason: e.to_string(),
        })?;
        store.set_secret(SECRETS_KEY, &Secret::new(json))?;
        store.flush()
    }

    /// A new clientState for the same fleet (a stolen box): the current one stays accepted for
    /// a while as the newest previous one.
    pub fn rotated(&self) -> FleetSecrets {
        let mut previous = vec![self.client_state.clone()];
        previous.extend(self.previous_client_states.iter().cloned());
        previous.truncate(PREVIOUS_KEPT);
        FleetSecrets {
            id: self.id.clone(),
            client_state: new_client_state(),
            previous_client_states: previous,
        }
    }

    /// Every clientState a notification of the fleet may carry, current first.
    pub fn accepted_states(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.client_state).chain(self.previous_client_states.iter())
    }
}

/// What a box hands to a box joining its fleet (over HTTPS, authenticated by a one-time code,
/// `web::join_code`): the fleet's secrets and its rich-notification keys. Plain strings for
/// the wire; `Debug` shows neither.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub fleet_id: String,
    pub client_state: String,
    #[serde(default)]
    pub previous_client_states: Vec<String>,
    /// The `rich-key/…` secrets as stored (each a [`super::crypto::StoredKey`] as JSON).
    #[serde(default)]
    pub keys: Vec<String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("fleet_id", &self.fleet_id)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// The fleet's secrets and keys in `store`.
    pub fn of(store: &Store) -> Result<Bundle, StoreError> {
        let fleet = FleetSecrets::load_or_create(store)?;
        let keys = store
            .secrets_with_prefix(super::crypto::KEY_PREFIX)?
            .into_iter()
            .map(|(_, key)| key.expose().to_string())
            .collect();
        Ok(Bundle {
            fleet_id: fleet.id,
            client_state: fleet.client_state.expose().to_string(),
            previous_client_states: fleet
                .previous_client_states
                .iter()
                .map(|s| s.expose().to_string())
                .collect(),
            keys,
        })
    }

    /// The fleet's secrets in it.
    pub fn secrets(&self) -> FleetSecrets {
        FleetSecrets {
            id: self.fleet_id.clone(),
            client_state: Secret::new(self.client_state.clone()),
            previous_client_states: self
                .previous_client_states
                .iter()
                .cloned()
                .map(Secret::new)
                .collect(),
        }
    }
}

/// 32 random bytes, URL-safe base64: 43 characters, under Graph's 128 (B.5).
pub fn new_client_state() -> Secret {
    Secret::new(B64URL.encode(random::<32>()))
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // The OpenSSL RNG does not fail on Linux; if it ever did, fall back to the clock plus
        // the address of a stack value rather than refuse to subscribe.
        let seed =
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) ^ (&bytes as *const _ as i64);
        for (b, s) in bytes.iter_mut().zip(seed.to_le_bytes().iter().cycle()) {
            *b ^= s;
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        (dir, store)
    }

    #[test]
    fn created_once_then_loaded_and_never_printed() {
        let (_dir, store) = store();
        let first = FleetSecrets::load_or_create(&store).expect("create");
        assert!(first.id.starts_with("fleet-") && first.id.len() == 18);
        assert!(first.client_state.expose().len() >= 40);
        assert_eq!(FleetSecrets::load_or_create(&store).expect("load"), first);
        assert!(!format!("{first:?}").contains(first.client_state.expose()));
    }

    #[test]
    fn an_upgrade_keeps_the_subscription_of_an_earlier_version() {
        let (_dir, store) = store();
        store
            .set_secret("client-state/sub-1", &Secret::new("the-old-state"))
            .expect("legacy");
        let fleet = FleetSecrets::load_or_create(&store).expect("create");
        assert_eq!(fleet.client_state.expose(), "the-old-state");
        assert!(store
            .secrets_with_prefix(LEGACY_PREFIX)
            .expect("scan")
            .is_empty());
    }

    #[test]
    fn client_state_is_random_and_short() {
        let a = new_client_state();
        assert_ne!(a, new_client_state());
        assert!(a.expose().len() <= 128 && a.expose().len() >= 40);
    }

    #[test]
    fn rotation_keeps_the_old_state_accepted_for_a_while() {
        let fleet = FleetSecrets::generate();
        let once = fleet.rotated();
        assert_eq!(once.id, fleet.id);
        assert_ne!(once.client_state, fleet.client_state);
        let thrice = once.rotated().rotated();
        let accepted: Vec<&Secret> = thrice.accepted_states().collect();
        assert_eq!(accepted.len(), 1 + PREVIOUS_KEPT);
        assert!(!accepted.contains(&&fleet.client_state));
    }
}
