//! Ingest against the real Kafka-protocol broker over SASL_SSL (scripts/test-env): every
//! record becomes one durable, de-duplicated notification, whatever restarts happen.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::kafka::{create_topic, Sender};
use crate::support::notifications::{basic, chat_message, rich, validation};
use crate::support::{message_id_of, unique, Appliance, CLIENT_STATE};
use beacon::ingest::Notification;

const WAIT: Duration = Duration::from_secs(30);
/// After the expected hand-offs: how long nothing more may arrive.
const QUIET: Duration = Duration::from_secs(2);

fn ids(entries: &[beacon::ingest::InboxEntry]) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(message_id_of)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_partitions_all_consumed_and_recorded_once() {
    let topic = unique("two-partitions");
    create_topic(&topic, 2).await;
    let sender = Sender::new(&topic);
    let expected: BTreeSet<String> = (0..40).map(|i| format!("m{i}")).collect();
    for (i, id) in expected.iter().enumerate() {
        sender.send(
            Some((i % 2) as i32),
            basic(CLIENT_STATE, id, "created").as_bytes(),
        );
    }
    // Graph delivers at least once: ten of them arrive a second time, on the other partition.
    for (i, id) in expected.iter().take(10).enumerate() {
        sender.send(
            Some(((i + 1) % 2) as i32),
            basic(CLIENT_STATE, id, "created").as_bytes(),
        );
    }
    sender.flush();

    let appliance = Appliance::new();
    let mut running = appliance.consume(&topic, &unique("g"), true);
    let got = running.take(40, WAIT).await;
    assert_eq!(ids(&got), expected, "every message handed on");
    assert_eq!(got.len(), 40, "each message handed on once");
    assert!(
        running.take(1, QUIET).await.is_empty(),
        "nothing handed on twice"
    );
    // The console's "nothing waiting" comes from librdkafka's statistics (every 10 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while running.handle.status.lag() != Some(0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lag known and 0 once all is consumed: {:?}",
            running.handle.status.lag()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.stop().await;

    let counters = appliance.counters.snapshot();
    assert_eq!(counters.records, 50);
    assert_eq!(counters.duplicates, 10);
    assert_eq!(appliance.store.seen.len(), 40);
    assert_eq!(appliance.store.inbox.len(), 40, "all durable in the inbox");
}

#[tokio::test(flavor = "multi_thread")]
async fn restarted_consumer_does_not_reprocess_committed_records() {
    let topic = unique("restart");
    create_topic(&topic, 2).await;
    let group = unique("g");
    let sender = Sender::new(&topic);
    for i in 0..10 {
        sender.send(
            Some(i % 2),
            basic(CLIENT_STATE, &format!("r{i}"), "created").as_bytes(),
        );
    }
    sender.flush();
    let first = Appliance::new();
    let mut running = first.consume(&topic, &group, true);
    assert_eq!(running.take(10, WAIT).await.len(), 10);
    running.stop().await;

    // A fresh store, so de-duplication cannot hide a redelivery: only Kafka's committed
    // offsets keep the first ten from coming back.
    let second = Appliance::new();
    let mut running = second.consume(&topic, &group, true);
    sender.send(
        Some(1),
        basic(CLIENT_STATE, "sentinel", "created").as_bytes(),
    );
    sender.flush();
    let got = running.until_message("sentinel", WAIT).await;
    assert_eq!(ids(&got), BTreeSet::from(["sentinel".to_string()]));
    running.stop().await;
    assert_eq!(second.counters.snapshot().records, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_durable_write_before_commit_redelivers_and_dedupe_holds() {
    let topic = unique("crash");
    create_topic(&topic, 1).await;
    let group = unique("g");
    let sender = Sender::new(&topic);
    for i in 0..5 {
        sender.send(
            None,
            basic(CLIENT_STATE, &format!("c{i}"), "created").as_bytes(),
        );
    }
    sender.flush();

    // The consumer writes and flushes but dies before any commit.
    let appliance = Appliance::new();
    let mut running = appliance.consume(&topic, &group, false);
    assert_eq!(running.take(5, WAIT).await.len(), 5);
    running.stop().await;
    let appliance = appliance.restart();
    assert_eq!(
        appliance.store.inbox.len(),
        5,
        "durable before the (missing) commit"
    );

    let mut running = appliance.consume(&topic, &group, true);
    sender.send(
        None,
        basic(CLIENT_STATE, "after-crash", "created").as_bytes(),
    );
    sender.flush();
    let got = running.until_message("after-crash", WAIT).await;
    running.stop().await;
    assert_eq!(
        ids(&got),
        BTreeSet::from(["after-crash".to_string()]),
        "no second hand-off"
    );
    let counters = appliance.counters.snapshot();
    assert_eq!(counters.records, 6, "the five were redelivered by Kafka");
    assert_eq!(counters.duplicates, 5, "and absorbed by de-duplication");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_appliances_with_their_own_groups_each_get_every_record() {
    let topic = unique("fanout");
    create_topic(&topic, 2).await;
    let sender = Sender::new(&topic);
    let expected: BTreeSet<String> = (0..20).map(|i| format!("f{i}")).collect();
    for (i, id) in expected.iter().enumerate() {
        sender.send(
            Some((i % 2) as i32),
            basic(CLIENT_STATE, id, "created").as_bytes(),
        );
    }
    sender.flush();
    let desk = Appliance::new();
    let lobby = Appliance::new();
    let mut a = desk.consume(&topic, &unique("beacon-desk"), true);
    let mut b = lobby.consume(&topic, &unique("beacon-lobby"), true);
    let (got_a, got_b) = tokio::join!(a.take(20, WAIT), b.take(20, WAIT));
    assert_eq!(ids(&got_a), expected);
    assert_eq!(ids(&got_b), expected);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_record_is_kept_aside_and_does_not_block_its_partition() {
    let topic = unique("poison");
    create_topic(&topic, 1).await;
    let group = unique("g");
    let sender = Sender::new(&topic);
    sender.send(None, b"not json {");
    sender.send(None, br#"{"value": 5}"#);
    sender.send(None, validation().as_bytes());
    sender.send(
        None,
        basic(CLIENT_STATE, "after-poison", "created").as_bytes(),
    );
    sender.flush();

    let appliance = Appliance::new();
    let mut running = appliance.consume(&topic, &group, true);
    let got = running.until_message("after-poison", WAIT).await;
    running.stop().await;
    assert_eq!(got.len(), 1);
    let rejected: Vec<_> = appliance
        .store
        .rejected
        .iter()
        .filter_map(|(_, r)| r.ok())
        .collect();
    assert_eq!(rejected.len(), 2);
    assert!(
        rejected[0].reason.starts_with("not JSON"),
        "{}",
        rejected[0].reason
    );
    assert_eq!(rejected[0].body, "not json {");
    assert!(
        rejected[1].reason.contains("collection"),
        "{}",
        rejected[1].reason
    );
    let counters = appliance.counters.snapshot();
    assert_eq!((counters.rejected_records, counters.validations), (2, 1));

    // The poison records were committed: a restart with an empty store sees only new ones.
    let fresh = Appliance::new();
    let mut running = fresh.consume(&topic, &group, true);
    sender.send(None, basic(CLIENT_STATE, "later", "created").as_bytes());
    sender.flush();
    let got = running.until_message("later", WAIT).await;
    running.stop().await;
    assert_eq!(got.len(), 1);
    assert_eq!(fresh.store.rejected.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_rich_notifications() {
    let topic = unique("rich");
    create_topic(&topic, 1).await;
    let appliance = Appliance::new();
    let key = appliance.keys.current().expect("appliance key").clone();
    let message = chat_message("rich-1", "Jordan Rivera has placed an Emergency Call");
    let sender = Sender::new(&topic);
    // Wrong clientState on the fleet's subscription: someone with Send rights on the hub, but
    // not our subscription.
    sender.send(None, basic("guessed-state", "forged", "created").as_bytes());
    // Another application's (or another Beacon's) subscription on the same hub: foreign, let be.
    let mut foreign: serde_json::Value =
        serde_json::from_str(&basic("their-state", "theirs", "created")).expect("json");
    foreign["value"][0]["subscriptionId"] = serde_json::json!("0f0f0f0f-someone-else");
    sender.send(None, foreign.to_string().as_bytes());
    // A rich notification encrypted for our certificate.
    sender.send(
        None,
        rich(
            CLIENT_STATE,
            "rich-1",
            &message,
            key.certificate_der(),
            &key.id,
        )
        .as_bytes(),
    );
    // Same, with the ciphertext altered after signing.
    let mut tampered: serde_json::Value = serde_json::from_str(&rich(
        CLIENT_STATE,
        "rich-2",
        &message,
        key.certificate_der(),
        &key.id,
    ))
    .expect("json");
    let data = tampered["value"][0]["encryptedContent"]["data"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let flipped = match data.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &data[1..]),
    };
    tampered["value"][0]["encryptedContent"]["data"] = serde_json::json!(flipped);
    sender.send(None, tampered.to_string().as_bytes());
    sender.send(None, basic(CLIENT_STATE, "last", "created").as_bytes());
    sender.flush();

    let mut running = appliance.consume(&topic, &unique("g"), true);
    let got = running.until_message("last", WAIT).await;
    running.stop().await;
    assert_eq!(
        ids(&got),
        BTreeSet::from(["rich-1".to_string(), "last".to_string()])
    );
    let rich_entry = got
        .iter()
        .find(|e| message_id_of(e) == Some("rich-1"))
        .expect("rich");
    let Notification::Message {
        message: Some(decrypted),
        ..
    } = &rich_entry.notification
    else {
        panic!("rich content not decrypted: {:?}", rich_entry.notification)
    };
    assert_eq!(decrypted, &message);
    let counters = appliance.counters.snapshot();
    assert_eq!(counters.client_state_rejects, 1);
    assert_eq!(counters.foreign, 1);
    assert_eq!(counters.signature_rejects, 1);
    let reasons: Vec<String> = appliance
        .store
        .rejected
        .iter()
        .filter_map(|(_, r)| r.ok().map(|r| r.reason))
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].contains("clientState"), "{reasons:?}");
    assert!(reasons[1].contains("dataSignature"), "{reasons:?}");
    // The refused records are kept, but never with our subscription's secret in them.
    assert!(appliance
        .store
        .rejected
        .iter()
        .filter_map(|(_, r)| r.ok())
        .all(|r| !r.body.contains(CLIENT_STATE)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_box_sharing_its_consumer_group_says_it_reads_nothing_and_reads_once_alone() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let topic = unique("shared-group");
    create_topic(&topic, 1).await;
    let group = unique("g");
    // Another consumer took the group's one partition first (its client id sorts before the
    // box's, so the range assignor keeps giving it the partition).
    let other: BaseConsumer = crate::support::kafka::client_config()
        .set("group.id", &group)
        .set("client.id", "0-other-box")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("other consumer");
    other.subscribe(&[&topic]).expect("subscribe");
    let deadline = tokio::time::Instant::now() + WAIT;
    while other.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other consumer got no partition"
        );
        let _ = other.poll(Duration::from_millis(100));
    }

    let appliance = Appliance::new();
    let mut running = appliance.consume(&topic, &group, true);
    let sender = Sender::new(&topic);
    sender.send(Some(0), basic(CLIENT_STATE, "shared", "created").as_bytes());
    sender.flush();
    // The box is connected and in the group, reads nothing, and says since when.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let _ = other.poll(Duration::from_millis(100));
        let since = *running.handle.status.unassigned_since.lock().expect("lock");
        if since.is_some()
            && running
                .handle
                .status
                .connected
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 'unassigned' status"
        );
    }
    for _ in 0..30 {
        let _ = other.poll(Duration::from_millis(100));
    }
    assert!(
        running.take(1, Duration::from_millis(10)).await.is_empty(),
        "the other consumer holds the partition"
    );

    // The other consumer leaves the group: the box takes the partition and reads the record.
    drop(other);
    let got = running.until_message("shared", WAIT).await;
    assert_eq!(ids(&got), BTreeSet::from(["shared".to_string()]));
    assert_eq!(
        *running.handle.status.unassigned_since.lock().expect("lock"),
        None
    );
    running.stop().await;
}
