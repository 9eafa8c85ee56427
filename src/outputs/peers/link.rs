//! The thin IO around the peer core: a task that sends this box's status to every member
//! every [`HEARTBEAT`] and at once after an acknowledgement here, and [`Peers::receive`],
//! which the console's `POST /fleet/peer` hands each message to. What it learns is kept in the
//! store's settings tree (members and the acknowledgements of the last day), so the console
//! shows "not seen since …" and "acknowledged on …" after a restart too.
//!
//! An acknowledgement heard from another desk is shown; it also acknowledges here only when
//! the office chose so on the settings page ([`silences`]; default: show only — a backup desk
//! must not go quiet because someone far away pressed a button), and only for a call that is
//! alerting here. Such an acknowledgement is recorded with the source `fleet` and is not sent
//! on again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use super::members::{Member, Members, OwnAcks, RemoteAck, Seen};
use super::message::{self, Address, Refused, ReplayGuard, Status};
use super::pinned;
use crate::alarm::{AuditAction, Event, Source};
use crate::alarm_task::{AlarmHandle, AlarmNotice};
use crate::graph::fleet::FleetSecrets;
use crate::graph::subscription::SubscriptionStatus;
use crate::store::{Store, StoreError};

/// How often a box tells the others it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The member table in the settings tree.
const MEMBERS_KEY: &str = "fleet/peers";
/// The office's choice: does an acknowledgement on another desk acknowledge here too?
const SILENCE_KEY: &str = "fleet/peer-acks-silence";
/// The path every console takes messages on.
pub const PATH: &str = "/fleet/peer";

/// The stored member table (empty when there is none or it does not read).
pub fn load_members(store: &Store) -> Members {
    store
        .settings
        .get(MEMBERS_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn save_members(store: &Store, members: &Members) -> Result<(), StoreError> {
    store
        .settings
        .insert(MEMBERS_KEY, &serde_json::json!(members))
}

/// Records where members are (a join). `fresh`: this box just joined a fleet, so the members
/// of any earlier one are forgotten.
pub fn remember_members(
    store: &Store,
    me: &str,
    addresses: Vec<Address>,
    fresh: bool,
) -> Result<(), StoreError> {
    let mut members = if fresh {
        Members::default()
    } else {
        load_members(store)
    };
    for address in addresses {
        members.learn(address, me);
    }
    save_members(store, &members)?;
    store.flush()
}

/// Whether an acknowledgement on another desk acknowledges here too (default: no).
pub fn silences(store: &Store) -> bool {
    store
        .settings
        .get(SILENCE_KEY)
        .ok()
        .flatten()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Saves the office's choice (see [`silences`]).
pub fn set_silences(store: &Store, on: bool) -> Result<(), StoreError> {
    store.settings.insert(SILENCE_KEY, &serde_json::json!(on))?;
    store.flush()
}

/// The peer channel of a running box; cheap to clone.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

struct Inner {
    me: String,
    /// The file of this box's console certificate, whose pin every status carries (read each
    /// time: a renewal replaces it).
    certificate_file: Option<PathBuf>,
    store: Store,
    alarm: AlarmHandle,
    subscription: Option<watch::Receiver<SubscriptionStatus>>,
    state: Mutex<State>,
    wake: Notify,
}

struct State {
    members: Members,
    own: OwnAcks,
    guard: ReplayGuard,
}

impl Peers {
    /// Starts the sender for box `me`, whose console serves `certificate_file` (its pin goes
    /// with every status; `None` over plain HTTP). `subscription` follows the link's keeper
    /// (its renewals are what the others are told; `None` without a cloud link); the task ends
    /// when the alarm does or it is aborted.
    pub fn start(
        me: &str,
        certificate_file: Option<PathBuf>,
        store: Store,
        alarm: AlarmHandle,
        subscription: Option<watch::Receiver<SubscriptionStatus>>,
    ) -> (Peers, JoinHandle<()>) {
        let notices = alarm.notices();
        let peers = Peers {
            inner: Arc::new(Inner {
                me: me.to_string(),
                certificate_file,
                state: Mutex::new(State {
                    members: load_members(&store),
                    own: OwnAcks::default(),
                    guard: ReplayGuard::default(),
                }),
                store,
                alarm,
                subscription,
                wake: Notify::new(),
            }),
        };
        let task = tokio::spawn(run(peers.inner.clone(), notices));
        (peers, task)
    }

    /// Takes a message another member sent (see [`message::open`]); acts on the
    /// acknowledgements it did not know, and installs the fleet's new secrets when it carries
    /// them (a rotation on the sender: the caller then restarts the cloud link with them).
    pub fn receive(&self, body: &[u8], now: DateTime<Utc>) -> Result<Heard, Refused> {
        let inner = &self.inner;
        let keys: Vec<_> = FleetSecrets::load(&inner.store)
            .ok()
            .flatten()
            .map(|f| f.peer_key)
            .into_iter()
            .collect();
        let (from, new, rotated) = {
            let Ok(mut state) = inner.state.lock() else {
                return Err(Refused::Malformed);
            };
            let mut status = message::open(body, &keys, &inner.me, &mut state.guard, now)?;
            let rotated = match status.rotated.take() {
                Some(bundle) => {
                    take_rotation(&inner.store, &mut state.members, &status.from, &bundle)?;
                    true
                }
                None => false,
            };
            // A member heard from for the first time in a while hears back at once, so two
            // boxes see each other without waiting for the next heartbeat (after a join, a
            // restart, a network coming back).
            let was_seen = state
                .members
                .members()
                .find(|m| m.address.name == status.from)
                .is_some_and(|m| matches!(Members::seen(m, now), Seen::Recently(_)));
            if !was_seen {
                inner.wake.notify_one();
            }
            let new = state.members.heard(&status, &inner.me, now);
            if let Err(error) = save_members(&inner.store, &state.members) {
                tracing::warn!(%error, "fleet: cannot keep the member table");
            }
            (status.from, new, rotated)
        };
        for ack in &new {
            tracing::info!(
                desk = ack.desk,
                who = ack.who.as_deref().unwrap_or("someone"),
                call = ack.key,
                "fleet: acknowledged on another desk"
            );
        }
        if !new.is_empty() && silences(&inner.store) {
            let alarm = inner.alarm.clone();
            tokio::spawn(acknowledge_here(alarm, new));
        }
        Ok(Heard { from, rotated })
    }

    /// Hands the fleet's new secrets (`bundle`, just rotated here) to every member but the
    /// `stolen` ones, sealed with the peer key of before (`old_key`, which they still hold);
    /// the stolen ones are forgotten here first, and the others forget them on receipt. Each
    /// member's name with what came of it: one not reached must join again.
    pub async fn hand_over(
        &self,
        old_key: &crate::secret::Secret,
        mut bundle: crate::graph::fleet::Bundle,
        stolen: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Result<(), String>)>, StoreError> {
        if let Ok(mut state) = self.inner.state.lock() {
            state
                .members
                .retain(|name| !stolen.iter().any(|s| s == name));
            save_members(&self.inner.store, &state.members)?;
        }
        self.inner.store.flush()?;
        let Some(mut status) = status_now(&self.inner, now) else {
            return Ok(Vec::new());
        };
        bundle.name = Some(self.inner.me.clone());
        bundle.members = status.members.clone();
        status.rotated = Some(bundle);
        let members = status.members.clone();
        let outcomes = post_all(members, message::seal(&status, old_key)).await;
        for (member, outcome) in &outcomes {
            match outcome {
                Ok(()) => tracing::warn!(member, "fleet: the new secrets were handed over"),
                Err(error) => tracing::error!(
                    member,
                    error,
                    "fleet: the new secrets could not be handed over: that box must join again"
                ),
            }
        }
        Ok(outcomes)
    }

    /// The members, by name.
    pub fn members(&self) -> Vec<Member> {
        self.inner
            .state
            .lock()
            .map(|s| s.members.members().cloned().collect())
            .unwrap_or_default()
    }

    /// Every member's address.
    pub fn addresses(&self) -> Vec<Address> {
        self.inner
            .state
            .lock()
            .map(|s| s.members.addresses())
            .unwrap_or_default()
    }

    /// Adds a member that joined through this box, and tells everyone now.
    pub fn learn(&self, address: Address) -> Result<(), StoreError> {
        if let Ok(mut state) = self.inner.state.lock() {
            state.members.learn(address, &self.inner.me);
            save_members(&self.inner.store, &state.members)?;
        }
        self.inner.store.flush()?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Reads the member table again from the store (after this box joined a fleet from its
    /// settings page) and tells the new members now.
    pub fn reload(&self) {
        if let Ok(mut state) = self.inner.state.lock() {
            state.members = load_members(&self.inner.store);
        }
        self.inner.wake.notify_one();
    }

    /// Forgets every member (this box left its fleet).
    pub fn forget_all(&self) -> Result<(), StoreError> {
        if let Ok(mut state) = self.inner.state.lock() {
            state.members.clear();
            save_members(&self.inner.store, &state.members)?;
        }
        self.inner.store.flush()
    }

    /// The acknowledgements other desks made of call `key`.
    pub fn acks_of(&self, key: &str) -> Vec<RemoteAck> {
        self.inner
            .state
            .lock()
            .map(|s| s.members.acks_of(key))
            .unwrap_or_default()
    }
}

/// What [`Peers::receive`] took in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The sending member.
    pub from: String,
    /// It handed over the fleet's new secrets (a rotation): they are stored, and the cloud
    /// link must restart to use them.
    pub rotated: bool,
}

/// Stores the fleet's new secrets and keys a member handed over after rotating them, and
/// forgets the members the rotation left out (a stolen box). A rotation of another fleet, or
/// one whose keys do not read, is refused and nothing changes.
fn take_rotation(
    store: &Store,
    members: &mut Members,
    from: &str,
    bundle: &crate::graph::fleet::Bundle,
) -> Result<(), Refused> {
    let ours = FleetSecrets::load(store).ok().flatten().map(|f| f.id);
    if ours.as_deref() != Some(bundle.fleet_id.as_str()) {
        return Err(Refused::OtherFleet);
    }
    match super::install::install_secrets(store, bundle) {
        Ok(true) => {}
        Ok(false) => return Err(Refused::RotationNotTaken),
        Err(error) => {
            tracing::error!(%error, "fleet: the new secrets cannot be stored");
            return Err(Refused::RotationNotTaken);
        }
    }
    members.retain(|name| name == from || bundle.members.iter().any(|m| m.name == name));
    if let Err(error) = save_members(store, members).and_then(|()| store.flush()) {
        tracing::warn!(%error, "fleet: cannot keep the member table");
    }
    tracing::warn!(
        from,
        "fleet: the fleet's secrets were rotated on another box: taken"
    );
    Ok(())
}

/// Acknowledges here the calls acknowledged elsewhere that are alerting here.
async fn acknowledge_here(alarm: AlarmHandle, acks: Vec<RemoteAck>) {
    for ack in acks {
        let alerting = alarm
            .view()
            .borrow()
            .display
            .calls
            .iter()
            .any(|c| c.key == ack.key && !c.acknowledged);
        if alerting {
            let who = format!(
                "{} on {}",
                ack.who.as_deref().unwrap_or("someone"),
                ack.desk
            );
            alarm
                .send(Event::Acknowledge {
                    source: Source::Fleet,
                    who: Some(who),
                })
                .await;
        }
    }
}

async fn run(inner: Arc<Inner>, mut notices: broadcast::Receiver<AlarmNotice>) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keeper = inner.subscription.clone();
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = inner.wake.notified() => {}
            // The others learn at once that this box renews (or no longer does).
            _ = keeper_changed(&mut keeper) => {}
            notice = notices.recv() => match notice {
                Ok(notice) => {
                    let record = &notice.record;
                    // Only acknowledgements made here: one heard from the fleet is not sent on.
                    if record.action != AuditAction::Acknowledged || record.source == Source::Fleet {
                        continue;
                    }
                    if let Ok(mut state) = inner.state.lock() {
                        state.own.add(&record.keys, record.who.clone(), record.at);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "fleet: fell behind the alarm's notices");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        send_all(&inner, Utc::now()).await;
    }
}

/// Resolves when the keeper's status changes; never without a keeper (or once it is gone).
async fn keeper_changed(feed: &mut Option<watch::Receiver<SubscriptionStatus>>) {
    let Some(status) = feed else {
        return std::future::pending().await;
    };
    if status.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sends this box's status to every member, all at once; an unreachable member is only
/// logged (the console shows it as "not seen since …" on the others).
async fn send_all(inner: &Inner, now: DateTime<Utc>) {
    let Some(key) = FleetSecrets::load(&inner.store)
        .ok()
        .flatten()
        .map(|f| f.peer_key)
    else {
        return;
    };
    let Some(status) = status_now(inner, now) else {
        return;
    };
    let members = status.members.clone();
    if members.is_empty() {
        return;
    }
    for (member, sent) in post_all(members, message::seal(&status, &key)).await {
        if let Err(error) = sent {
            tracing::debug!(
                member,
                error,
                "fleet: a member did not take this box's status"
            );
        }
    }
}

/// What this box says of itself at `now`: its renewals, its console's pin, the members it
/// knows and its recent acknowledgements. `None` when the member table cannot be read.
fn status_now(inner: &Inner, now: DateTime<Utc>) -> Option<Status> {
    let (renews, last_renewed) = match &inner.subscription {
        Some(feed) => {
            let status = feed.borrow();
            (status.subscription_id.is_some(), status.last_renewal)
        }
        None => (false, None),
    };
    let (members, acks) = match inner.state.lock() {
        Ok(mut state) => (state.members.addresses(), state.own.recent(now)),
        Err(_) => return None,
    };
    Some(Status {
        from: inner.me.clone(),
        sent_at: now,
        nonce: nonce(),
        renews,
        last_renewed,
        pin: inner
            .certificate_file
            .as_deref()
            .and_then(pinned::pin_of_file),
        members,
        acks,
        rotated: None,
    })
}

/// Posts the sealed `body` to every one of `members` at once, each over HTTPS pinned to its
/// certificate; each member's name with what came of it.
async fn post_all(members: Vec<Address>, body: String) -> Vec<(String, Result<(), String>)> {
    let mut sends = tokio::task::JoinSet::new();
    for member in members {
        let body = body.clone();
        sends.spawn(async move {
            let sent = async {
                let client = pinned::client(&member.pin, SEND_TIMEOUT)?;
                let response = client
                    .post(format!("{}{PATH}", member.url.trim_end_matches('/')))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| pinned::chain(&e))?;
                match response.status() {
                    s if s.is_success() => Ok(()),
                    s => Err(format!(
                        "{s}: {}",
                        response
                            .text()
                            .await
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect::<String>()
                    )),
                }
            }
            .await;
            (member.name, sent)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(sent) = sends.join_next().await {
        if let Ok(outcome) = sent {
            outcomes.push(outcome);
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    outcomes
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        let now = Utc::now().timestamp_nanos_opt().unwrap_or(0);
        bytes[..8].copy_from_slice(&now.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fleet::Bundle;

    fn address(name: &str) -> Address {
        Address {
            name: name.into(),
            url: format!("https://{name}.local:8443"),
            pin: "A".repeat(26),
        }
    }

    #[test]
    fn a_rotation_is_taken_only_for_this_fleet_and_leaves_the_stolen_box_out() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let fleet = FleetSecrets::load_or_create(&store).expect("fleet");
        let mut members = Members::default();
        for name in ["main", "stolen", "site-b"] {
            members.learn(address(name), "backup");
        }
        let mut rotated = Bundle::of(&store).expect("bundle");
        rotated.client_state = "new-state".into();
        rotated.members = vec![address("site-b")];

        let mut stranger = rotated.clone();
        stranger.fleet_id = "fleet-000000000000".into();
        assert_eq!(
            take_rotation(&store, &mut members, "main", &stranger),
            Err(Refused::OtherFleet)
        );
        let mut broken = rotated.clone();
        broken.keys = vec!["{\"id\": \"not a key\"}".into()];
        assert_eq!(
            take_rotation(&store, &mut members, "main", &broken),
            Err(Refused::RotationNotTaken)
        );
        let unchanged = FleetSecrets::load(&store).expect("read").expect("kept");
        assert_eq!(unchanged, fleet, "nothing taken from a refused rotation");
        assert_eq!(members.members().count(), 3);

        take_rotation(&store, &mut members, "main", &rotated).expect("taken");
        let taken = FleetSecrets::load(&store).expect("read").expect("kept");
        assert_eq!(taken.client_state.expose(), "new-state");
        let names: Vec<String> = members.members().map(|m| m.address.name.clone()).collect();
        assert_eq!(names, ["main", "site-b"], "the sender and those it names");
        assert_eq!(load_members(&store), members, "kept for a restart");
    }
}
