//! `/metrics`: the appliance in Prometheus' text exposition format (same login as the API),
//! named and typed as Prometheus documents it: `_total` counters for everything counted
//! (records, refusals, rejected MQTT commands, deliveries per channel and outcome),
//! `_timestamp_seconds` gauges for moments, one series per state for the alarm, no sentinel
//! values (a series not known yet is left out), `beacon_build_info`, and the standard
//! `process_*` metrics.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the route; [`Readings`] gathered from the console's context; [`render`] (pure) |
//! | `exposition.rs` | the text format: families, HELP, TYPE, labels, escaping |
//! | `process.rs` | `process_*` from `/proc/self` |
//!
//! A new figure is one more line in [`render`] (and, if it comes from a new part, one more
//! field in [`Readings`]).

pub mod exposition;
pub mod process;

use chrono::Utc;
use warp::http::header;
use warp::reply::{Reply, Response};

use self::exposition::{Exposition, Kind, Sample};
use self::process::ProcessStats;
use super::respond::Audience;
use super::session::Role;
use super::state::{Caller, Web};
use super::status::{self, Status};
use crate::alarm::AlarmState;
use crate::build_info;
use crate::health::IngestSnapshot;
use crate::outputs::mqtt::MqttStatus;
use crate::outputs::notify::channel::Channel;
use crate::outputs::notify::tally::Outcome;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn show(web: &Web, caller: &Caller) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    let text = render(&Readings::gather(web));
    warp::reply::with_header(text, header::CONTENT_TYPE, CONTENT_TYPE).into_response()
}

/// Everything `/metrics` shows, read at one moment.
#[derive(Debug, Clone)]
pub struct Readings {
    pub status: Status,
    pub ingest: IngestSnapshot,
    /// `None` when MQTT is off.
    pub mqtt: Option<MqttStatus>,
    /// Attempts per configured channel and outcome; empty when no channel is configured.
    pub deliveries: Vec<(Channel, Outcome, u64)>,
    /// `None` where `/proc` cannot be read.
    pub process: Option<ProcessStats>,
}

impl Readings {
    /// Reads the console's context and `/proc/self` now.
    pub fn gather(web: &Web) -> Readings {
        let context = &web.context;
        Readings {
            status: status::read(context, Utc::now()),
            ingest: context.counters.snapshot(),
            mqtt: context.status.mqtt.as_ref().map(|m| m.borrow().clone()),
            deliveries: context
                .deliveries
                .as_ref()
                .map(|tally| tally.snapshot())
                .unwrap_or_default(),
            process: process::read(),
        }
    }
}

/// The alarm's states, as `beacon_alarm_state{state=…}` names them.
const ALARM_STATES: [&str; 3] = ["idle", "alerting", "acknowledged"];

/// The exposition text of `readings`.
pub fn render(readings: &Readings) -> String {
    let mut out = Exposition::default();
    build(&mut out);
    ingest(&mut out, &readings.ingest);
    alarm(&mut out, &readings.status);
    feed(&mut out, &readings.status);
    paths(&mut out, &readings.status);
    if let Some(mqtt) = &readings.mqtt {
        self::mqtt(&mut out, mqtt);
    }
    notifications(&mut out, readings);
    if let Some(stats) = &readings.process {
        process(&mut out, stats);
    }
    out.finish()
}

fn build(out: &mut Exposition) {
    out.family(
        "beacon_build_info",
        Kind::Gauge,
        "Always 1; the labels name the version and the git revision of the running binary.",
        [Sample {
            labels: vec![
                ("version", build_info::VERSION.into()),
                ("revision", build_info::REVISION.into()),
            ],
            value: 1.0,
        }],
    );
}

fn ingest(out: &mut Exposition, counters: &IngestSnapshot) {
    for (name, help, value) in [
        (
            "beacon_records_total",
            "Event Hub records taken in.",
            counters.records,
        ),
        (
            "beacon_rejected_records_total",
            "Records refused whole (not JSON, not a notification collection).",
            counters.rejected_records,
        ),
        (
            "beacon_rejected_items_total",
            "Notification items refused (malformed, unknown resource, undecryptable).",
            counters.rejected_items,
        ),
        (
            "beacon_client_state_rejects_total",
            "Items of a fleet subscription whose clientState is not the fleet's (possible forgery).",
            counters.client_state_rejects,
        ),
        (
            "beacon_foreign_notifications_total",
            "Items of subscriptions that are not this fleet's (others sharing the hub).",
            counters.foreign,
        ),
        (
            "beacon_unverifiable_notifications_total",
            "Items kept unverified: the fleet's secrets were lost with a damaged store.",
            counters.unverifiable,
        ),
        (
            "beacon_signature_rejects_total",
            "Rich notifications with a bad signature (possible tampering).",
            counters.signature_rejects,
        ),
        (
            "beacon_unknown_certificate_total",
            "Rich notifications encrypted for a certificate this appliance does not hold.",
            counters.unknown_certificate,
        ),
        (
            "beacon_validations_total",
            "Graph validation messages (reachability tests) seen.",
            counters.validations,
        ),
        (
            "beacon_duplicates_total",
            "Items seen before (redelivered by the hub or Graph).",
            counters.duplicates,
        ),
        (
            "beacon_handed_off_total",
            "Items handed to recognition.",
            counters.handed_off,
        ),
    ] {
        out.counter(name, help, value);
    }
    out.gauge(
        "beacon_last_record_timestamp_seconds",
        "When the last Event Hub record was taken in (Unix time); absent before the first.",
        (counters.last_record_ms > 0).then(|| counters.last_record_ms as f64 / 1000.0),
    );
}

fn alarm(out: &mut Exposition, status: &Status) {
    let current = match status.alarm {
        AlarmState::Idle => "idle",
        AlarmState::Alerting => "alerting",
        AlarmState::Acknowledged => "acknowledged",
    };
    out.state_set(
        "beacon_alarm_state",
        "The alarm's state: 1 for the current one.",
        "state",
        &ALARM_STATES,
        current,
    );
    let flag = |on: bool| Some(f64::from(u8::from(on)));
    out.gauge(
        "beacon_strobe_on",
        "1 while the strobe output is on (steady or flashing).",
        flag(status.strobe),
    );
    out.gauge(
        "beacon_siren_on",
        "1 while the siren output is on.",
        flag(status.siren),
    );
    out.gauge(
        "beacon_troubles",
        "Troubles active now.",
        Some(status.troubles as f64),
    );
    out.gauge(
        "beacon_calls_stored",
        "Calls in the store.",
        Some(status.calls as f64),
    );
}

fn feed(out: &mut Exposition, status: &Status) {
    let flag = |on: bool| Some(f64::from(u8::from(on)));
    out.gauge(
        "beacon_hub_connected",
        "1 while the Event Hub consumer reaches the broker.",
        flag(status.hub_connected),
    );
    out.gauge(
        "beacon_hub_lag",
        "Notifications waiting in the Event Hub for this appliance; absent until known.",
        status.hub_lag.map(|lag| lag as f64),
    );
    out.gauge(
        "beacon_signed_in",
        "1 while the service account is signed in.",
        flag(status.signed_in),
    );
    out.gauge(
        "beacon_subscription_expiry_timestamp_seconds",
        "When the Graph subscription expires (Unix time); absent while there is none.",
        status.subscription_expires.map(|at| at.timestamp() as f64),
    );
}

/// The safety-net poll's reads, and what each path to a call reported or missed.
fn paths(out: &mut Exposition, status: &Status) {
    if let Some(poll) = &status.poll {
        for (name, help, value) in [
            (
                "beacon_poll_reads_total",
                "Reads of the chats that succeeded (polls and gap reads).",
                poll.reads,
            ),
            (
                "beacon_poll_requests_total",
                "Graph requests the reads made.",
                poll.requests,
            ),
            (
                "beacon_poll_found_total",
                "Messages the reads found that push had not delivered.",
                poll.found,
            ),
        ] {
            out.family(name, Kind::Counter, help, [Sample::plain(value as f64)]);
        }
    }
    let per_path = |value: &dyn Fn(&crate::health::paths::PathHealth) -> Option<f64>| {
        status
            .paths
            .iter()
            .filter_map(|p| value(p).map(|v| Sample::labelled("path", p.path.name(), v)))
            .collect::<Vec<_>>()
    };
    out.family(
        "beacon_path_calls_total",
        Kind::Counter,
        "Calls each path reported.",
        per_path(&|p| Some(p.events as f64)),
    );
    out.family(
        "beacon_path_missed_total",
        Kind::Counter,
        "Calls each path did not report within the window (another path had them).",
        per_path(&|p| Some(p.missed as f64)),
    );
    out.family(
        "beacon_path_last_call_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last call each path reported; absent while it reported none.",
        per_path(&|p| p.last_event.map(|t| t.timestamp() as f64)),
    );
}

fn mqtt(out: &mut Exposition, mqtt: &MqttStatus) {
    out.gauge(
        "beacon_mqtt_connected",
        "1 while connected to the MQTT broker and subscribed to the command topics.",
        Some(f64::from(u8::from(mqtt.connected))),
    );
    out.counter(
        "beacon_mqtt_commands_rejected_total",
        "MQTT commands rejected (malformed, unknown, retained or disabled).",
        mqtt.commands_rejected,
    );
    out.counter(
        "beacon_mqtt_events_dropped_total",
        "Alarm events that could not be published on MQTT (backlog overflow, full queue, lag).",
        mqtt.events_dropped,
    );
}

fn notifications(out: &mut Exposition, readings: &Readings) {
    out.gauge(
        "beacon_outbox_pending",
        "Notification messages waiting for delivery.",
        Some(readings.status.outbox_pending as f64),
    );
    out.family(
        "beacon_notification_deliveries_total",
        Kind::Counter,
        "Delivery attempts per channel and outcome: delivered, failed (to be tried again) or \
         expired (failed, and not tried again).",
        readings
            .deliveries
            .iter()
            .map(|&(channel, outcome, count)| Sample {
                labels: vec![
                    ("channel", channel.name().into()),
                    ("outcome", outcome.name().into()),
                ],
                value: count as f64,
            }),
    );
}

fn process(out: &mut Exposition, stats: &ProcessStats) {
    out.family(
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
        [Sample::plain(stats.cpu_seconds)],
    );
    out.gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        Some(stats.resident_memory_bytes as f64),
    );
    out.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        Some(stats.virtual_memory_bytes as f64),
    );
    out.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Some(stats.start_time_seconds),
    );
    out.gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        Some(stats.open_fds as f64),
    );
    out.gauge(
        "process_max_fds",
        "Maximum number of open file descriptors; absent when unlimited.",
        stats.max_fds.map(|max| max as f64),
    );
}
