//! Which notifications are the fleet's: the fleet's `clientState` secrets, the subscriptions
//! known to be the fleet's, and the constant-time check of a notification against them
//! (graph-teams.md C.3: over Event Hubs, clientState is the only per-notification proof that a
//! notification belongs to our subscription).
//!
//! Several Beacons of one organisation, and other applications, may read one hub, so a
//! notification that is not ours is not necessarily a forgery:
//! * carrying one of the fleet's states → accepted (and its subscription learnt as the
//!   fleet's, since only a fleet subscription echoes the fleet's state);
//! * naming a subscription the fleet keeps, with another or no state → refused: a forgery, or
//!   a Beacon outside the fleet on the same service account — a trouble either way;
//! * naming any other subscription → foreign: someone else's, counted and let be;
//! * except while this box cannot tell: its store was damaged and renewed without the fleet's
//!   secrets (`keepsake-secrets.json` lost too) and it knows no subscription yet. The fleet's
//!   own subscription is then a stranger to it, so a notification of an unknown subscription
//!   is *unverifiable*: kept whole and read again once the secrets are back (a join, a
//!   replacement), never let be — the power-cut campaign lost 212 emergencies to exactly
//!   that.
//!
//! The subscription keeper records the subscriptions it creates or adopts; the set is kept in
//! the store's settings tree (ids are not secret), the states in [`super::fleet`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::fleet::FleetSecrets;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Where the fleet's known subscription ids are kept (settings tree).
const SUBSCRIPTIONS_KEY: &str = "fleet/subscriptions";
/// When the fleet's secrets were last replaced on purpose (a join, a rotation, leaving).
const REPLACED_AT_KEY: &str = "fleet/replaced-at";

/// The fleet's secrets and subscriptions, shared by the keeper and the ingest stage.
#[derive(Clone)]
pub struct ClientStates {
    fleet: Arc<RwLock<FleetSecrets>>,
    subscriptions: Arc<RwLock<BTreeSet<String>>>,
    /// The secrets were made new by a store recovery that could not keep them.
    lost: Arc<AtomicBool>,
}

impl std::fmt::Debug for ClientStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStates")
            .field("fleet", &self.fleet_id())
            .field("subscriptions", &self.subscriptions())
            .finish()
    }
}

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It carries the fleet's state.
    Accepted,
    /// It names a fleet subscription and carries no clientState.
    Missing,
    /// It names a fleet subscription and carries a state that is not the fleet's.
    Mismatch,
    /// It names a subscription that is not the fleet's, without the fleet's state.
    Foreign,
    /// It names a subscription this box does not know, and this box lost the fleet's secrets
    /// with a damaged store: it may be the fleet's own.
    Unverifiable,
}

impl ClientStates {
    /// Loads the fleet's secrets (made on first use) and its known subscriptions.
    pub fn load(store: &Store) -> Result<ClientStates, StoreError> {
        // Ids an earlier version kept its states under are the fleet's subscriptions.
        let legacy: Vec<String> = store
            .secrets_with_prefix(super::fleet::LEGACY_PREFIX)?
            .into_iter()
            .map(|(name, _)| name[super::fleet::LEGACY_PREFIX.len()..].to_string())
            .collect();
        let fleet = FleetSecrets::load_or_create(store)?;
        let mut subscriptions: BTreeSet<String> = store
            .settings
            .get(SUBSCRIPTIONS_KEY)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !legacy.is_empty() {
            subscriptions.extend(legacy);
            save_ids(store, &subscriptions)?;
        }
        Ok(ClientStates {
            fleet: Arc::new(RwLock::new(fleet)),
            subscriptions: Arc::new(RwLock::new(subscriptions)),
            lost: Arc::new(AtomicBool::new(secrets_lost(store)?)),
        })
    }

    /// Reads the fleet's secrets and subscriptions again from `store` into this (shared)
    /// value: another part of the appliance stored new ones (a join from the settings page),
    /// and every holder — ingest, the keeper — sees them from the next notification on.
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = ClientStates::load(store)?;
        let (Some(fleet), ids) = (fresh.secrets(), fresh.subscriptions()) else {
            return Ok(());
        };
        if let Ok(mut current) = self.fleet.write() {
            *current = fleet;
        }
        if let Ok(mut current) = self.subscriptions.write() {
            *current = ids.into_iter().collect();
        }
        self.lost
            .store(fresh.lost.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(())
    }

    /// Whether this box cannot tell the fleet's notifications from strangers' (see the module
    /// doc): its secrets were lost with a damaged store and it knows no subscription yet.
    pub fn unverifiable(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
            && self
                .subscriptions
                .read()
                .map(|ids| ids.is_empty())
                .unwrap_or(true)
    }

    /// The fleet's id.
    pub fn fleet_id(&self) -> String {
        self.fleet.read().map(|f| f.id.clone()).unwrap_or_default()
    }

    /// A copy of the fleet's secrets (to hand to a joining box, to rotate).
    pub fn secrets(&self) -> Option<FleetSecrets> {
        self.fleet.read().ok().map(|f| f.clone())
    }

    /// The state new subscriptions are created with.
    pub fn client_state(&self) -> Option<Secret> {
        self.fleet.read().ok().map(|f| f.client_state.clone())
    }

    /// Replaces the fleet's secrets (joining a fleet, rotating) and persists them. The known
    /// subscriptions are forgotten when the fleet changes: they are the old fleet's.
    pub fn replace(&self, store: &Store, secrets: FleetSecrets) -> Result<(), StoreError> {
        secrets.save(store)?;
        store
            .settings
            .insert(REPLACED_AT_KEY, &serde_json::json!(chrono::Utc::now()))?;
        self.lost.store(false, Ordering::Relaxed);
        let changed_fleet = self.fleet_id() != secrets.id;
        if let Ok(mut fleet) = self.fleet.write() {
            *fleet = secrets;
        }
        if changed_fleet {
            if let Ok(mut ids) = self.subscriptions.write() {
                ids.clear();
                save_ids(store, &ids)?;
            }
        }
        store.flush()
    }

    /// Records (and persists) a subscription as the fleet's.
    pub fn adopt(&self, store: &Store, subscription_id: &str) -> Result<(), StoreError> {
        if self.knows(subscription_id) {
            return Ok(());
        }
        if let Ok(mut ids) = self.subscriptions.write() {
            ids.insert(subscription_id.to_string());
            save_ids(store, &ids)?;
        }
        Ok(())
    }

    /// Forgets a subscription (gone from Graph).
    pub fn forget(&self, store: &Store, subscription_id: &str) -> Result<(), StoreError> {
        if let Ok(mut ids) = self.subscriptions.write() {
            if ids.remove(subscription_id) {
                save_ids(store, &ids)?;
            }
        }
        Ok(())
    }

    /// Whether the subscription is known to be the fleet's.
    pub fn knows(&self, subscription_id: &str) -> bool {
        self.subscriptions
            .read()
            .map(|ids| ids.contains(subscription_id))
            .unwrap_or(false)
    }

    /// The fleet's known subscriptions.
    pub fn subscriptions(&self) -> Vec<String> {
        self.subscriptions
            .read()
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Checks a notification of `subscription_id` carrying `presented`, now.
    pub fn verify(&self, subscription_id: &str, presented: Option<&str>) -> Verdict {
        self.verify_at(subscription_id, presented, chrono::Utc::now())
    }

    /// Checks a notification of `subscription_id` carrying `presented` at `now` (a state of
    /// before a rotation is accepted only for a while). Each comparison is constant-time and
    /// the loop does not stop at the first match.
    pub fn verify_at(
        &self,
        subscription_id: &str,
        presented: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Verdict {
        let matched = match (presented, self.fleet.read()) {
            (Some(presented), Ok(fleet)) => fleet.accepted_states(now).fold(false, |acc, state| {
                acc | constant_time_eq(presented.as_bytes(), state.expose().as_bytes())
            }),
            _ => false,
        };
        if matched {
            Verdict::Accepted
        } else if !self.knows(subscription_id) && self.unverifiable() {
            Verdict::Unverifiable
        } else if !self.knows(subscription_id) {
            Verdict::Foreign
        } else if presented.is_none() {
            Verdict::Missing
        } else {
            Verdict::Mismatch
        }
    }
}

/// Whether the last store recovery made a fresh store without the fleet's secrets, and they
/// were not replaced on purpose since.
fn secrets_lost(store: &Store) -> Result<bool, StoreError> {
    use crate::store::RecoveryAction;
    let Some(recovery) = store.last_recovery() else {
        return Ok(false);
    };
    let RecoveryAction::FreshStore { restored, .. } = &recovery.action else {
        return Ok(false);
    };
    if restored
        .iter()
        .any(|name| name == super::fleet::SECRETS_KEY)
    {
        return Ok(false);
    }
    let replaced_at = store
        .settings
        .get(REPLACED_AT_KEY)?
        .and_then(|v| serde_json::from_value::<chrono::DateTime<chrono::Utc>>(v).ok());
    Ok(replaced_at.is_none_or(|at| at < recovery.at))
}

fn save_ids(store: &Store, ids: &BTreeSet<String>) -> Result<(), StoreError> {
    store
        .settings
        .insert(SUBSCRIPTIONS_KEY, &serde_json::json!(ids))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_states_accept_fleet_subscriptions_refuse_and_others_are_foreign() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let states = ClientStates::load(&store).expect("load");
        let fleet = FleetSecrets {
            previous_client_states: vec![Secret::new("state-old")],
            ..FleetSecrets::with_client_state("fleet-1", Secret::new("state-one"))
        };
        states.replace(&store, fleet).expect("replace");
        states.adopt(&store, "sub-1").expect("adopt");
        // The fleet's state is accepted from any subscription (a box learns the others').
        assert_eq!(states.verify("sub-1", Some("state-one")), Verdict::Accepted);
        assert_eq!(states.verify("sub-2", Some("state-one")), Verdict::Accepted);
        assert_eq!(states.verify("sub-1", Some("state-old")), Verdict::Accepted);
        // A fleet subscription with another state: refused.
        assert_eq!(states.verify("sub-1", Some("state-onE")), Verdict::Mismatch);
        assert_eq!(states.verify("sub-1", Some("state-on")), Verdict::Mismatch);
        assert_eq!(states.verify("sub-1", None), Verdict::Missing);
        // Someone else's subscription: foreign.
        assert_eq!(states.verify("sub-9", Some("theirs")), Verdict::Foreign);
        assert_eq!(states.verify("sub-9", None), Verdict::Foreign);

        let reloaded = ClientStates::load(&store).expect("reload");
        assert_eq!(reloaded.fleet_id(), "fleet-1");
        assert_eq!(reloaded.verify("sub-1", Some("nope")), Verdict::Mismatch);
        reloaded.forget(&store, "sub-1").expect("forget");
        assert_eq!(reloaded.verify("sub-1", Some("nope")), Verdict::Foreign);
        assert!(!format!("{reloaded:?}").contains("state-"));
    }

    #[test]
    fn joining_another_fleet_forgets_the_old_fleets_subscriptions() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let states = ClientStates::load(&store).expect("load");
        states.adopt(&store, "old-sub").expect("adopt");
        let before = states.secrets().expect("secrets");
        let now = chrono::Utc::now();
        let rotated = before.rotated(now);
        states.replace(&store, rotated).expect("rotate");
        assert!(states.knows("old-sub"), "a rotation keeps the fleet");
        // The stolen state: accepted for the hour notifications take through the hub, then a
        // forgery like any other.
        let old = Some(before.client_state.expose());
        let minutes = chrono::Duration::minutes;
        let limit = crate::graph::fleet::PREVIOUS_ACCEPTED_MINUTES;
        assert_eq!(
            states.verify_at("old-sub", old, now + minutes(limit - 1)),
            Verdict::Accepted
        );
        assert_eq!(
            states.verify_at("old-sub", old, now + minutes(limit)),
            Verdict::Mismatch
        );
        states
            .replace(&store, FleetSecrets::generate())
            .expect("join");
        assert!(!states.knows("old-sub"));
    }
}
