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
//!
//! Beside what Graph sees, the fleet has a *peer key* of its own: the boxes sign the messages
//! they send each other with it (`outputs::peers`). It is not derived from the clientState,
//! which travels in every notification through Microsoft and the Event Hub.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Where the fleet's secrets are kept in the secrets tree.
pub(crate) const SECRETS_KEY: &str = "fleet/secrets";
/// Where an earlier version kept one clientState per subscription.
pub(crate) const LEGACY_PREFIX: &str = "client-state/";
/// How long the clientState of before a rotation stays accepted: notifications already on
/// their way through the hub. After it, a stolen box's state is refused (and what was missed
/// meanwhile is found by the chat poll). A time, not a number of rotations: a thief must not
/// be let in until someone rotates twice more.
pub const PREVIOUS_ACCEPTED_MINUTES: i64 = 60;

/// The fleet's identity and shared subscription secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSecrets {
    /// `fleet-` and 12 hex digits; not secret, shown on the console.
    pub id: String,
    /// The `clientState` every subscription of the fleet is created with.
    pub client_state: Secret,
    /// States of before a rotation, accepted until `previous_until` (newest first).
    pub previous_client_states: Vec<Secret>,
    /// Until when the previous states are accepted; `None` (states an earlier version kept
    /// per subscription, taken over at an upgrade) is no limit.
    pub previous_until: Option<DateTime<Utc>>,
    /// The key the boxes sign their messages to each other with (HMAC-SHA256).
    pub peer_key: Secret,
}

/// Where a member's console is, as the others reach it: what a join records and what the
/// members tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// The box's name (its device id).
    pub name: String,
    /// `https://host:port` of its console.
    pub url: String,
    /// The pin of its console certificate (`web::join_code::pin`'s form: 26 letters).
    pub pin: String,
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
    /// Missing in what versions before the peer channel stored: made on first load.
    #[serde(default)]
    peer_key: Option<String>,
    #[serde(default)]
    previous_until: Option<DateTime<Utc>>,
}

impl FleetSecrets {
    /// A new fleet of one: a fresh id and clientState.
    pub fn generate() -> FleetSecrets {
        FleetSecrets::with_client_state(
            &format!("fleet-{}", hex(&random::<6>())),
            new_client_state(),
        )
    }

    /// Fleet `id` with `client_state`, no previous state and a new peer key (tests, tools).
    pub fn with_client_state(id: &str, client_state: Secret) -> FleetSecrets {
        FleetSecrets {
            id: id.to_string(),
            client_state,
            previous_client_states: Vec::new(),
            previous_until: None,
            peer_key: new_client_state(),
        }
    }

    /// The stored secrets, or `None` on an appliance that has none yet. Secrets stored before
    /// the peer key existed get one now (saved, so every later load sees the same).
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
        let missing_peer_key = stored.peer_key.is_none();
        let fleet = FleetSecrets {
            id: stored.id,
            client_state: Secret::new(stored.client_state),
            previous_client_states: stored
                .previous_client_states
                .into_iter()
                .map(Secret::new)
                .collect(),
            previous_until: stored.previous_until,
            peer_key: stored
                .peer_key
                .map(Secret::new)
                .unwrap_or_else(new_client_state),
        };
        if missing_peer_key {
            fleet.save(store)?;
        }
        Ok(Some(fleet))
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
            peer_key: Some(self.peer_key.expose().to_string()),
            previous_until: self.previous_until,
        };
        let json = serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt {
            tree: "secrets".into(),
            key: SECRETS_KEY.into(),
            reason: e.to_string(),
        })?;
        store.set_secret(SECRETS_KEY, &Secret::new(json))?;
        store.flush()
    }

    /// A new clientState and peer key for the same fleet (a stolen box), rotated at `now`: the
    /// current state stays accepted for [`PREVIOUS_ACCEPTED_MINUTES`], older ones no longer.
    pub fn rotated(&self, now: DateTime<Utc>) -> FleetSecrets {
        FleetSecrets {
            id: self.id.clone(),
            client_state: new_client_state(),
            previous_client_states: vec![self.client_state.clone()],
            previous_until: Some(now + Duration::minutes(PREVIOUS_ACCEPTED_MINUTES)),
            peer_key: new_client_state(),
        }
    }

    /// Every clientState a notification of the fleet may carry at `now`, current first.
    pub fn accepted_states(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Secret> {
        let previous_open = self.previous_until.is_none_or(|until| now < until);
        std::iter::once(&self.client_state).chain(
            self.previous_client_states
                .iter()
                .filter(move |_| previous_open),
        )
    }
}

/// What a box hands to a box joining its fleet (over HTTPS, authenticated by a one-time code,
/// `web::join_code`), and to every member after a rotation (over the peer channel): the
/// fleet's secrets and its rich-notification keys. Plain strings for the wire; `Debug` shows
/// neither.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub fleet_id: String,
    pub client_state: String,
    #[serde(default)]
    pub previous_client_states: Vec<String>,
    #[serde(default)]
    pub previous_until: Option<DateTime<Utc>>,
    /// The `rich-key/…` secrets as stored (each a [`super::crypto::StoredKey`] as JSON).
    #[serde(default)]
    pub keys: Vec<String>,
    /// The fleet's peer key (absent from a box of an earlier version: the joiner makes one,
    /// and the two do not hear each other until both run this version and it joins again).
    #[serde(default)]
    pub peer_key: Option<String>,
    /// The answering box's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The other members the answering box knows, so the joiner reaches them too.
    #[serde(default)]
    pub members: Vec<MemberAddress>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("fleet_id", &self.fleet_id)
            .field("keys", &self.keys.len())
            .field("name", &self.name)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// The fleet's secrets and keys in `store` (without name and members: the caller adds
    /// them).
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
            previous_until: fleet.previous_until,
            keys,
            peer_key: Some(fleet.peer_key.expose().to_string()),
            name: None,
            members: Vec::new(),
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
            previous_until: self.previous_until,
            peer_key: self
                .peer_key
                .clone()
                .map(Secret::new)
                .unwrap_or_else(new_client_state),
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
        assert!(!format!("{first:?}").contains(first.peer_key.expose()));
        assert_ne!(first.peer_key, first.client_state);
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
    fn secrets_of_an_earlier_version_get_one_peer_key_that_stays() {
        let (_dir, store) = store();
        store
            .set_secret(
                SECRETS_KEY,
                &Secret::new(r#"{"id":"fleet-0123456789ab","client_state":"s"}"#),
            )
            .expect("old form");
        let first = FleetSecrets::load(&store).expect("load").expect("some");
        assert_eq!(first.client_state.expose(), "s");
        let again = FleetSecrets::load(&store).expect("load").expect("some");
        assert_eq!(again.peer_key, first.peer_key, "made once, then kept");
    }

    #[test]
    fn client_state_is_random_and_short() {
        let a = new_client_state();
        assert_ne!(a, new_client_state());
        assert!(a.expose().len() <= 128 && a.expose().len() >= 40);
    }

    #[test]
    fn rotation_keeps_the_old_state_accepted_for_an_hour_only() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let fleet = FleetSecrets::generate();
        let once = fleet.rotated(now);
        assert_eq!(once.id, fleet.id);
        assert_ne!(once.client_state, fleet.client_state);
        assert_ne!(
            once.peer_key, fleet.peer_key,
            "a stolen box's key stops working"
        );
        let accepted = |f: &FleetSecrets, minutes: i64| -> Vec<Secret> {
            f.accepted_states(now + Duration::minutes(minutes))
                .cloned()
                .collect()
        };
        assert!(accepted(&once, PREVIOUS_ACCEPTED_MINUTES - 1).contains(&fleet.client_state));
        assert_eq!(
            accepted(&once, PREVIOUS_ACCEPTED_MINUTES),
            vec![once.client_state.clone()],
            "the stolen state is refused after the hour, however few rotations followed"
        );
        // A second rotation within the hour shuts out the first state at once.
        let twice = once.rotated(now + Duration::minutes(5));
        assert!(!accepted(&twice, 6).contains(&fleet.client_state));
        assert!(accepted(&twice, 6).contains(&once.client_state));
        // States taken over from an earlier version have no limit.
        let (_dir, store) = store();
        store
            .set_secret("client-state/sub-1", &Secret::new("one"))
            .expect("legacy");
        store
            .set_secret("client-state/sub-2", &Secret::new("two"))
            .expect("legacy");
        let upgraded = FleetSecrets::load_or_create(&store).expect("create");
        assert_eq!(accepted(&upgraded, 10_000).len(), 2);
    }
}
