//! PagerDuty Events API v2: `trigger` when a call alarms (and again on escalation, which adds
//! to the same incident), `acknowledge` when a guard acknowledges, `resolve` when the call is
//! cleared — all with one `dedup_key` per call, so they act on one incident. A trigger carries
//! `payload.summary` (≤ 1024 characters), `source` (the appliance), `severity` (critical;
//! info for test calls), `timestamp` and the facts in `custom_details`. PagerDuty answers
//! 202 `{"status":"success",…}`; 400 is an invalid event (permanent), 429 is throttling and
//! 5xx are retried.

use openssl::hash::{hash, MessageDigest};
use serde_json::{json, Value};

use super::channel::DeliveryError;
use super::message_kind::MessageKind;
use super::outbox::OutboxEntry;
use crate::secret::Secret;

/// The PagerDuty incident key of a call: `beacon/<device>/<call key>`, or its SHA-256 when
/// that is longer than the API's 255 characters.
pub fn dedup_key(device: &str, call_key: Option<&str>) -> String {
    let key = format!("beacon/{device}/{}", call_key.unwrap_or("-"));
    if key.len() <= 255 {
        return key;
    }
    match hash(MessageDigest::sha256(), key.as_bytes()) {
        Ok(digest) => format!(
            "beacon/{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        Err(_) => key.chars().take(255).collect(),
    }
}

/// `trigger`, `acknowledge` or `resolve`.
pub fn event_action(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Alarm
        | MessageKind::Possible
        | MessageKind::Test
        | MessageKind::Escalation => "trigger",
        MessageKind::Acknowledged => "acknowledge",
        MessageKind::Cleared => "resolve",
    }
}

/// The event body. The routing key is the only secret in it.
pub fn payload(routing_key: &Secret, entry: &OutboxEntry) -> Value {
    let d = &entry.details;
    let action = event_action(entry.kind);
    let mut event = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": dedup_key(&d.device, entry.call_key.as_deref()),
    });
    if action == "trigger" {
        let severity = if d.is_test {
            "info"
        } else if d.is_possible {
            "warning"
        } else {
            "critical"
        };
        let summary: String = entry.subject.chars().take(1024).collect();
        event["payload"] = json!({
            "summary": summary,
            "source": d.device,
            "severity": severity,
            "timestamp": d.raised_at,
            "component": "emergency-call",
            "group": d.zone,
            "class": entry.kind,
            "custom_details": {
                "caller": d.caller,
                "callback_number": d.callback_number,
                "dial_string": d.dial_string,
                "location": d.location,
                "is_test": d.is_test,
                "is_possible": d.is_possible,
                "message": d.message,
                "text": entry.body,
            },
        });
        event["client"] = json!("Beacon");
        if let Some(map) = &d.map_link {
            event["links"] = json!([{ "href": map, "text": "Map" }]);
        }
    }
    event
}

/// Sends one event.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    routing_key: &Secret,
    entry: &OutboxEntry,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&payload(routing_key, entry))
        .map_err(|e| DeliveryError::permanent(format!("PagerDuty event: {e}")))?;
    super::http::post_json(client, "PagerDuty", url, body, &[]).await
}
