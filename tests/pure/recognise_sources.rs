//! Through recognition: one call reported by two sources — the security-desk chat message and
//! Graph's emergency call event — is one incident. Whichever comes first alarms; the second
//! enriches the record (address, coordinates, call-back number) and never alarms again; a
//! possible message is confirmed by the event; 933 is a test from either source; two callers
//! stay two calls; `callEnded` goes on the record.

use std::sync::Arc;

use crate::support::Appliance;
use beacon::alarm::{AlarmConfig, CallLevel};
use beacon::alarm_task::AlarmHandle;
use beacon::calls::{CallLog, Path};
use beacon::emergency::Rules;
use beacon::graph::notification::ChangeType;
use beacon::ingest::{InboxEntry, Notification};
use beacon::recognise::{Handled, MessageSource, Recogniser};
use beacon::store::Store;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::json;

struct Bench {
    store: Store,
    alarm: AlarmHandle,
    recogniser: Recogniser,
    _appliance: Appliance,
    _task: tokio::task::JoinHandle<()>,
}

fn bench() -> Bench {
    let appliance = Appliance::new();
    let store = appliance.store.clone();
    let (alarm, task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), store.clone(), Utc::now());
    let recogniser = Recogniser::new(
        store.clone(),
        Arc::new(Rules::default()),
        alarm.clone(),
        MessageSource::Unavailable,
    );
    Bench {
        store,
        alarm,
        recogniser,
        _appliance: appliance,
        _task: task,
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The security-desk chat message of `caller`'s call, posted at `at`.
fn chat(id: &str, caller: &str, text: &str, at: DateTime<Utc>) -> InboxEntry {
    let message = json!({
        "id": id, "chatId": "19:desk@thread.v2", "messageType": "message", "importance": "high",
        "createdDateTime": time(at),
        "from": {"user": {"id": format!("oid-{caller}"), "displayName": caller, "userIdentityType": "aadUser"}},
        "body": {"contentType": "text", "content": text},
    });
    InboxEntry {
        key: format!("msg/{id}"),
        received_at: at + Duration::seconds(2),
        position: format!("hub/0@{id}"),
        notification: Notification::Message {
            subscription_id: "chat-sub".into(),
            chat_id: "19:desk@thread.v2".into(),
            message_id: id.into(),
            change_type: ChangeType::Created,
            message: Some(message),
        },
        raw: None,
    }
}

fn emergency_chat(id: &str, caller: &str, at: DateTime<Utc>) -> InboxEntry {
    chat(
        id,
        caller,
        &format!("{caller} has placed an Emergency Call to 911"),
        at,
    )
}

/// Graph's emergency call event (`callStarted` unless `kind` says otherwise) of `caller`.
fn event(id: &str, kind: &str, caller: &str, number: &str, at: DateTime<Utc>) -> InboxEntry {
    let upn = format!("{}@contoso.com", caller.to_lowercase().replace(' ', "."));
    let event = json!({
        "@odata.type": "#microsoft.graph.emergencyCallEvent",
        "id": id, "callEventType": kind, "policyName": "HQ-Emergency",
        "eventDateTime": time(at), "emergencyNumberDialed": number,
        "callerInfo": {
            "displayName": caller, "upn": upn, "phoneNumber": "+14255550123",
            "location": {
                "address": {"street": "Example Street", "city": "Redmond", "state": "WA",
                            "countryOrRegion": "United States", "postalCode": "98052",
                            "additionalData": {"houseNumber": "725", "additionalInfo": "Floor 4"}},
                "coordinates": {"latitude": "47.6396", "longitude": "-122.1283"}
            }
        }
    });
    InboxEntry {
        key: format!("event/{id}/{kind}"),
        received_at: at + Duration::seconds(1),
        position: format!("hub/1@{id}{kind}"),
        notification: Notification::CallEvent {
            subscription_id: "event-sub".into(),
            event,
        },
        raw: None,
    }
}

impl Bench {
    async fn take(&self, entry: &InboxEntry) -> Handled {
        self.recogniser.handle(entry).await.expect("recognised")
    }

    /// The keys of the calls the alarm holds.
    fn alarmed(&self) -> Vec<String> {
        let view = self.alarm.view().borrow().clone();
        view.display.calls.iter().map(|c| c.key.clone()).collect()
    }

    fn calls(&self) -> CallLog {
        CallLog::of(&self.store)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_alone_alarms_with_the_structured_location() {
    let b = bench();
    let now = Utc::now();
    let handled = b
        .take(&event("e1", "callStarted", "Jordan Rivera", "911", now))
        .await;
    assert_eq!(
        handled,
        Handled::Raised {
            key: "callevent/e1".into(),
            locally: true
        }
    );
    assert_eq!(b.alarmed(), ["callevent/e1"]);
    let record = b
        .calls()
        .get("callevent/e1")
        .expect("read")
        .expect("recorded");
    assert_eq!(record.sources.len(), 1);
    assert!(record.seen_by(Path::CallEvent).is_some());
    assert_eq!(record.call.callback_number.as_deref(), Some("+14255550123"));
    assert_eq!(record.call.location.latitude, Some(47.6396));
    assert!(record.call_event.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_first_then_its_event_is_one_alarm_enriched_by_the_event() {
    let b = bench();
    let now = Utc::now();
    let first = b.take(&emergency_chat("m1", "Jordan Rivera", now)).await;
    assert!(matches!(first, Handled::Raised { .. }), "{first:?}");
    let started = event(
        "e1",
        "callStarted",
        "Jordan Rivera",
        "911",
        now + Duration::seconds(170),
    );
    let second = b.take(&started).await;
    assert_eq!(
        second,
        Handled::Updated {
            key: "19:desk@thread.v2/m1".into()
        }
    );
    assert_eq!(b.alarmed(), ["19:desk@thread.v2/m1"], "one alarm");
    let record = b
        .calls()
        .get("19:desk@thread.v2/m1")
        .expect("read")
        .expect("recorded");
    assert_eq!(record.first_path(), Some(Path::ChatNotification));
    assert!(record.seen_by(Path::CallEvent).is_some());
    assert_eq!(record.call.location.longitude, Some(-122.1283));
    assert_eq!(
        record.call.caller.upn.as_deref(),
        Some("jordan.rivera@contoso.com")
    );
    assert_eq!(
        b.calls().resolve("callevent/e1").expect("read"),
        "19:desk@thread.v2/m1"
    );
    let view = b.alarm.view().borrow().clone();
    assert_eq!(
        view.display.calls[0].summary.callback_number.as_deref(),
        Some("+14255550123"),
        "the display shows what the event added"
    );
    // The same event delivered again (after the de-duplication window) changes nothing.
    let again = b.take(&started).await;
    assert!(matches!(again, Handled::Updated { .. }), "{again:?}");
    assert_eq!(b.alarmed().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn event_first_then_the_chat_message_and_its_poll_are_one_alarm() {
    let b = bench();
    let now = Utc::now();
    b.take(&event("e1", "callStarted", "Jordan Rivera", "911", now))
        .await;
    let chat_report = emergency_chat("m1", "Jordan Rivera", now + Duration::seconds(3));
    let handled = b.take(&chat_report).await;
    assert_eq!(
        handled,
        Handled::Updated {
            key: "callevent/e1".into()
        }
    );
    // The poll finds the same message later: still the same call.
    let mut polled = chat_report.clone();
    polled.key = "poll/m1".into();
    polled.position = "resync".into();
    assert!(matches!(b.take(&polled).await, Handled::Updated { .. }));
    assert_eq!(b.alarmed(), ["callevent/e1"], "one alarm");
    let record = b
        .calls()
        .get("callevent/e1")
        .expect("read")
        .expect("recorded");
    assert_eq!(record.first_path(), Some(Path::CallEvent));
    assert!(record.seen_by(Path::ChatNotification).is_some());
    assert_eq!(
        record.call.message_id, "m1",
        "the chat message is the call's message now"
    );
    assert!(record.call_event.is_some(), "the event is kept beside it");
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_more_than_the_window_apart_or_of_two_callers_are_two_calls() {
    let b = bench();
    let now = Utc::now();
    b.take(&emergency_chat("m1", "Jordan Rivera", now)).await;
    b.take(&event("e1", "callStarted", "Sam Okafor", "911", now))
        .await;
    b.take(&event(
        "e2",
        "callStarted",
        "Jordan Rivera",
        "911",
        now + Duration::seconds(181),
    ))
    .await;
    assert_eq!(b.alarmed().len(), 3, "{:?}", b.alarmed());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_confirms_a_possible_message_and_933_is_a_test_from_either_source() {
    let b = bench();
    let now = Utc::now();
    let possible = chat(
        "m1",
        "Chris Walker",
        "Emergency! Someone collapsed in the Building 2 lobby, please come",
        now,
    );
    b.take(&possible).await;
    let level = |b: &Bench| {
        let view = b.alarm.view().borrow().clone();
        view.display.calls[0].summary.level()
    };
    assert_eq!(level(&b), CallLevel::Possible);
    b.take(&event(
        "e1",
        "callStarted",
        "Chris Walker",
        "911",
        now + Duration::seconds(20),
    ))
    .await;
    assert_eq!(level(&b), CallLevel::Emergency, "confirmed by the event");
    assert_eq!(b.alarmed().len(), 1);

    let t = bench();
    t.take(&event("t1", "callStarted", "Jordan Rivera", "933", now))
        .await;
    let view = t.alarm.view().borrow().clone();
    assert!(view.display.calls[0].summary.is_test);
    let record = t
        .calls()
        .get("callevent/t1")
        .expect("read")
        .expect("recorded");
    assert_eq!(record.kind, beacon::emergency::Kind::Test);
}

#[tokio::test(flavor = "multi_thread")]
async fn call_ended_goes_on_the_record_and_alarms_nothing() {
    let b = bench();
    let now = Utc::now();
    b.take(&emergency_chat("m1", "Jordan Rivera", now)).await;
    b.take(&event(
        "e1",
        "callStarted",
        "Jordan Rivera",
        "911",
        now + Duration::seconds(2),
    ))
    .await;
    let ended = b
        .take(&event(
            "e1",
            "callEnded",
            "Jordan Rivera",
            "911",
            now + Duration::minutes(9),
        ))
        .await;
    assert_eq!(
        ended,
        Handled::Ended {
            key: "19:desk@thread.v2/m1".into()
        }
    );
    let record = b
        .calls()
        .get("19:desk@thread.v2/m1")
        .expect("read")
        .expect("recorded");
    assert!(record.ended_at.is_some());
    assert_eq!(b.alarmed().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_message_and_its_event_arriving_together_alarm_once() {
    for round in 0..20 {
        let b = bench();
        let now = Utc::now();
        let chat_entry = emergency_chat(&format!("m{round}"), "Jordan Rivera", now);
        let event_entry = event(
            &format!("e{round}"),
            "callStarted",
            "Jordan Rivera",
            "911",
            now,
        );
        let (a, c) = tokio::join!(b.take(&chat_entry), b.take(&event_entry));
        let raised = [&a, &c]
            .iter()
            .filter(|h| matches!(h, Handled::Raised { .. }))
            .count();
        assert_eq!(raised, 1, "round {round}: {a:?} {c:?}");
        assert_eq!(b.alarmed().len(), 1, "round {round}");
    }
}

/// The poll found a chat message first and push's own notification of it comes while the
/// poll's find is still being recognised (Graph was late; ingest drops it as a duplicate and
/// tells recognition), and the call's event arrives: push is noted on the call once it is
/// recorded — without a fetch (there is no Graph here) and without a second alarm — and the
/// event's enrichment does not write over that note, so path supervision does not count push
/// as having missed the call.
#[tokio::test(flavor = "multi_thread")]
async fn push_reporting_a_call_the_poll_found_is_noted_beside_the_event() {
    for round in 0..10 {
        let b = bench();
        let now = Utc::now();
        let id = format!("m{round}");
        let mut polled = emergency_chat(&id, "Jordan Rivera", now);
        polled.position = beacon::graph::resync::POLL.into();
        let mut pushed = emergency_chat(&id, "Jordan Rivera", now);
        pushed.received_at = now + Duration::seconds(4);
        if let Notification::Message { message, .. } = &mut pushed.notification {
            *message = None;
        }
        (b.recogniser.later_report_hook())(&pushed).expect("told");
        assert!(matches!(b.take(&polled).await, Handled::Raised { .. }));
        let started = event(
            &format!("e{round}"),
            "callStarted",
            "Jordan Rivera",
            "911",
            now,
        );
        let key = format!("19:desk@thread.v2/{id}");
        assert_eq!(
            b.take(&started).await,
            Handled::Updated { key: key.clone() }
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let record = loop {
            let record = b.calls().get(&key).expect("read").expect("recorded");
            if record.seen_by(Path::ChatNotification).is_some()
                || std::time::Instant::now() > deadline
            {
                break record;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        for path in Path::ALL {
            assert!(
                record.seen_by(path).is_some(),
                "round {round}: {path:?} missing from {:?}",
                record.sources
            );
        }
        assert_eq!(b.alarmed(), [key], "one alarm");
    }
}
