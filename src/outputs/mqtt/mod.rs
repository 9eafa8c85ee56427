//! MQTT: Beacon's state, one event per alarm transition and the last call on a broker, the
//! acknowledge and test commands from it, and Home Assistant discovery — a follower of the
//! alarm, never in its way (the outputs fire first; MQTT publishes what already happened).
//!
//! * [`config`] — the `[mqtt]` section and its validation.
//! * [`topics`] — the topic layout under `<base>/<device-id>/…` (pure).
//! * [`payloads`] — the JSON of state, call, trouble, event and command results (pure).
//! * [`discovery`] — Home Assistant discovery configs (pure).
//! * [`commands`] — the command parser and its rejections (pure).
//! * [`link`] — broker-down supervision: trouble after `trouble_after_secs` (pure).
//! * [`publisher`] — the adapter's decisions: events in, actions out, time passed in (pure).
//! * [`tls`] — rustls on ring with the configured CA.
//! * [`handle`] — the adapter: rumqttc client and event loop, reconnection, re-publication.
//!
//! The README's MQTT section documents the topics and payloads for the people wiring to them.

pub mod commands;
pub mod config;
pub mod connection;
pub mod discovery;
pub mod handle;
pub mod link;
pub mod payloads;
pub mod publisher;
pub mod tls;
pub mod topics;

pub use config::MqttConfig;
pub use handle::{spawn, MqttHandle};
pub use publisher::{MqttStatus, LAG_COMPONENT, TROUBLE_COMPONENT};
