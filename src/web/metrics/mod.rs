//! `/metrics`: Prometheus text exposition of the ingest counters, the alarm, the lamps, the
//! feeds and the store (same login as the API).

use std::fmt::Write;

use chrono::Utc;
use warp::http::header;
use warp::reply::{Reply, Response};

use super::respond::Audience;
use super::session::Role;
use super::state::{Caller, Web};
use super::status;
use crate::alarm::AlarmState;

pub fn show(web: &Web, caller: &Caller) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    let text = render(web);
    warp::reply::with_header(
        text,
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}

/// The exposition text.
pub fn render(web: &Web) -> String {
    let context = &web.context;
    let counters = context.counters.snapshot();
    let status = status::read(context, Utc::now());
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    for (name, help, value) in [
        (
            "beacon_records_total",
            "Event Hub records taken in.",
            counters.records,
        ),
        (
            "beacon_rejected_records_total",
            "Records refused whole.",
            counters.rejected_records,
        ),
        (
            "beacon_rejected_items_total",
            "Notification items refused.",
            counters.rejected_items,
        ),
        (
            "beacon_client_state_rejects_total",
            "Items whose clientState matched no subscription.",
            counters.client_state_rejects,
        ),
        (
            "beacon_signature_rejects_total",
            "Rich notifications with a bad signature.",
            counters.signature_rejects,
        ),
        (
            "beacon_duplicates_total",
            "Items seen before.",
            counters.duplicates,
        ),
        (
            "beacon_handed_off_total",
            "Items handed to recognition.",
            counters.handed_off,
        ),
    ] {
        metric(name, "counter", help, value.to_string());
    }
    let state = match status.alarm {
        AlarmState::Idle => 0,
        AlarmState::Alerting => 1,
        AlarmState::Acknowledged => 2,
    };
    let flag = |b: bool| u8::from(b).to_string();
    metric(
        "beacon_alarm_state",
        "gauge",
        "0 idle, 1 alerting, 2 acknowledged.",
        state.to_string(),
    );
    metric(
        "beacon_strobe_on",
        "gauge",
        "The strobe output is on (steady or flashing).",
        flag(status.strobe),
    );
    metric(
        "beacon_siren_on",
        "gauge",
        "The siren output is on.",
        flag(status.siren),
    );
    metric(
        "beacon_troubles",
        "gauge",
        "Active troubles.",
        status.troubles.to_string(),
    );
    metric(
        "beacon_hub_connected",
        "gauge",
        "The Event Hub consumer reaches the broker.",
        flag(status.hub_connected),
    );
    metric(
        "beacon_hub_lag",
        "gauge",
        "Notifications waiting in the Event Hub for this appliance (-1: not known yet).",
        status.hub_lag.unwrap_or(-1).to_string(),
    );
    metric(
        "beacon_signed_in",
        "gauge",
        "The service account is signed in.",
        flag(status.signed_in),
    );
    metric(
        "beacon_subscription_expiry_seconds",
        "gauge",
        "Seconds until the Graph subscription expires (-1: none).",
        status
            .subscription_expires
            .map(|e| (e - Utc::now()).num_seconds())
            .unwrap_or(-1)
            .to_string(),
    );
    metric(
        "beacon_outbox_pending",
        "gauge",
        "Messages waiting for delivery.",
        status.outbox_pending.to_string(),
    );
    metric(
        "beacon_calls_stored",
        "gauge",
        "Calls in the store.",
        status.calls.to_string(),
    );
    metric(
        "beacon_last_record_timestamp_seconds",
        "gauge",
        "Unix time of the last Event Hub record (0: none).",
        status
            .last_notification
            .map(|t| t.timestamp())
            .unwrap_or(0)
            .to_string(),
    );
    out
}
