//! What a box knows of the other members of its fleet — pure (time passed in): where each
//! console is, when the box last heard from it, whether it renews the subscriptions and when
//! it last did, and the acknowledgements made on the others (by call key, the same on every
//! box). [`Members::heard`] takes an opened [`Status`] and says which acknowledgements are
//! new, so the adapter acts on each once however often heartbeats repeat it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::message::{Address, SharedAck, Status};
use crate::web::join_code;

/// A member not heard from for this long is shown as "not seen since …" (three heartbeats).
pub const SEEN_WITHIN_SECS: i64 = 90;
/// How long an acknowledgement is repeated in heartbeats and kept for the call page.
pub const ACK_KEPT_HOURS: i64 = 24;
/// At most this many members are kept (a fleet is a handful of desks; the bound only stops a
/// member with the fleet's key from growing the table without end).
pub const MAX_MEMBERS: usize = 64;
/// At most this many acknowledgements are kept.
pub const MAX_ACKS: usize = 256;

/// One other box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub address: Address,
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    pub renews: bool,
    #[serde(default)]
    pub last_renewed: Option<DateTime<Utc>>,
}

/// An acknowledgement made on another desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAck {
    pub key: String,
    /// The desk (box name) it was made on.
    pub desk: String,
    pub who: Option<String>,
    pub at: DateTime<Utc>,
}

/// How recently a member was heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Within [`SEEN_WITHIN_SECS`].
    Recently(DateTime<Utc>),
    /// Longer ago: "not seen since …".
    NotSince(DateTime<Utc>),
    /// Never heard from (known only from a join or another member).
    Never,
}

/// The table (kept in the store between restarts; see the adapter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    members: BTreeMap<String, Member>,
    #[serde(default)]
    acks: Vec<RemoteAck>,
}

impl Members {
    /// Adds or updates where a member is (a join, or another member naming it). `me` is this
    /// box's name: a box is never its own member.
    pub fn learn(&mut self, address: Address, me: &str) {
        if address.name == me || address.name.is_empty() {
            return;
        }
        if let Some(known) = self.members.get_mut(&address.name) {
            known.address = address;
            return;
        }
        if self.members.len() >= MAX_MEMBERS {
            return;
        }
        self.members.insert(
            address.name.clone(),
            Member {
                address,
                last_seen: None,
                renews: false,
                last_renewed: None,
            },
        );
    }

    /// Takes a status just opened (its MAC, time and nonce checked); returns the
    /// acknowledgements not known before. The sender's own entry is refreshed — with the pin of
    /// its console certificate when it gives one (a renewal) —, the members it names are learnt
    /// (the addresses it gives for itself and for this box are not taken: only a join sets
    /// those).
    pub fn heard(&mut self, status: &Status, me: &str, now: DateTime<Utc>) -> Vec<RemoteAck> {
        for address in &status.members {
            if address.name != status.from && !self.members.contains_key(&address.name) {
                self.learn(address.clone(), me);
            }
        }
        if let Some(member) = self.members.get_mut(&status.from) {
            member.last_seen = Some(now);
            // Its word on its own certificate is taken (a renewal); on its address, not.
            if let Some(pin) = status.pin.as_ref().filter(|pin| join_code::is_pin(pin)) {
                member.address.pin.clone_from(pin);
            }
            member.renews = status.renews;
            member.last_renewed = status.last_renewed.or(member.last_renewed);
        }
        let oldest = now - Duration::hours(ACK_KEPT_HOURS);
        let mut new = Vec::new();
        for ack in &status.acks {
            let known = self
                .acks
                .iter()
                .any(|a| a.key == ack.key && a.desk == status.from);
            if known || ack.at < oldest {
                continue;
            }
            let remote = RemoteAck {
                key: ack.key.clone(),
                desk: status.from.clone(),
                who: ack.who.clone(),
                at: ack.at,
            };
            self.acks.push(remote.clone());
            new.push(remote);
        }
        self.acks.retain(|a| a.at >= oldest);
        let excess = self.acks.len().saturating_sub(MAX_ACKS);
        self.acks.drain(..excess);
        new
    }

    /// The members, by name.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Every member's address (what a heartbeat tells the others).
    pub fn addresses(&self) -> Vec<Address> {
        self.members.values().map(|m| m.address.clone()).collect()
    }

    /// How recently `member` was heard from.
    pub fn seen(member: &Member, now: DateTime<Utc>) -> Seen {
        match member.last_seen {
            None => Seen::Never,
            Some(at) if now - at <= Duration::seconds(SEEN_WITHIN_SECS) => Seen::Recently(at),
            Some(at) => Seen::NotSince(at),
        }
    }

    /// The acknowledgements other desks made of call `key`.
    pub fn acks_of(&self, key: &str) -> Vec<RemoteAck> {
        self.acks.iter().filter(|a| a.key == key).cloned().collect()
    }

    /// Forgets the members `keep` does not accept (a stolen box, after a rotation).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.members.retain(|name, _| keep(name));
    }

    /// Forgets every member and acknowledgement (this box left its fleet).
    pub fn clear(&mut self) {
        *self = Members::default();
    }
}

/// The acknowledgements this box made, as its heartbeats repeat them: the last
/// [`ACK_KEPT_HOURS`], newest last, at most [`MAX_ACKS`].
#[derive(Debug, Clone, Default)]
pub struct OwnAcks {
    acks: Vec<SharedAck>,
}

impl OwnAcks {
    /// Adds acknowledgements made here of `keys`.
    pub fn add(&mut self, keys: &[String], who: Option<String>, at: DateTime<Utc>) {
        for key in keys {
            self.acks.retain(|a| &a.key != key);
            self.acks.push(SharedAck {
                key: key.clone(),
                who: who.clone(),
                at,
            });
        }
        let excess = self.acks.len().saturating_sub(MAX_ACKS);
        self.acks.drain(..excess);
    }

    /// What a heartbeat sent at `now` carries.
    pub fn recent(&mut self, now: DateTime<Utc>) -> Vec<SharedAck> {
        let oldest = now - Duration::hours(ACK_KEPT_HOURS);
        self.acks.retain(|a| a.at >= oldest);
        self.acks.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
    }

    fn address(name: &str) -> Address {
        Address {
            name: name.into(),
            url: format!("https://{name}.example:8443"),
            pin: "B".repeat(26),
        }
    }

    fn status(from: &str, sent_at: DateTime<Utc>) -> Status {
        Status {
            from: from.into(),
            sent_at,
            nonce: "n".into(),
            renews: true,
            last_renewed: Some(sent_at),
            pin: None,
            members: vec![],
            acks: vec![],
            rotated: None,
        }
    }

    #[test]
    fn a_member_is_seen_then_not_seen_since() {
        let mut table = Members::default();
        table.learn(address("main"), "backup");
        table.learn(address("backup"), "backup");
        let main = table.members().next().expect("main").clone();
        assert_eq!(table.members().count(), 1, "never its own member");
        assert_eq!(Members::seen(&main, at(0)), Seen::Never);
        table.heard(&status("main", at(0)), "backup", at(1));
        let main = table.members().next().expect("main").clone();
        assert!(main.renews);
        assert_eq!(main.last_renewed, Some(at(0)));
        assert_eq!(
            Members::seen(&main, at(1 + SEEN_WITHIN_SECS)),
            Seen::Recently(at(1))
        );
        assert_eq!(
            Members::seen(&main, at(2 + SEEN_WITHIN_SECS)),
            Seen::NotSince(at(1))
        );
    }

    #[test]
    fn members_named_by_another_are_learnt_but_its_word_on_itself_and_me_is_not() {
        let mut table = Members::default();
        table.learn(address("main"), "backup");
        let mut heard = status("main", at(0));
        let mut moved = address("main");
        moved.url = "https://evil.example".into();
        let mut me = address("backup");
        me.url = "https://elsewhere".into();
        heard.members = vec![address("east"), moved, me];
        table.heard(&heard, "backup", at(0));
        let names: Vec<&str> = table.members().map(|m| m.address.name.as_str()).collect();
        assert_eq!(names, ["east", "main"]);
        assert!(table
            .addresses()
            .iter()
            .all(|a| a.url != "https://evil.example"));
    }

    #[test]
    fn a_member_that_renewed_its_certificate_is_reached_with_its_new_pin() {
        let mut table = Members::default();
        table.learn(address("main"), "backup");
        let renewed = "C".repeat(26);
        let mut heard = status("main", at(0));
        heard.pin = Some(renewed.clone());
        table.heard(&heard, "backup", at(0));
        assert_eq!(table.addresses()[0].pin, renewed);
        assert_eq!(table.addresses()[0].url, "https://main.example:8443");
        // Not a pin: kept as it was.
        heard.pin = Some("not a pin".into());
        table.heard(&heard, "backup", at(1));
        assert_eq!(table.addresses()[0].pin, renewed);
        // A member it names cannot change another's pin, only its own status can.
        let mut other = status("east", at(2));
        let mut moved = address("main");
        moved.pin = "D".repeat(26);
        other.members = vec![moved];
        table.heard(&other, "backup", at(2));
        assert_eq!(table.addresses()[0].pin, renewed);
    }

    #[test]
    fn an_acknowledgement_is_new_once_per_desk_and_call() {
        let mut table = Members::default();
        table.learn(address("main"), "backup");
        let mut heard = status("main", at(0));
        heard.acks = vec![SharedAck {
            key: "call-1".into(),
            who: Some("sam".into()),
            at: at(0),
        }];
        let new = table.heard(&heard, "backup", at(0));
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].desk, "main");
        assert!(
            table.heard(&heard, "backup", at(30)).is_empty(),
            "a heartbeat repeats it"
        );
        heard.from = "east".into();
        assert_eq!(table.heard(&heard, "backup", at(31)).len(), 1);
        assert_eq!(table.acks_of("call-1").len(), 2);
        assert!(table.acks_of("call-2").is_empty());
        // A day later it is forgotten, and an old one is not taken as new.
        heard.from = "west".into();
        assert!(table
            .heard(&heard, "backup", at(ACK_KEPT_HOURS * 3600 + 1))
            .is_empty());
        assert!(table.acks_of("call-1").is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = Members::default();
        for i in 0..(MAX_MEMBERS + 10) {
            table.learn(address(&format!("box-{i}")), "me");
        }
        assert_eq!(table.members().count(), MAX_MEMBERS);
        let mut own = OwnAcks::default();
        let keys: Vec<String> = (0..MAX_ACKS + 5).map(|i| format!("k{i}")).collect();
        own.add(&keys, None, at(0));
        assert_eq!(own.recent(at(1)).len(), MAX_ACKS);
        assert!(own.recent(at(ACK_KEPT_HOURS * 3600 + 1)).is_empty());
    }
}
