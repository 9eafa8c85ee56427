//! Tests against the real Kafka-protocol broker with SASL_SSL started by `scripts/test-env`.
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod alarm_board;
mod appliance;
mod end_to_end;
mod eventhub_ingest;
mod fake_cloud_calls;
mod fake_cloud_selftest;
mod trust_store;
mod two_sources;
