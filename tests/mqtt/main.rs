//! Tests of the MQTT adapter against the real Mosquitto of `scripts/test-env` (plain, and TLS
//! with a password); its decisions are unit-tested without a broker in
//! `src/outputs/mqtt/publisher/tests.rs`.
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod adapter;
mod metrics;
mod tls;
