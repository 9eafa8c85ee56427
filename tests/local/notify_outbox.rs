//! The outbox against a channel that goes away: everything queued while it is down is
//! delivered once it is back — exactly once, also when the appliance restarts in between
//! (same store) — a channel failing longer than `trouble_after_seconds` is a trouble that
//! clears on the next success. (Expiry is a pure function of the entry and the time: see the
//! unit tests in `outputs::notify::outbox`.) Calls raised before the notifier follows the
//! alarm (at start-up, or after a crash between the alarm and the outbox) are still sent.

use crate::support::fake_channels;
use crate::support::notify_harness;

use std::time::Duration;

use beacon::outputs::notify::channel::Channel;
use beacon::outputs::notify::config::Recipient;
use beacon::outputs::notify::message_kind::MessageKind;
use beacon::outputs::notify::outbox::Status;
use beacon::outputs::notify::NotifyConfig;
use beacon::secret::Secret;
use fake_channels::{FakeChannels, Peer, PAGERDUTY_KEY, TWILIO_SID, TWILIO_TOKEN};
use notify_harness::{call, captured_logs, stored_outbox, Bench, DEVICE};

const WAIT: Duration = Duration::from_secs(30);

fn config(fake: &FakeChannels) -> NotifyConfig {
    NotifyConfig {
        twilio_url: fake.twilio_url(),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(Secret::new(TWILIO_TOKEN)),
        twilio_from: Some("+15005550006".into()),
        webhook_url: Some(Secret::new(fake.webhook_url())),
        pagerduty_url: fake.pagerduty_url(),
        pagerduty_routing_key: Some(Secret::new(PAGERDUTY_KEY)),
        retry_first_seconds: 1,
        retry_max_seconds: 1,
        trouble_after_seconds: 2,
        timeout_seconds: 5,
        recipients: vec![
            Recipient {
                channel: Channel::Sms,
                to: Some("+14255550100".into()),
                zones: Vec::new(),
                on: None,
            },
            Recipient {
                channel: Channel::Webhook,
                to: None,
                zones: Vec::new(),
                on: Some(vec![
                    MessageKind::Alarm,
                    MessageKind::Test,
                    MessageKind::Acknowledged,
                    MessageKind::Cleared,
                ]),
            },
            Recipient {
                channel: Channel::Pagerduty,
                to: None,
                zones: Vec::new(),
                on: None,
            },
        ],
        ..NotifyConfig::default()
    }
}

/// Raises `calls` calls, acknowledges and clears them.
async fn three_calls_acknowledged_and_cleared(bench: &Bench, prefix: &str) {
    for i in 0..3 {
        let key = format!("{prefix}/m{i}");
        bench.record_call(&key, None, None);
        bench
            .raise(&key, call(&format!("Caller {i}"), "Building 7"))
            .await;
    }
    bench.acknowledge("guard").await;
    bench.clear("guard").await;
}

/// Messages the three calls make: SMS 3 alarms; webhook 3 × (alarm, ack, clear);
/// PagerDuty 3 × (trigger, acknowledge, resolve).
const EXPECTED: usize = 3 + 9 + 9;

fn assert_exactly_once(fake: &FakeChannels) {
    let sms = fake.accepted(Peer::Twilio);
    assert_eq!(sms.len(), 3, "3 SMS, once each");
    let webhook = fake.accepted(Peer::Webhook);
    let mut ids: Vec<_> = webhook
        .iter()
        .filter_map(|r| r.header("x-beacon-delivery").map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (webhook.len(), ids.len()),
        (9, 9),
        "9 webhook posts, no repeat"
    );
    let pd: Vec<_> = fake
        .accepted(Peer::PagerDuty)
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(pd.len(), 9, "9 PagerDuty events, once each");
    for i in 0..3 {
        let actions: Vec<_> = pd
            .iter()
            .filter(|e| {
                e["dedup_key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(&format!("/m{i}")))
            })
            .map(|e| e["event_action"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            actions,
            ["trigger", "acknowledge", "resolve"],
            "call {i} in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_down_for_a_while_deliver_everything_once_when_back() {
    captured_logs();
    let fake = FakeChannels::start().await;
    for peer in [Peer::Twilio, Peer::Webhook, Peer::PagerDuty] {
        fake.set_down(peer, true);
    }
    let mut bench = Bench::new();
    bench.start(&config(&fake));
    three_calls_acknowledged_and_cleared(&bench, "down").await;

    // Down long enough to be retried and to become troubles.
    for component in ["notify:sms", "notify:webhook", "notify:pagerduty"] {
        assert!(
            bench.wait_trouble(component, true, WAIT).await,
            "{component} is a trouble while down"
        );
    }
    let entries = bench.outbox();
    assert_eq!(entries.len(), EXPECTED);
    assert!(entries.iter().all(|(_, e)| e.status == Status::Pending));
    assert!(fake.attempts(Peer::Twilio) >= 2, "retried while down");

    for peer in [Peer::Twilio, Peer::Webhook, Peer::PagerDuty] {
        fake.set_down(peer, false);
    }
    let entries = bench
        .wait_outbox(WAIT, |e| {
            e.iter().all(|(_, e)| e.status == Status::Delivered)
        })
        .await;
    assert!(
        entries.iter().all(|(_, e)| e.status == Status::Delivered),
        "all delivered: {:?}",
        entries
            .iter()
            .map(|(_, e)| (e.channel, e.status))
            .collect::<Vec<_>>()
    );
    for component in ["notify:sms", "notify:webhook", "notify:pagerduty"] {
        assert!(
            bench.wait_trouble(component, false, WAIT).await,
            "{component} cleared after the channel came back"
        );
    }
    // Give a duplicate the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&fake);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_raised_before_the_notifier_started_are_sent_once() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    // As when the appliance restarts into calls it recognised from its inbox, or crashed
    // after the alarm and before the outbox: the calls exist, nothing was queued for them.
    bench.record_call("early/m0", None, None);
    bench
        .raise("early/m0", call("Caller 0", "Building 7"))
        .await;
    bench.acknowledge("guard").await;
    bench.record_call("early/m1", None, None);
    bench
        .raise("early/m1", call("Caller 1", "Building 7"))
        .await;
    assert!(bench.outbox().is_empty());

    bench.start(&config(&fake));
    let sms = fake.wait_accepted(Peer::Twilio, 2, WAIT).await;
    assert_eq!(sms.len(), 2, "an SMS for each call");
    let pd: Vec<_> = fake
        .wait_accepted(Peer::PagerDuty, 3, WAIT)
        .await
        .iter()
        .map(|r| {
            let e = r.json();
            (
                e["dedup_key"].as_str().unwrap_or("").to_string(),
                e["event_action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let pair = |k: &str, a: &str| (format!("beacon/{DEVICE}/{k}"), a.to_string());
    assert_eq!(
        pd,
        [
            pair("early/m0", "trigger"),
            pair("early/m0", "acknowledge"),
            pair("early/m1", "trigger"),
        ],
        "PagerDuty follows both incidents, the acknowledged one acknowledged after its trigger"
    );
    let webhook = fake.wait_accepted(Peer::Webhook, 3, WAIT).await;
    let events: Vec<_> = webhook
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(events, ["alarm", "acknowledged", "alarm"]);
    assert_eq!(
        webhook[1].json()["who"].as_str(),
        Some("guard"),
        "the acknowledgement names who acknowledged"
    );

    // Started again on the same calls: nothing is sent twice.
    let mut bench = bench.restart().await;
    bench.start(&config(&fake));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.accepted(Peer::Twilio).len(), 2);
    assert_eq!(fake.accepted(Peer::PagerDuty).len(), 3);
    assert_eq!(fake.accepted(Peer::Webhook).len(), 3);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_while_down_survives_a_restart_and_is_delivered_once() {
    captured_logs();
    let fake = FakeChannels::start().await;
    for peer in [Peer::Twilio, Peer::Webhook, Peer::PagerDuty] {
        fake.set_down(peer, true);
    }
    let mut bench = Bench::new();
    bench.start(&config(&fake));
    three_calls_acknowledged_and_cleared(&bench, "restart").await;
    let entries = bench
        .wait_outbox(WAIT, |e| {
            e.len() == EXPECTED
                && [Channel::Sms, Channel::Webhook, Channel::Pagerduty]
                    .iter()
                    .all(|c| e.iter().any(|(_, e)| e.channel == *c && e.attempts > 0))
        })
        .await;
    assert_eq!(entries.len(), EXPECTED, "all queued before the restart");

    // Reboot: store closed and opened again, alarm restored, notifier started anew.
    let mut bench = bench.restart().await;
    for peer in [Peer::Twilio, Peer::Webhook, Peer::PagerDuty] {
        fake.set_down(peer, false);
    }
    bench.start(&config(&fake));
    let entries = bench
        .wait_outbox(WAIT, |e| {
            e.iter().all(|(_, e)| e.status == Status::Delivered)
        })
        .await;
    assert_eq!(entries.len(), EXPECTED, "the restart queued nothing new");
    assert!(entries.iter().all(|(_, e)| e.status == Status::Delivered));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&fake);

    // A second restart with everything delivered sends nothing again.
    let mut bench = bench.restart().await;
    bench.start(&config(&fake));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&fake);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_channel_becomes_a_trouble_with_the_reason() {
    captured_logs();
    // Nothing listens on this port: connection refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let config = NotifyConfig {
        webhook_url: Some(Secret::new(format!(
            "http://127.0.0.1:{closed}/hook?token=unreachable-token-55"
        ))),
        retry_first_seconds: 1,
        retry_max_seconds: 1,
        trouble_after_seconds: 2,
        recipients: vec![Recipient {
            channel: Channel::Webhook,
            to: Some("soc".into()),
            zones: Vec::new(),
            on: None,
        }],
        ..NotifyConfig::default()
    };
    let mut bench = Bench::new();
    bench.start(&config);
    bench.record_call("gone/m1", None, None);
    bench
        .raise("gone/m1", call("Ann Smith", "Building 7"))
        .await;
    assert!(
        bench.wait_trouble("notify:webhook", true, WAIT).await,
        "a channel failing longer than trouble_after_seconds is a trouble"
    );
    let detail = bench
        .alarm
        .view()
        .borrow()
        .display
        .troubles
        .iter()
        .find(|t| t.component == "notify:webhook")
        .map(|t| t.detail.clone())
        .unwrap_or_default();
    assert!(detail.contains("cannot connect"), "{detail}");
    let entry = bench.outbox()[0].1.clone();
    assert_eq!(entry.status, Status::Pending);
    assert!(entry.attempts >= 2);
    assert!(entry
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("webhook: cannot connect")));
    bench.stop().await;
    let logs = captured_logs();
    assert!(
        !logs.contains("unreachable-token-55"),
        "the URL's token is not logged"
    );
    assert!(!stored_outbox(&bench.store).contains("unreachable-token-55"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_is_queued_once_also_after_a_restart() {
    use beacon::outputs::notify::outbox::{Outbox, Policy};
    use beacon::outputs::notify::plan::{Details, Message};
    let message = |kind| Message {
        call_key: Some("chat/m1".into()),
        channel: Channel::Sms,
        recipient: "+14255550100".into(),
        kind,
        subject: "s".into(),
        body: "b".into(),
        details: Details::default(),
    };
    let policy = Policy {
        first: chrono::Duration::seconds(1),
        max: chrono::Duration::seconds(1),
        expire: chrono::Duration::minutes(1),
    };
    let now = chrono::Utc::now();
    let bench = Bench::new();
    let outbox = Outbox::open(bench.store.clone());
    assert!(outbox
        .enqueue(message(MessageKind::Alarm), now, &policy)
        .ok()
        .flatten()
        .is_some());
    assert_eq!(
        outbox
            .enqueue(message(MessageKind::Alarm), now, &policy)
            .ok(),
        Some(None)
    );
    assert!(
        outbox
            .enqueue(message(MessageKind::Acknowledged), now, &policy)
            .ok()
            .flatten()
            .is_some(),
        "another kind is another message"
    );
    drop(outbox);
    let bench = bench.restart().await;
    let outbox = Outbox::open(bench.store.clone());
    assert_eq!(
        outbox
            .enqueue(message(MessageKind::Alarm), now, &policy)
            .ok(),
        Some(None),
        "known after reopening the store"
    );
    assert_eq!(outbox.all().len(), 2);
}
