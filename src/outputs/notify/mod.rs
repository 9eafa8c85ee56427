//! Notifications beyond the appliance: e-mail, SMS, webhooks, Teams and Slack channels and
//! PagerDuty, sent through a durable outbox so that nothing is lost to a restart or an outage
//! and nothing is sent twice.
//!
//! | concern | file | IO? |
//! |---|---|---|
//! | `[notify]` settings and validation | [`config`] | no |
//! | what a message is about (alarm, test, escalation, …) | [`message_kind`] | no |
//! | message texts with `{variables}` | [`templates`] | no |
//! | which messages a transition produces, for whom | [`plan`] | no |
//! | durable queue, retry schedule, expiry | [`outbox`] | store |
//! | channel names, permanent vs retryable failures | [`channel`] | no |
//! | when a failing channel is a trouble | [`health`] | no |
//! | SMTP (lettre, rustls) | [`email`] | SMTP |
//! | Twilio SMS | [`twilio`] | HTTP |
//! | JSON webhook with HMAC signature | [`webhook`] | HTTP |
//! | Teams Workflows (Adaptive Card), Slack | [`teams`], [`slack`] | HTTP |
//! | PagerDuty Events v2 | [`pagerduty`] | HTTP |
//! | shared HTTP client and answer classification | [`http`] | HTTP |
//! | the configured senders | [`send`] | — |
//! | delivery attempts counted per channel and outcome | [`tally`] | no |
//! | follow the alarm, enqueue, deliver, report trouble | [`task`] | tokio |
//!
//! Secrets (SMTP password, Twilio auth token, PagerDuty routing key, webhook URLs and HMAC
//! secret) are [`crate::secret::Secret`]s: they reach the wire and nothing else — not the
//! outbox, the logs, the errors or the timeline.

pub mod channel;
pub mod config;
pub mod email;
pub mod health;
pub mod http;
pub mod message_kind;
pub mod outbox;
pub mod pagerduty;
pub mod plan;
pub mod send;
pub mod slack;
pub mod tally;
pub mod task;
pub mod teams;
pub mod templates;
pub mod twilio;
pub mod webhook;

pub use config::NotifyConfig;
pub use task::Notifier;
