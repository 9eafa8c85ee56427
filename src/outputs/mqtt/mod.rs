//! MQTT: Beacon's state, one event per alarm transition and the last call on a broker, the
//! acknowledge and test commands from it, and Home Assistant discovery — a follower of the
//! alarm, never in its way (the outputs fire first; MQTT publishes what already happened).
//!
//! The adapter is split the way rumqttc splits `MqttState` from `EventLoop`:
//!
//! * [`publisher`] — every decision: inputs (connection, alarm notices and view, call
//!   records, commands' effects, the clock) in, actions (publish, subscribe, tell the alarm,
//!   run a command, look up a record, disconnect) out, and the [`MqttStatus`]; no IO, time
//!   passed in.
//! * [`handle`] — [`spawn`], the [`MqttHandle`] (status, shutdown) and the thin loop that
//!   feeds the publisher and carries out its actions.
//! * [`connection`] — rumqttc: the client options (will, clean session, credentials, TLS)
//!   and the event loop polled with backoff.
//!
//! What the publisher builds on (all pure but `tls`):
//!
//! * [`config`] — the `[mqtt]` section and its validation.
//! * [`topics`] — the topic layout under `<base>/<device-id>/…`.
//! * [`payloads`] — the JSON of state, call, trouble, event and command results.
//! * [`discovery`] — Home Assistant discovery configs.
//! * [`commands`] — the command parser and its rejections.
//! * [`link`] — broker-down supervision: trouble after `trouble_after_secs`.
//! * [`tls`] — rustls on ring with the configured CA.
//!
//! Tests: the decisions in `publisher`'s unit tests, without a broker; connecting, the will,
//! TLS, discovery as the broker keeps it and the command round trip against Mosquitto
//! (`tests/mqtt/adapter.rs`, `tests/mqtt/tls.rs`, `tests/process/mqtt_process.rs`).
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
