//! # Beacon — crate map
//!
//! Beacon watches a Microsoft Teams service account's chat messages (Graph change
//! notifications delivered into an Azure Event Hub, read over the Kafka protocol) and raises
//! a local alarm when someone dials an emergency number. Read `ARCHITECTURE.md` in the shared
//! docs for the whole flow; this is where each part lives.
//!
//! One emergency's path, in order:
//!
//! | step | module | IO? |
//! |---|---|---|
//! | connection string → Kafka settings | [`eventhub::connection`] | no |
//! | poll the hub; flush, then commit (own thread) | [`eventhub::consumer`] | Kafka (rdkafka), threads |
//! | record body → notification items | [`graph::notification`] | no |
//! | `clientState` check | [`graph::client_state`] | no |
//! | decrypt rich content | [`graph::crypto`] | no |
//! | de-dup key, durable inbox, hand-off | [`ingest`], [`ingest::dedupe`] | store |
//! | fetch the message (basic notifications) | [`recognise`] → [`graph::client`] | HTTP |
//! | classify and extract the call | [`emergency`] | no |
//! | raise the alarm, record the call | [`recognise`] → [`alarm_task`], [`calls`] (the typed call log) | store |
//! | alarm state machine | [`alarm`] | no |
//! | strobe, siren, trouble relays; button; OLED | [`outputs`] over [`hw`] (`sim`, `linux`) | GPIO, I2C |
//! | follow the alarm's notices: MQTT + Home Assistant | [`outputs::mqtt`] | MQTT (rumqttc) |
//! | follow the alarm's notices: outbox → e-mail, SMS, webhooks, PagerDuty | [`outputs::notify`] | store, SMTP, HTTP |
//!
//! Keeping the feed alive: [`graph::auth`] (device code, refresh, via `oauth2`),
//! [`graph::tokens`] (token keeper), [`graph::account`] (`GET /me`), [`graph::schedule`]
//! (pure subscription schedule) and [`graph::subscription`] (the keeper, leaderless: every box
//! of a fleet creates, adopts on 409 and renews the one subscription), [`graph::fleet`] (the
//! secrets the boxes of one organisation share; joined with [`web::join_code`], the settings
//! page or `beacon fleet-join`; the members' last seen and shared acknowledgements travel
//! console to console through [`outputs::peers`]), [`graph::resync`] (reading the chats from Graph),
//! [`graph::reconcile`] (the poll that reads them every 30 s and after gaps: push is never
//! trusted alone), [`graph::retry`] (Retry-After, backoff), [`graph::aadsts`] (errors in
//! words). The second source: [`graph::emergency_events`] (Graph emergency call events:
//! subscription body and decoding), [`graph::call_events`] (its cloud side: `[call_events]`,
//! the app-only token with the appliance's certificate or the secret, the keeper of one
//! subscription per emergency calling policy) and [`recognise::correlate`] (one call, one
//! incident, whichever source comes first).
//!
//! Around it: [`config`] (TOML + systemd credentials + `BEACON_*` overrides, validated;
//! unknown keys left out by the tolerant load), [`trust`] (the CAs every TLS client trusts:
//! the system's and `[tls] ca_files`), [`store`] (sled trees, 0700/0600, no domain types; a
//! damaged store recovered at open from the keepsake beside it; small state files beside it
//! that sled cannot lose, such as the alarm's), [`secret`] (values that never
//! print), [`health`] (counters; the supervisor that turns faults into troubles within 60 s;
//! per-path supervision of the calls each path reported or missed), [`feeds`] (the parts' statuses
//! as the display, console and supervisor follow them), [`commands`] (`beacon parse`),
//! [`cloud_settings`] (what the setup wizard saved, laid over the file), [`service_manager`]
//! (systemd readiness, status and the watchdog fed only while the pipeline turns),
//! [`hw::failsafe`] (outputs de-energised on a panic), [`logging`] (journald natively under
//! systemd, plain lines elsewhere).
//!
//! Beside the call path: [`web`] (the console: setup, dashboard, calls, API, SSE, metrics,
//! floor plans with the caller's zone marked).
//!
//! On top: [`app`], the one assembly of the appliance ([`app::Appliance`], used by `beacon
//! run`, `beacon demo` and the tests; shutdown passed in as a future; one start-failure
//! policy), the cloud link (sign-in, subscription, recognition and consumer as one restartable
//! unit), the configuration `beacon run` falls back to when the file does not load
//! ([`app::fallback`]) and the `login`, `replay` and `demo` commands. The command line is in
//! `main.rs`.
//!
//! Layers point down: a module imports only from the modules below it on this page's path and
//! its own children — `secret`, `store` → `graph` → `ingest` → `emergency` → `recognise` →
//! `alarm` → `outputs` → `feeds`, `health` → `web` → `app`. Nothing but `main.rs` names
//! `crate::app`; `../shared/tools/cycles.py .` lists any import cycle between files.
//!
//! Rules that hold everywhere: the core is pure (time is passed in); outputs never wait for
//! the disk or the network; an offset is committed only after what it carried is flushed to
//! disk; nothing secret reaches a log, error or response; input never panics the process.

pub mod alarm;
pub mod alarm_task;
pub mod app;
pub mod build_info;
pub mod calls;
pub mod cloud_settings;
pub mod commands;
pub mod config;
pub mod emergency;
pub mod eventhub;
pub mod feeds;
pub mod graph;
pub mod health;
pub mod hw;
pub mod ingest;
pub mod local_time;
pub mod logging;
pub mod outputs;
pub mod recognise;
pub mod secret;
pub mod service_manager;
pub mod store;
pub mod trust;
pub mod web;
pub mod wording;
