//! The boxes of one fleet talking to each other (issue 17): each box's console shows the
//! others — name, last seen, whether it renews the fleet's subscriptions and when it last
//! did — and an acknowledgement on one desk is shown on the others ("acknowledged on
//! main-desk by sam at 14:05"; whether it also acknowledges there is the office's choice).
//!
//! **The channel: HTTPS between the consoles**, chosen over the hub and over MQTT because it
//! needs nothing a box does not already have. The Event Hub is read-only for Beacon (its
//! connection string may only listen) and carries Microsoft's notifications; MQTT is
//! optional and per site. Every box already serves its console over HTTPS with a certificate
//! whose pin a join code carries, so: a joining box tells the box it joins through its
//! console port and certificate pin (the address is the one it connected from), and gets
//! back the other members; each heartbeat repeats the members its sender knows, so a box that
//! joined through one member learns the rest. Every message is signed with the fleet's peer
//! key (HMAC-SHA256, distributed with the fleet's secrets at join time) and carries its send
//! time and a nonce: tampered, stale and replayed messages are refused. Boxes at sites that
//! cannot reach each other simply show "not seen since …" — not a trouble: a backup desk's
//! alarm never depends on its peers.
//!
//! * [`message`] — the status a box sends, sealed and opened (pure).
//! * [`members`] — the member table, last seen, the acknowledgements heard (pure, time passed
//!   in).
//! * [`link`] — the sender task and the receiving side the console calls ([`Peers`]).
//! * [`install`] — storing the fleet's secrets handed to this box (a join, a rotation).
//! * [`joining`] — the joining box's side of a join (`beacon fleet-join` and the settings
//!   page).
//! * [`pinned`] — HTTPS that trusts exactly the certificate a pin names.

pub mod install;
pub mod joining;
pub mod link;
pub mod members;
pub mod message;
pub mod pinned;

pub use link::{Peers, HEARTBEAT};
