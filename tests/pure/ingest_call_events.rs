//! Through the ingest stage: a rich notification of an emergency-event subscription becomes a
//! durable `CallEvent` inbox entry (decrypted, de-duplicated); one that is not encrypted, not
//! an event, or not the fleet's is refused and kept with the reason, never handed on.

use std::sync::Arc;

use crate::support::notifications::call_event;
use crate::support::{Appliance, CLIENT_STATE};
use beacon::health::IngestCounters;
use beacon::ingest::{Ingest, Notification, Record};
use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;

fn event(id: &str) -> serde_json::Value {
    json!({
        "@odata.type": "#microsoft.graph.emergencyCallEvent",
        "id": id, "callEventType": "callStarted", "policyName": "HQ-Emergency",
        "eventDateTime": "2026-12-06T10:15:20Z", "emergencyNumberDialed": "911",
        "callerInfo": {"displayName": "Jordan Rivera", "upn": "jordan.rivera@contoso.com"}
    })
}

#[test]
fn a_call_event_is_decrypted_once_and_bad_ones_are_refused_in_words() {
    let appliance = Appliance::new();
    let key = appliance
        .keys
        .current()
        .expect("a rich-notification key")
        .clone();
    let certificate = Some((key.certificate_der(), key.id.as_str()));
    let (tx, mut rx) = mpsc::channel(16);
    let counters = Arc::new(IngestCounters::default());
    let ingest = Ingest::new(
        appliance.store.clone(),
        appliance.keys.clone(),
        appliance.client_states.clone(),
        tx,
        counters.clone(),
    );
    let take = |body: &str, position: &str| {
        ingest
            .process(Record {
                body: body.as_bytes(),
                position,
                received_at: Utc::now(),
            })
            .expect("store writable")
    };

    let good = call_event(CLIENT_STATE, &event("e1"), certificate);
    assert_eq!(take(&good, "hub/0@1").handed_off, 1);
    assert_eq!(
        take(&good, "hub/1@7").duplicates,
        1,
        "a redelivery is a duplicate"
    );
    let entry = rx.try_recv().expect("handed on");
    match &entry.notification {
        Notification::CallEvent { event, .. } => assert_eq!(event["id"], "e1"),
        other => panic!("not a call event: {other:?}"),
    }
    let kept = entry
        .raw
        .expect("the notification is kept for the call page");
    assert_eq!(kept["clientState"], "(redacted)");
    assert!(rx.try_recv().is_err(), "nothing else handed on");

    // Not encrypted (these subscriptions are rich only), not an event, a stranger's state.
    let plain = call_event(CLIENT_STATE, &event("e2"), None);
    assert_eq!(take(&plain, "hub/0@2").rejected, 1);
    let not_an_event = call_event(CLIENT_STATE, &json!({"id": "e3"}), certificate);
    assert_eq!(take(&not_an_event, "hub/0@3").rejected, 1);
    let forged = call_event("someone-else", &event("e4"), certificate);
    assert_eq!(take(&forged, "hub/0@4").rejected, 1);
    assert!(rx.try_recv().is_err(), "nothing refused is handed on");
    let reasons: Vec<String> = appliance
        .store
        .rejected
        .iter()
        .filter_map(|(_, r)| r.ok())
        .map(|r| r.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("rich only")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not an emergency call event")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("clientState")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().all(|r| !r.contains(CLIENT_STATE)),
        "the secret is never kept"
    );
}
