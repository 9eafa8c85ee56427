//! Never deaf, end to end (issue 16): the whole appliance in-process on the real broker, with
//! the fake Microsoft cloud placing calls that reach it by two sources — Graph's emergency call
//! event (app-only, rich, its own subscription) and the security-desk chat message — each with
//! its own delay, or dropped. Every call alarms once, from whichever source comes first; the
//! second enriches it; a dropped chat notification is found by the poll; a source that missed
//! a call is a trouble naming it; 933 from either source is a test.

use std::time::Duration;

use beacon::calls::{CallLog, CallRecord, Path};
use beacon::graph::call_events::AppCertificate;
use beacon::store::Store;
use chrono::Utc;

use crate::support::fake_cloud::{CallPlan, Delivery, FakeCloud, PlannedCaller};
use crate::support::in_process::{fault_of, push_flows, set_poll, start_with_context};
use crate::support::process::{hub_and_cloud, sign_in, write_cloud_config};

const POLICY: &str = "HQ-Emergency";
const POLL_EVERY: Duration = Duration::from_secs(5);
/// Short, so that a source's miss shows within the test; the pure tests cover 3 minutes.
const WINDOW: Duration = Duration::from_secs(15);

fn caller(name: &str, n: u32) -> PlannedCaller {
    PlannedCaller {
        display_name: name.into(),
        upn: format!("{}@contoso.com", name.to_lowercase().replace(' ', ".")),
        object_id: format!("0000000{n}-bbbb-cccc-dddd-eeeeeeeeeeee"),
        phone_number: format!("+1425555010{n}"),
    }
}

fn plan(name: &str, n: u32, event: Delivery, chat: Delivery) -> CallPlan {
    CallPlan {
        caller: caller(name, n),
        event,
        chat,
        ..CallPlan::new(POLICY)
    }
}

/// The one record of `name`'s call, once its first report is in (and `settle` for a second).
async fn record_of(store: &Store, name: &str, settle: Duration) -> CallRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let found: Vec<CallRecord> = CallLog::of(store)
            .all("test")
            .into_iter()
            .filter(|r| r.call.caller.display_name == name)
            .collect();
        if !found.is_empty() {
            tokio::time::sleep(settle).await;
            let mut again: Vec<CallRecord> = CallLog::of(store)
                .all("test")
                .into_iter()
                .filter(|r| r.call.caller.display_name == name)
                .collect();
            assert_eq!(again.len(), 1, "one call for {name}: {again:#?}");
            return again.remove(0);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}'s call was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times the alarm raised a call of `key` (its audit log).
fn raised(store: &Store, key: &str) -> usize {
    store
        .audit
        .iter()
        .filter_map(|(_, v)| v.ok())
        .filter(|a| a["action"] == "call_raised")
        .filter(|a| {
            a["keys"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == key))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_alarms_once_whichever_source_comes_first_and_a_silent_source_is_a_trouble() {
    let (hub, cloud) = hub_and_cloud("two-sources-hub", 2).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, data) = write_cloud_config(dir.path(), "two-sources", &hub, &cloud);
    set_poll(&path, POLL_EVERY, WINDOW);
    let mut config = std::fs::read_to_string(&path).expect("config");
    config.push_str(&format!("\n[call_events]\npolicies = [\"{POLICY}\"]\n"));
    std::fs::write(&path, config).expect("config");
    sign_in(&path, &cloud).await;
    // The admin uploads the appliance's certificate in Entra and grants consent.
    {
        let store = Store::open(&data).expect("store");
        let certificate = AppCertificate::load_or_create(&store, Utc::now()).expect("certificate");
        cloud.upload_app_certificate(certificate.certificate_pem().expect("pem").as_bytes());
        store.flush().expect("flush");
    }
    cloud.grant_app_consent(true);

    let (store, context, stop, running) = start_with_context(&path).await;
    wait_for_subscriptions(&cloud).await;
    push_flows(&context, &cloud).await;

    // 1. Both at once, and the event 10 s after the chat message: one alarm each, enriched.
    let together = cloud.place_call(plan(
        "Ana Lima",
        1,
        Delivery::After(Duration::ZERO),
        Delivery::After(Duration::ZERO),
    ));
    let chat_first = cloud.place_call(plan(
        "Sam Okafor",
        2,
        Delivery::After(Duration::from_secs(10)),
        Delivery::After(Duration::ZERO),
    ));
    let event_first = cloud.place_call(plan(
        "Alex Chen",
        3,
        Delivery::After(Duration::ZERO),
        Delivery::After(Duration::from_secs(10)),
    ));
    for (placed, name) in [
        (&together, "Ana Lima"),
        (&chat_first, "Sam Okafor"),
        (&event_first, "Alex Chen"),
    ] {
        let record = record_of(&store, name, Duration::from_secs(12)).await;
        assert!(
            record.seen_by(Path::CallEvent).is_some(),
            "{name}: the event reported it"
        );
        assert!(
            record.seen_by(Path::ChatNotification).is_some(),
            "{name}: the chat message reported it"
        );
        assert_eq!(raised(&store, &record.key), 1, "{name}: one alarm");
        assert!(
            record.call.location.latitude.is_some(),
            "{name}: the event's coordinates are on the call"
        );
        assert!(record.alarmed_locally);
        assert_eq!(
            record.call_event.as_ref().map(|e| e["id"].clone()),
            Some(serde_json::json!(placed.event_id)),
            "{name}: the event is kept with the call"
        );
        println!(
            "{name}: first {:?}, sources {}",
            record.first_path(),
            record.sources_in_words()
        );
    }
    assert_eq!(
        record_of(&store, "Sam Okafor", Duration::ZERO)
            .await
            .first_path(),
        Some(Path::ChatNotification)
    );
    assert_eq!(
        record_of(&store, "Alex Chen", Duration::ZERO)
            .await
            .first_path(),
        Some(Path::CallEvent)
    );

    // 2. The chat notification dropped (the message is in Graph): the event alarms at once and
    //    the poll adds the message; the event alone (no message at all) alarms too.
    cloud.place_call(plan(
        "Kim Park",
        4,
        Delivery::After(Duration::ZERO),
        Delivery::Dropped,
    ));
    let record = record_of(&store, "Kim Park", POLL_EVERY * 2).await;
    assert_eq!(record.first_path(), Some(Path::CallEvent));
    assert!(
        record.seen_by(Path::ChatPoll).is_some(),
        "the poll found the message"
    );
    assert_eq!(raised(&store, &record.key), 1);

    // 3. The event dropped: the chat message alarms; after the window the call events' miss is
    //    a trouble naming the path and the caller.
    cloud.place_call(plan(
        "Lee Novak",
        5,
        Delivery::Dropped,
        Delivery::After(Duration::ZERO),
    ));
    let record = record_of(&store, "Lee Novak", Duration::ZERO).await;
    assert_eq!(record.first_path(), Some(Path::ChatNotification));
    assert!(record.alarmed_locally);
    let trouble = fault_of(
        &context,
        "call-event-misses",
        WINDOW + Duration::from_secs(25),
    )
    .await
    .expect("the call events' miss is a trouble");
    assert!(
        trouble
            .detail
            .starts_with("emergency call events did not report the call of Lee Novak at "),
        "{}",
        trouble.detail
    );

    // 4. 933 is a test from either source.
    let mut test_event = plan(
        "Pat Test",
        6,
        Delivery::After(Duration::ZERO),
        Delivery::Never,
    );
    test_event.number_dialed = "933".into();
    cloud.place_call(test_event);
    let record = record_of(&store, "Pat Test", Duration::ZERO).await;
    assert_eq!(record.kind, beacon::emergency::Kind::Test);
    assert!(record.call.is_test);

    stop.send(()).expect("still running");
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
}

/// Waits until the chat subscription and the policy's emergency-event subscription exist.
async fn wait_for_subscriptions(cloud: &FakeCloud) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while cloud.subscriptions().is_empty() || cloud.call_event_subscription(POLICY).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the appliance did not subscribe to both sources"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
