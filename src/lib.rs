//! # Beacon — crate map
//!
//! Beacon watches a Microsoft Teams service account's chat messages (Graph change
//! notifications delivered into an Azure Event Hub, read over the Kafka protocol) and raises
//! a local alarm when someone dials an emergency number. Read `ARCHITECTURE.md` in the shared
//! docs for the whole flow; this is where each part lives.
//!
//! One record's path, in order:
//!
//! | step | module | IO? |
//! |---|---|---|
//! | connection string → Kafka settings | [`eventhub::connection`] | no |
//! | poll the hub, batch, flush, commit | [`eventhub::consumer`] | Kafka (rdkafka), thread |
//! | record body → notification items | [`graph::notification`] | no |
//! | `clientState` check | [`graph::client_state`] | no |
//! | decrypt rich content | [`graph::crypto`] | no |
//! | de-dup key, inbox, hand-off | [`ingest`], [`ingest::dedupe`] | store |
//! | record / (later) recognise | [`ingest::stage`] | store |
//!
//! The alarm on the desk: [`alarm`] is the pure state machine (idle → alerting →
//! acknowledged → cleared, trouble overlay, escalation, restore after restart).
//!
//! Around it: [`config`] (TOML + `BEACON_*` overrides, validated), [`store`] (sled trees,
//! 0700/0600), [`secret`] (values that never print), [`health`] (counters), [`app`] (wiring,
//! `run`, `replay`, shutdown). The command line is in `main.rs`.
//!
//! Rules that hold everywhere: the core is pure (time is passed in); an offset is committed
//! only after what it carried is flushed to disk; nothing secret reaches a log, error or
//! response; input never panics the process.

pub mod alarm;
pub mod alarm_service;
pub mod app;
pub mod commands;
pub mod config;
pub mod emergency;
pub mod eventhub;
pub mod graph;
pub mod health;
pub mod ingest;
pub mod outputs;
pub mod recognise;
pub mod secret;
pub mod store;
