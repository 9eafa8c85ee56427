//! Tests of the console in process: routes, sessions, HTTPS, secrets, and a real headless Chromium.
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod fleet_join;
mod fleet_peers;
mod web_access;
mod web_browser;
mod web_call_events;
mod web_floor_plans;
mod web_https;
mod web_limits;
mod web_metrics;
mod web_secrets;
mod web_time_zone;
