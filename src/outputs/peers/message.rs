//! The one message boxes of a fleet send each other, sealed and opened — pure (time passed in).
//!
//! Every message is a box's *status*: its name, the pin of its console certificate now,
//! whether it renews the fleet's subscriptions and when it last did, the members it knows (name, console URL, certificate pin — so a box
//! that joined through one member learns the others) and the acknowledgements made on it
//! recently. One kind of message keeps the receiver simple and makes every heartbeat a retry
//! of the acknowledgements a lost message carried. Right after a rotation (a stolen box), the
//! status sent to each remaining member also carries the fleet's new secrets.
//!
//! On the wire: `{"payload": "<the status as JSON>", "mac": "<base64 HMAC-SHA256>"}`, the MAC
//! over the payload's bytes with the fleet's peer key ([`crate::graph::fleet::FleetSecrets`]).
//! [`open`] refuses, in this order: a wrong MAC (tampered, or another fleet's key), a message
//! sent more than [`MAX_SKEW_SECS`] from now (stale: an old message played again, or a clock
//! far off), a message claiming to be from this box, and a nonce already seen from that box
//! within the window ([`ReplayGuard`]: replayed).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// How far a message's send time may be from the receiver's clock.
pub const MAX_SKEW_SECS: i64 = 120;
/// Longest member name kept (a device id).
const NAME_CHARS: usize = 64;

pub use crate::graph::fleet::MemberAddress as Address;

/// An acknowledgement made on the sending box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedAck {
    /// The call's key (chat id + message id: the same on every box).
    pub key: String,
    /// Who acknowledged (a console user, an MQTT client), when known.
    pub who: Option<String>,
    pub at: DateTime<Utc>,
}

/// What a box says of itself (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub from: String,
    pub sent_at: DateTime<Utc>,
    /// Random, once per message: what the replay guard remembers.
    pub nonce: String,
    /// Whether its link runs the subscription keeper (every box of a fleet does when signed
    /// in: the design is leaderless).
    #[serde(default)]
    pub renews: bool,
    /// When it last created, adopted or renewed the fleet's subscription.
    #[serde(default)]
    pub last_renewed: Option<DateTime<Utc>>,
    /// The pin of the sender's console certificate now: a renewal changes it, and the others
    /// take the new one from here (the fleet's MAC vouches for it) instead of losing the box.
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub members: Vec<Address>,
    #[serde(default)]
    pub acks: Vec<SharedAck>,
    /// The fleet's new secrets and keys, sent once to each member right after a rotation on
    /// the sender (sealed with the key of before, which the receiver still holds; over HTTPS
    /// pinned to the receiver's certificate, so no one else reads them). Its `members` are the
    /// fleet's members from now on: a stolen box is not among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated: Option<crate::graph::fleet::Bundle>,
}

/// The sealed form.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    payload: String,
    mac: String,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a fleet message")]
    Malformed,
    #[error("its signature does not match the fleet's key (tampered, or another fleet)")]
    Tampered,
    #[error("sent at {sent_at}, more than {MAX_SKEW_SECS} s from this box's clock (stale, or a clock far off)")]
    Stale { sent_at: DateTime<Utc> },
    #[error("it names this box as its sender")]
    FromSelf,
    #[error("already received (replayed)")]
    Replayed,
    #[error("it hands over the secrets of another fleet")]
    OtherFleet,
    #[error("the new secrets it hands over do not read, or cannot be stored here")]
    RotationNotTaken,
}

/// Seals `status` with `key`.
pub fn seal(status: &Status, key: &Secret) -> String {
    let payload = serde_json::to_string(status).unwrap_or_default();
    let mac = B64.encode(mac(key, payload.as_bytes()));
    serde_json::to_string(&Wire { payload, mac }).unwrap_or_default()
}

/// Opens a sealed message with any of `keys` (the current one first), checked as the module
/// docs say. `me` is this box's name; `guard` remembers the nonces.
pub fn open<'k>(
    body: &[u8],
    keys: impl IntoIterator<Item = &'k Secret>,
    me: &str,
    guard: &mut ReplayGuard,
    now: DateTime<Utc>,
) -> Result<Status, Refused> {
    let wire: Wire = serde_json::from_slice(body).map_err(|_| Refused::Malformed)?;
    let presented = B64
        .decode(wire.mac.trim())
        .map_err(|_| Refused::Malformed)?;
    let genuine = keys.into_iter().any(|key| {
        let expected = mac(key, wire.payload.as_bytes());
        expected.len() == presented.len() && openssl::memcmp::eq(&expected, &presented)
    });
    if !genuine {
        return Err(Refused::Tampered);
    }
    let mut status: Status = serde_json::from_str(&wire.payload).map_err(|_| Refused::Malformed)?;
    if (status.sent_at - now).num_seconds().abs() > MAX_SKEW_SECS {
        return Err(Refused::Stale {
            sent_at: status.sent_at,
        });
    }
    status.from = status.from.chars().take(NAME_CHARS).collect();
    if status.from == me {
        return Err(Refused::FromSelf);
    }
    guard.admit(&status.from, &status.nonce, status.sent_at, now)?;
    Ok(status)
}

/// The nonces seen within the skew window, per sender: a message seen once is refused the
/// second time. Entries older than the window are dropped (a message that old is stale
/// anyway), so the guard stays as small as the traffic of four minutes.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<(String, String), DateTime<Utc>>,
}

impl ReplayGuard {
    fn admit(
        &mut self,
        from: &str,
        nonce: &str,
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let window = Duration::seconds(MAX_SKEW_SECS);
        self.seen.retain(|_, at| now - *at <= window);
        let key = (from.to_string(), nonce.to_string());
        if self.seen.contains_key(&key) {
            return Err(Refused::Replayed);
        }
        self.seen.insert(key, sent_at.max(now));
        Ok(())
    }

    /// Nonces remembered (for tests and the bound).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// HMAC-SHA256 of `data` with `key`. OpenSSL's HMAC does not fail for a SHA-256 digest and a
/// key of any length; if it ever did, the empty MAC below matches no genuine one.
fn mac(key: &Secret, data: &[u8]) -> Vec<u8> {
    let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let pkey = openssl::pkey::PKey::hmac(key.expose().as_bytes())?;
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
        signer.update(data)?;
        signer.sign_to_vec()
    };
    sign().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
    }

    fn status(from: &str, nonce: &str, sent_at: DateTime<Utc>) -> Status {
        Status {
            from: from.into(),
            sent_at,
            nonce: nonce.into(),
            renews: true,
            last_renewed: Some(sent_at - Duration::seconds(12)),
            pin: Some("C".repeat(26)),
            members: vec![Address {
                name: "backup".into(),
                url: "https://10.0.0.2:8443".into(),
                pin: "A".repeat(26),
            }],
            acks: vec![SharedAck {
                key: "chat|msg".into(),
                who: Some("sam".into()),
                at: sent_at,
            }],
            rotated: None,
        }
    }

    fn key() -> Secret {
        Secret::new("the fleet's peer key")
    }

    #[test]
    fn a_sealed_status_opens_once_with_the_fleets_key() {
        let mut guard = ReplayGuard::default();
        let sent = status("main", "n1", at(0));
        let wire = seal(&sent, &key());
        let opened = open(wire.as_bytes(), [&key()], "backup", &mut guard, at(3));
        assert_eq!(opened, Ok(sent));
        assert_eq!(
            open(wire.as_bytes(), [&key()], "backup", &mut guard, at(4)),
            Err(Refused::Replayed)
        );
    }

    #[test]
    fn a_previous_key_still_opens_and_another_fleets_does_not() {
        let mut guard = ReplayGuard::default();
        let wire = seal(&status("main", "n1", at(0)), &key());
        let other = Secret::new("another fleet");
        assert_eq!(
            open(wire.as_bytes(), [&other], "backup", &mut guard, at(0)),
            Err(Refused::Tampered)
        );
        assert!(open(
            wire.as_bytes(),
            [&other, &key()],
            "backup",
            &mut guard,
            at(0)
        )
        .is_ok());
    }

    #[test]
    fn a_tampered_payload_or_mac_is_refused() {
        let mut guard = ReplayGuard::default();
        let wire = seal(&status("main", "n1", at(0)), &key());
        let changed = wire.replace("sam", "eve");
        assert_ne!(changed, wire);
        assert_eq!(
            open(changed.as_bytes(), [&key()], "backup", &mut guard, at(0)),
            Err(Refused::Tampered)
        );
        let mut parsed: serde_json::Value = serde_json::from_str(&wire).expect("json");
        parsed["mac"] = serde_json::json!(B64.encode([0u8; 32]));
        assert_eq!(
            open(
                parsed.to_string().as_bytes(),
                [&key()],
                "backup",
                &mut guard,
                at(0)
            ),
            Err(Refused::Tampered)
        );
        assert_eq!(
            open(b"{\"hello\":1}", [&key()], "backup", &mut guard, at(0)),
            Err(Refused::Malformed)
        );
        assert_eq!(
            open(b"\xff\x00", [&key()], "backup", &mut guard, at(0)),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn stale_and_future_messages_are_refused_and_an_old_replay_is_stale() {
        let mut guard = ReplayGuard::default();
        let wire = seal(&status("main", "n1", at(0)), &key());
        assert!(open(
            wire.as_bytes(),
            [&key()],
            "backup",
            &mut guard,
            at(MAX_SKEW_SECS)
        )
        .is_ok());
        // The guard forgot it, but the window refuses it.
        assert_eq!(
            open(
                wire.as_bytes(),
                [&key()],
                "backup",
                &mut guard,
                at(MAX_SKEW_SECS + 1)
            ),
            Err(Refused::Stale { sent_at: at(0) })
        );
        let future = seal(&status("main", "n2", at(MAX_SKEW_SECS + 100)), &key());
        assert!(matches!(
            open(future.as_bytes(), [&key()], "backup", &mut guard, at(0)),
            Err(Refused::Stale { .. })
        ));
    }

    #[test]
    fn own_messages_are_refused_and_the_guard_stays_small() {
        let mut guard = ReplayGuard::default();
        let wire = seal(&status("backup", "n1", at(0)), &key());
        assert_eq!(
            open(wire.as_bytes(), [&key()], "backup", &mut guard, at(0)),
            Err(Refused::FromSelf)
        );
        for i in 0..100 {
            let wire = seal(&status("main", &format!("n{i}"), at(i * 30)), &key());
            assert!(open(wire.as_bytes(), [&key()], "backup", &mut guard, at(i * 30)).is_ok());
        }
        assert!(guard.len() <= 5, "{} nonces kept", guard.len());
    }

    #[test]
    fn the_same_nonce_from_two_boxes_is_two_messages() {
        let mut guard = ReplayGuard::default();
        for from in ["main", "east"] {
            let wire = seal(&status(from, "n1", at(0)), &key());
            assert!(open(wire.as_bytes(), [&key()], "backup", &mut guard, at(0)).is_ok());
        }
    }
}
