//! Recognition never waits behind a slow Graph fetch: while one basic notification's fetch is
//! throttled (429, `Retry-After: 20`), an emergency whose message came with the notification
//! alarms at once; fetches for one message stay in order and never overlap, so one call never
//! alarms twice; closing the hand-off still finishes the work in flight.
//!
//! The fake Microsoft cloud answers Graph; no broker is needed: entries are handed to the
//! recogniser the way the ingest stage does (admitted to the inbox, then sent).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fake_cloud::{FakeCloud, FakeOptions};
use crate::support::notifications::chat_message;
use crate::support::Appliance;
use beacon::alarm::{AlarmConfig, AuditAction};
use beacon::alarm_task::{AlarmHandle, AlarmNotice};
use beacon::calls::CallRecord;
use beacon::emergency::Rules;
use beacon::graph::client::GraphClient;
use beacon::graph::notification::ChangeType;
use beacon::ingest::{InboxEntry, Notification};
use beacon::recognise::{MessageSource, Recogniser};
use beacon::store::Store;
use chrono::Utc;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

const CHAT: &str = "19:c0ncurrent1e9a2b4c7d8e9f00112233@thread.v2";

struct Bench {
    cloud: FakeCloud,
    appliance: Appliance,
    graph: GraphClient,
    alarm: AlarmHandle,
    notices: broadcast::Receiver<AlarmNotice>,
}

async fn bench() -> Bench {
    let cloud = FakeCloud::start(FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    })
    .await;
    let appliance = Appliance::new();
    let (_tokens, graph) = crate::support::signed_in::sign_in(&cloud, &appliance.store).await;
    let (alarm, _task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), appliance.store.clone(), Utc::now());
    let notices = alarm.notices();
    Bench {
        cloud,
        appliance,
        graph,
        alarm,
        notices,
    }
}

impl Bench {
    fn recogniser(&self) -> Recogniser {
        Recogniser::new(
            self.appliance.store.clone(),
            Arc::new(Rules::default()),
            self.alarm.clone(),
            MessageSource::Graph(self.graph.clone()),
        )
    }

    /// Posts an emergency message in Teams (the fake); returns its id.
    async fn post_emergency(&self, caller: &str, number: &str) -> String {
        self.cloud
            .post_message(
                CHAT,
                json!({
                    "messageType": "message",
                    "importance": "high",
                    "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": caller, "userIdentityType": "aadUser"}},
                    "body": {"contentType": "html", "content": format!("<p>{caller} has placed an Emergency Call to {number}</p>")}
                }),
            )
            .await
    }

    /// The path the recogniser GETs for `message_id` (as the fake records it).
    fn message_path(message_id: &str) -> String {
        format!("/v1.0/chats/{CHAT}/messages/{message_id}")
    }

    /// Waits for the `call_raised` notice of `key`; the time it arrived.
    async fn raised(&mut self, key: &str, within: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.notices.recv()).await {
                Ok(Ok(notice)) => {
                    if notice.record.action == AuditAction::CallRaised
                        && notice.record.keys.iter().any(|k| k == key)
                    {
                        return Some(Instant::now());
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                _ => return None,
            }
        }
    }
}

/// An entry as the ingest stage admits it and hands it on.
fn entry(
    store: &Store,
    key: &str,
    message_id: &str,
    change: ChangeType,
    message: Option<serde_json::Value>,
) -> InboxEntry {
    let entry = InboxEntry {
        key: key.to_string(),
        received_at: Utc::now(),
        position: format!("test:{key}"),
        notification: Notification::Message {
            subscription_id: "sub-test".into(),
            chat_id: CHAT.into(),
            message_id: message_id.into(),
            change_type: change,
            message,
        },
        raw: None,
    };
    assert!(store.admit(key, Utc::now(), &entry).expect("admit"), "new");
    entry
}

fn call_raised_records(store: &Store) -> Vec<serde_json::Value> {
    store
        .audit
        .iter()
        .filter_map(|(_, v)| v.ok())
        .filter(|v| v["action"] == "call_raised")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_that_came_with_its_message_alarms_while_another_fetch_is_throttled() {
    let mut bench = bench().await;
    let store = bench.appliance.store.clone();
    // A first emergency arrives as a basic notification: its message must be fetched, and
    // Graph throttles that fetch (429, Retry-After: 20, once).
    let slow = bench.post_emergency("Sam Lee", "112").await;
    bench.cloud.throttle(&Bench::message_path(&slow), 1, 20);
    let (tx, rx) = mpsc::channel(16);
    let stage = tokio::spawn(bench.recogniser().run(rx));
    let started = Instant::now();
    tx.send(entry(
        &store,
        "basic-slow",
        &slow,
        ChangeType::Created,
        None,
    ))
    .await
    .expect("handed on");
    // Wait until the fetch was answered 429: it is now waiting out the Retry-After.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bench
        .cloud
        .requests_to(&Bench::message_path(&slow))
        .iter()
        .any(|r| r.status == 429)
    {
        assert!(Instant::now() < deadline, "the fetch was never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second emergency whose message came with the notification (rich): nothing to fetch.
    let message = chat_message(
        "rich-1",
        "Jordan Rivera has placed an Emergency Call to 911",
    );
    let handed = Instant::now();
    tx.send(entry(
        &store,
        "rich-1",
        "rich-1",
        ChangeType::Created,
        Some(message),
    ))
    .await
    .expect("handed on");
    let rich_key = format!("{CHAT}/rich-1");
    let alarmed = bench
        .raised(&rich_key, Duration::from_secs(30))
        .await
        .expect("the rich emergency alarms");
    let latency = alarmed - handed;
    eprintln!("rich emergency alarmed {latency:?} after hand-off, while the other fetch waits");
    assert!(
        latency < Duration::from_secs(2),
        "the alarm waited {latency:?} behind a throttled fetch"
    );
    let slow_key = format!("{CHAT}/{slow}");
    assert!(
        store.calls.get(&slow_key).expect("read").is_none(),
        "the throttled fetch is still waiting (the test measured what it meant to)"
    );

    // The throttled one is not lost: it alarms once Graph answers after the Retry-After.
    let alarmed = bench
        .raised(&slow_key, Duration::from_secs(40))
        .await
        .expect("the throttled emergency alarms after the Retry-After");
    let waited = alarmed - started;
    eprintln!("throttled emergency alarmed {waited:?} after hand-off");
    assert!(waited >= Duration::from_secs(19), "{waited:?}");
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), stage)
        .await
        .expect("the stage ends when the hand-off closes")
        .expect("stage");
    assert_eq!(call_raised_records(&store).len(), 2);
    assert_eq!(store.inbox.len(), 0, "both handled");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_notifications_of_one_message_are_fetched_in_turn_and_alarm_once() {
    let mut bench = bench().await;
    let store = bench.appliance.store.clone();
    let id = bench.post_emergency("Ana Ruiz", "911").await;
    // The location follows in an edit; both notifications arrive while Graph is slow.
    bench
        .cloud
        .edit_message(
            CHAT,
            &id,
            json!({"body": {"contentType": "html", "content": "<p>Ana Ruiz has placed an Emergency Call to 911</p><p>Location: 725 Example Street, Floor 4, Redmond</p>"}}),
        )
        .await;
    let path = Bench::message_path(&id);
    bench.cloud.delay(&path, 2, Duration::from_millis(1500));
    let (tx, rx) = mpsc::channel(16);
    let stage = tokio::spawn(bench.recogniser().run(rx));
    tx.send(entry(&store, "created", &id, ChangeType::Created, None))
        .await
        .expect("handed on");
    tx.send(entry(&store, "updated", &id, ChangeType::Updated, None))
        .await
        .expect("handed on");
    // A basic notification of another message is not held up by them.
    let other = bench.post_emergency("Kim Park", "933").await;
    tx.send(entry(&store, "other", &other, ChangeType::Created, None))
        .await
        .expect("handed on");
    let other_key = format!("{CHAT}/{other}");
    bench
        .raised(&other_key, Duration::from_secs(1))
        .await
        .expect("another message's fetch does not wait for a slow one");
    // Closing the hand-off finishes what is in flight before the stage ends.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(15), stage)
        .await
        .expect("the stage ends")
        .expect("stage");
    assert_eq!(store.inbox.len(), 0, "all handled before the stage ended");

    // The two fetches of one message did not overlap: the second began after the first ended.
    let gets = bench.cloud.requests_to(&path);
    assert_eq!(gets.len(), 2, "{gets:?}");
    let gap = gets[1].at - gets[0].at;
    assert!(
        gap >= Duration::from_millis(1400),
        "overlapping fetches: {gap:?} apart"
    );
    let key = format!("{CHAT}/{id}");
    let raised = call_raised_records(&store);
    assert_eq!(
        raised
            .iter()
            .filter(|r| r["keys"]
                .as_array()
                .is_some_and(|k| k.contains(&json!(key))))
            .count(),
        1,
        "one alarm for one call: {raised:?}"
    );
    let record: CallRecord =
        serde_json::from_value(store.calls.get(&key).expect("read").expect("recorded"))
            .expect("record");
    assert!(record
        .call
        .location
        .text
        .unwrap_or_default()
        .contains("725 Example Street"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_retry_does_not_take_an_entry_whose_fetch_is_in_flight() {
    let mut bench = bench().await;
    let store = bench.appliance.store.clone();
    let id = bench.post_emergency("Lee Chan", "911").await;
    let path = Bench::message_path(&id);
    bench.cloud.delay(&path, 1, Duration::from_secs(4));
    let (tx, rx) = mpsc::channel(16);
    // Retries every second; the entry has been pending for ten minutes (a restart, say), so
    // every retry finds it in the inbox while its slow fetch runs.
    let stage = tokio::spawn(
        bench
            .recogniser()
            .run_retrying_every(rx, Duration::from_secs(1)),
    );
    let mut pending = entry(&store, "pending", &id, ChangeType::Created, None);
    pending.received_at = Utc::now() - chrono::Duration::minutes(10);
    beacon::ingest::inbox(&store)
        .insert("pending", &pending)
        .expect("inbox");
    tx.send(pending).await.expect("handed on");
    let key = format!("{CHAT}/{id}");
    bench
        .raised(&key, Duration::from_secs(10))
        .await
        .expect("alarms once the fetch returns");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), stage)
        .await
        .expect("the stage ends")
        .expect("stage");
    let gets = bench.cloud.requests_to(&path);
    assert_eq!(gets.len(), 1, "one fetch, not one per retry: {gets:?}");
    assert_eq!(call_raised_records(&store).len(), 1);
    assert_eq!(store.inbox.len(), 0);
}
