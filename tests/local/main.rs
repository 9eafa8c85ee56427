//! Tests against fakes on loopback: the fake Microsoft cloud (sign-in, Graph, subscriptions), fake
//! notification channels (Twilio, webhooks, PagerDuty, Teams, Slack), a real SMTP server, and
//! the store on disk (damaged and recovered).
//!
//! One test binary per kind of need (see `tests/README.md`); each file below was a binary of
//! its own.

#[path = "../support/mod.rs"]
mod support;

mod alarm_state_file;
mod call_events;
mod graph_reconcile;
mod graph_signin;
mod graph_subscription;
mod notify_channels;
mod notify_email;
mod notify_escalation;
mod notify_outbox;
mod recognise_concurrency;
mod store_recovery;
