//! `/metrics` as Prometheus reads it: parsed back with an exposition-format parser
//! (`prometheus-parse`), every family with HELP and the TYPE its name promises, no sentinel
//! values, the alarm as one series per state, build and process metrics; and each failure
//! counter moves when its failure happens (ingest refusals through the real ingest stage,
//! notification deliveries through the real notifier against a fake webhook).

use std::collections::HashMap;
use std::sync::Arc;

use beacon::config::Config;
use beacon::graph::crypto::{EncryptionKey, KeyRing};
use beacon::ingest::{Ingest, Record};
use beacon::outputs::notify::channel::Channel;
use beacon::outputs::notify::config::{NotifyConfig, Recipient};
use beacon::secret::Secret;
use beacon::web::WebConfig;
use chrono::Utc;
use prometheus_parse::Value;
use serde_json::json;

use crate::support::console::{add_users, emergency_message, Client, Console, GUARD};
use crate::support::fake_channels::{FakeChannels, Peer};
use crate::support::metrics::Metrics;
use crate::support::notifications;

use crate::support::CLIENT_STATE;

/// A webhook recipient on `webhook`; messages expire after `expire_minutes`.
fn config(webhook: String, expire_minutes: u64) -> Config {
    Config {
        notify: NotifyConfig {
            webhook_url: Some(Secret::new(webhook)),
            retry_first_seconds: 1,
            retry_max_seconds: 2,
            expire_minutes,
            recipients: vec![Recipient {
                channel: Channel::Webhook,
                to: None,
                zones: Vec::new(),
                on: None,
            }],
            ..NotifyConfig::default()
        },
        ..Config::default()
    }
}

async fn start(fake: &FakeChannels, expire_minutes: u64) -> (Console, Client) {
    let console = Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: false,
            ..WebConfig::default()
        },
        &config(fake.webhook_url(), expire_minutes),
        add_users,
    )
    .await;
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    (console, guard)
}

#[tokio::test]
async fn metrics_are_named_typed_and_documented_as_prometheus_expects() {
    let fake = FakeChannels::start().await;
    let (console, mut guard) = start(&fake, 24 * 60).await;
    let metrics = Metrics::read(&mut guard).await;
    let types: HashMap<&str, &str> = metrics
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for sample in &metrics.scrape.samples {
        let name = sample.metric.as_str();
        assert!(
            metrics
                .scrape
                .docs
                .get(name)
                .is_some_and(|help| !help.is_empty()),
            "{name} has no HELP"
        );
        let kind = types.get(name).copied();
        match &sample.value {
            Value::Counter(v) => {
                assert!(name.ends_with("_total"), "counter {name} not named _total");
                assert!(*v >= 0.0, "{name} {v}");
            }
            Value::Gauge(v) => {
                assert!(
                    !name.ends_with("_total"),
                    "gauge {name} named like a counter"
                );
                assert!(*v >= 0.0, "{name} is a negative sentinel: {v}");
            }
            other => panic!("{name} ({kind:?}) is {other:?}"),
        }
    }
    // Nothing "until": moments are timestamps, and unknown ones are left out.
    assert!(!metrics.text.contains("until"), "{}", metrics.text);
    assert_eq!(
        metrics.value("beacon_subscription_expiry_timestamp_seconds", &[]),
        None,
        "no subscription, no series"
    );
    assert_eq!(
        metrics.value("beacon_last_record_timestamp_seconds", &[]),
        None
    );
    // The alarm: one series per state, 1 for the current one.
    for (state, value) in [("idle", 1.0), ("alerting", 0.0), ("acknowledged", 0.0)] {
        assert_eq!(
            metrics.value("beacon_alarm_state", &[("state", state)]),
            Some(value),
            "{state}"
        );
    }
    let build = metrics
        .scrape
        .samples
        .iter()
        .find(|s| s.metric == "beacon_build_info")
        .expect("build info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(build.labels.get("revision").is_some_and(|r| !r.is_empty()));
    assert!(metrics.counter("process_resident_memory_bytes") > 1e6);
    assert!(metrics.counter("process_open_fds") >= 3.0);
    let started = metrics.counter("process_start_time_seconds");
    let now = Utc::now().timestamp() as f64;
    assert!(
        started <= now && started > now - 3600.0,
        "{started} vs {now}"
    );

    // A call: the state set moves to alerting.
    console
        .post_message("chat-m", "m-1", emergency_message("Jordan Rivera"))
        .await;
    let metrics = Metrics::read(&mut guard).await;
    assert_eq!(
        metrics.value("beacon_alarm_state", &[("state", "alerting")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.value("beacon_alarm_state", &[("state", "idle")]),
        Some(0.0)
    );
    console.stop().await;
}

#[tokio::test]
async fn each_ingest_refusal_moves_its_own_counter() {
    let fake = FakeChannels::start().await;
    let (console, mut guard) = start(&fake, 24 * 60).await;
    let before = Metrics::read(&mut guard).await;

    let store = console.store.clone();
    let client_states = crate::support::seed_fleet(&store);
    let ours = EncryptionKey::generate("cert-ours", Utc::now(), 30).expect("key");
    let other = EncryptionKey::generate("cert-other", Utc::now(), 30).expect("key");
    let tampered = |id: &str| {
        let mut body: serde_json::Value = serde_json::from_str(&notifications::rich(
            CLIENT_STATE,
            id,
            &notifications::chat_message(id, "hello"),
            ours.certificate_der(),
            "cert-ours",
        ))
        .expect("json");
        body["value"][0]["encryptedContent"]["dataSignature"] = json!("AAAA");
        body.to_string()
    };
    let unknown_certificate = |id: &str| {
        notifications::rich(
            CLIENT_STATE,
            id,
            &notifications::chat_message(id, "hello"),
            other.certificate_der(),
            "cert-other",
        )
    };
    // Each failure a different number of times, so no counter can pass for another.
    let times = |n: usize, body: &dyn Fn(usize) -> String| (0..n).map(body).collect::<Vec<_>>();
    let bodies = [
        // refused whole
        times(1, &|_| "not json at all".to_string()),
        // items without what a notification needs
        times(2, &|_| {
            json!({"value": [{"changeType": "created"}]}).to_string()
        }),
        // forged
        times(3, &|i| {
            notifications::basic("not-our-client-state", &format!("f-{i}"), "created")
        }),
        // Graph testing reachability
        times(4, &|_| notifications::validation()),
        // encrypted for a certificate we do not hold (handed on for a fetch)
        times(5, &|i| unknown_certificate(&format!("u-{i}"))),
        // tampered with
        times(6, &|i| tampered(&format!("t-{i}"))),
        // one message eight times: seven duplicates
        times(8, &|_| {
            notifications::basic(CLIENT_STATE, "m-again", "created")
        }),
    ]
    .concat();
    let counters = Arc::clone(&console.context().counters);
    let (handoff, mut handed) = tokio::sync::mpsc::channel(64);
    let ingest = Ingest::new(
        store.clone(),
        KeyRing::new(vec![ours]),
        client_states,
        handoff,
        counters,
    );
    tokio::task::spawn_blocking(move || {
        for (offset, body) in bodies.iter().enumerate() {
            let position = format!("metrics/0@{offset}");
            ingest
                .process(Record {
                    body: body.as_bytes(),
                    position: &position,
                    received_at: Utc::now(),
                })
                .expect("store writable");
        }
    })
    .await
    .expect("ingest ran");
    while handed.try_recv().is_ok() {}

    let after = Metrics::read(&mut guard).await;
    let moved = |name: &str| after.counter(name) - before.counter(name);
    assert_eq!(moved("beacon_records_total"), 29.0);
    assert_eq!(moved("beacon_rejected_records_total"), 1.0);
    assert_eq!(moved("beacon_rejected_items_total"), 2.0);
    assert_eq!(moved("beacon_client_state_rejects_total"), 3.0);
    assert_eq!(moved("beacon_validations_total"), 4.0);
    assert_eq!(moved("beacon_unknown_certificate_total"), 5.0);
    assert_eq!(moved("beacon_signature_rejects_total"), 6.0);
    assert_eq!(moved("beacon_duplicates_total"), 7.0);
    assert_eq!(
        moved("beacon_handed_off_total"),
        6.0,
        "u-* and m-again once"
    );
    let last = after
        .value("beacon_last_record_timestamp_seconds", &[])
        .expect("a record was taken in");
    assert!(
        (last - Utc::now().timestamp() as f64).abs() < 60.0,
        "{last}"
    );
    console.stop().await;
}

#[tokio::test]
async fn deliveries_are_counted_per_channel_and_outcome() {
    let fake = FakeChannels::start().await;
    let (console, mut guard) = start(&fake, 24 * 60).await;
    let before = Metrics::read(&mut guard).await;
    for outcome in ["delivered", "failed", "expired"] {
        assert_eq!(
            deliveries(&before, outcome),
            Some(0.0),
            "{outcome} listed from the start"
        );
    }
    assert_eq!(
        before.value(
            "beacon_notification_deliveries_total",
            &[("channel", "email"), ("outcome", "failed")]
        ),
        None,
        "a channel not configured has no series"
    );

    // Down once (503), then delivered on the next try.
    fake.fail_next(Peer::Webhook, 1, 503, None);
    console
        .post_message("chat-d", "d-1", emergency_message("Jordan Rivera"))
        .await;
    let metrics =
        Metrics::wait_for(&mut guard, 10, |m| deliveries(m, "delivered") == Some(1.0)).await;
    assert_eq!(deliveries(&metrics, "delivered"), Some(1.0));
    assert_eq!(deliveries(&metrics, "failed"), Some(1.0));
    assert_eq!(deliveries(&metrics, "expired"), Some(0.0));

    // Refused as it is (400): a failure too, tried again later.
    fake.fail_next(Peer::Webhook, 1, 400, None);
    console
        .post_message("chat-d", "d-2", emergency_message("Alex Kim"))
        .await;
    let metrics = Metrics::wait_for(&mut guard, 10, |m| deliveries(m, "failed") == Some(2.0)).await;
    assert_eq!(deliveries(&metrics, "failed"), Some(2.0));
    console.stop().await;
}

#[tokio::test]
async fn a_message_that_expires_is_counted_as_expired() {
    let fake = FakeChannels::start().await;
    fake.set_down(Peer::Webhook, true);
    let (console, mut guard) = start(&fake, 1).await;
    console
        .post_message("chat-e", "e-1", emergency_message("Jordan Rivera"))
        .await;
    // The shortest expiry is a minute.
    let metrics =
        Metrics::wait_for(&mut guard, 90, |m| deliveries(m, "expired") == Some(1.0)).await;
    assert_eq!(deliveries(&metrics, "expired"), Some(1.0));
    assert!(deliveries(&metrics, "failed").is_some_and(|failed| failed >= 2.0));
    assert_eq!(deliveries(&metrics, "delivered"), Some(0.0));
    console.stop().await;
}

fn deliveries(metrics: &Metrics, outcome: &str) -> Option<f64> {
    metrics.value(
        "beacon_notification_deliveries_total",
        &[("channel", "webhook"), ("outcome", outcome)],
    )
}
