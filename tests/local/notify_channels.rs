//! SMS (Twilio), PagerDuty, the JSON webhook, Slack and Teams against local fakes that follow
//! the documented request formats and errors (tests/support/fake_channels.rs): the fields
//! each peer needs, the PagerDuty incident life cycle on one dedup key, a webhook signature a
//! receiver can verify, throttling retried after `Retry-After`, a refused request a trouble —
//! and no secret in the logs or the outbox.

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
use notify_harness::{call, captured_logs, stored_outbox, test_call, Bench, DEVICE};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

const HMAC_SECRET: &str = "hmac-secret-b83f2a";
const WAIT: Duration = Duration::from_secs(20);

fn recipient(channel: Channel, to: Option<&str>) -> Recipient {
    Recipient {
        channel,
        to: to.map(str::to_string),
        zones: Vec::new(),
        on: None,
    }
}

/// Every HTTP channel pointed at the fakes.
fn config(fake: &FakeChannels, recipients: Vec<Recipient>) -> NotifyConfig {
    NotifyConfig {
        twilio_url: fake.twilio_url(),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(Secret::new(TWILIO_TOKEN)),
        twilio_from: Some("+15005550006".into()),
        webhook_url: Some(Secret::new(fake.webhook_url())),
        webhook_secret: Some(Secret::new(HMAC_SECRET)),
        slack_url: Some(Secret::new(fake.slack_url())),
        teams_url: Some(Secret::new(fake.teams_url())),
        pagerduty_url: fake.pagerduty_url(),
        pagerduty_routing_key: Some(Secret::new(PAGERDUTY_KEY)),
        retry_first_seconds: 1,
        retry_max_seconds: 2,
        trouble_after_seconds: 60,
        timeout_seconds: 5,
        recipients,
        ..NotifyConfig::default()
    }
}

fn assert_no_secrets(fake: &FakeChannels, bench: &Bench) {
    let logs = captured_logs();
    let outbox = stored_outbox(&bench.store);
    for secret in [
        TWILIO_TOKEN,
        PAGERDUTY_KEY,
        HMAC_SECRET,
        "hook-url-token-93e1",
        "slack-url-token-77aa",
        "teams-url-token-41cd",
    ] {
        assert!(!logs.contains(secret), "a secret is in the logs");
        assert!(!outbox.contains(secret), "a secret is in the outbox");
    }
    assert!(!outbox.is_empty());
    let _ = fake;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_goes_to_twilio_as_documented_form_fields() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![
            recipient(Channel::Sms, Some("+14255550100")),
            recipient(Channel::Sms, Some("+14255550101")),
        ],
    ));
    bench.record_call("chat/m1", None, Some((47.6, -122.1)));
    bench
        .raise("chat/m1", call("Ann Smith", "Building 7"))
        .await;
    let got = fake.wait_accepted(Peer::Twilio, 2, WAIT).await;
    assert_eq!(got.len(), 2);
    let mut to = Vec::new();
    for request in &got {
        assert_eq!(
            request.path,
            format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
        );
        let form = request.form();
        assert_eq!(form.get("From").map(String::as_str), Some("+15005550006"));
        let body = form.get("Body").cloned().unwrap_or_default();
        assert!(body.contains("Caller: Ann Smith"), "{body}");
        assert!(body.contains("Call-back number: +14255550123"), "{body}");
        assert!(body.contains("Location: Building 7"), "{body}");
        assert!(body.contains("openstreetmap.org/?mlat=47.600000"), "{body}");
        to.push(form.get("To").cloned().unwrap_or_default());
    }
    to.sort();
    assert_eq!(to, ["+14255550100", "+14255550101"]);
    bench
        .wait_outbox(WAIT, |e| {
            e.iter().all(|(_, e)| e.status == Status::Delivered)
        })
        .await;
    bench.stop().await;
    assert_no_secrets(&fake, &bench);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_triggers_acknowledges_and_resolves_one_incident() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    bench.start(&config(&fake, vec![recipient(Channel::Pagerduty, None)]));
    bench.record_call("chat/m2", Some("HQ"), None);
    bench
        .raise("chat/m2", call("Ann Smith", "Building 7"))
        .await;
    fake.wait_accepted(Peer::PagerDuty, 1, WAIT).await;
    bench.acknowledge("guard-1").await;
    fake.wait_accepted(Peer::PagerDuty, 2, WAIT).await;
    bench.clear("guard-1").await;
    let events: Vec<_> = fake
        .wait_accepted(Peer::PagerDuty, 3, WAIT)
        .await
        .iter()
        .map(|r| r.json())
        .collect();
    let actions: Vec<_> = events
        .iter()
        .map(|e| e["event_action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    let dedup = events[0]["dedup_key"].as_str().unwrap_or("");
    assert_eq!(dedup, format!("beacon/{DEVICE}/chat/m2"));
    assert!(
        events.iter().all(|e| e["dedup_key"] == dedup),
        "one incident"
    );
    let trigger = &events[0]["payload"];
    assert_eq!(trigger["severity"], "critical");
    assert_eq!(trigger["source"], DEVICE);
    assert_eq!(trigger["custom_details"]["caller"], "Ann Smith");
    assert_eq!(trigger["custom_details"]["callback_number"], "+14255550123");
    assert!(trigger["summary"]
        .as_str()
        .is_some_and(|s| s.contains("EMERGENCY CALL 911")));
    let kinds: Vec<_> = bench.outbox().iter().map(|(_, e)| e.kind).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Alarm,
            MessageKind::Acknowledged,
            MessageKind::Cleared
        ]
    );
    bench.stop().await;
    assert_no_secrets(&fake, &bench);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_body_carries_a_verifiable_hmac_signature() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![recipient(Channel::Webhook, Some("soc"))],
    ));
    bench.record_call("chat/m3", None, None);
    bench.raise("chat/m3", test_call("Ann Smith", "Lab")).await;
    let got = fake.wait_accepted(Peer::Webhook, 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let request = &got[0];
    // What a receiver does: HMAC-SHA256 of the raw body under the shared secret.
    let key = PKey::hmac(HMAC_SECRET.as_bytes()).expect("key");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("signer");
    signer.update(&request.body).expect("update");
    let mac = signer.sign_to_vec().expect("sign");
    let expected = format!(
        "sha256={}",
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    assert_eq!(
        request.header("x-beacon-signature"),
        Some(expected.as_str())
    );
    let body = request.json();
    assert_eq!(body["event"], "test");
    assert_eq!(body["is_test"], true);
    assert_eq!(body["caller"], "Ann Smith");
    assert_eq!(body["call_key"], "chat/m3");
    assert!(body["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("THIS IS A TEST.")));
    let (id, _) = &bench.outbox()[0];
    assert_eq!(request.header("x-beacon-delivery"), Some(id.as_str()));
    assert_eq!(body["id"], id.as_str());
    bench.stop().await;
    assert_no_secrets(&fake, &bench);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_get_their_own_formats() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![
            recipient(Channel::Slack, None),
            recipient(Channel::Teams, None),
        ],
    ));
    bench.record_call("chat/m4", None, None);
    bench
        .raise("chat/m4", call("<!channel> Eve & co", "Dock 4"))
        .await;
    let slack = fake.wait_accepted(Peer::Slack, 1, WAIT).await;
    let teams = fake.wait_accepted(Peer::Teams, 1, WAIT).await;
    assert_eq!((slack.len(), teams.len()), (1, 1));
    let text = slack[0].json()["text"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains("&lt;!channel&gt; Eve &amp; co"),
        "escaped: {text}"
    );
    assert!(!text.contains("<!channel>"), "no mention from caller text");
    let card = &teams[0].json()["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let facts = card["body"][2]["facts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(facts
        .iter()
        .any(|f| f["title"] == "Location" && f["value"] == "Dock 4"));
    bench.stop().await;
    assert_no_secrets(&fake, &bench);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_wait_for_retry_after_then_deliver_once() {
    captured_logs();
    let fake = FakeChannels::start().await;
    fake.fail_next(Peer::Twilio, 1, 429, Some(2));
    fake.fail_next(Peer::PagerDuty, 2, 429, Some(1));
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![
            recipient(Channel::Sms, Some("+14255550100")),
            recipient(Channel::Pagerduty, None),
        ],
    ));
    bench.record_call("chat/m5", None, None);
    bench
        .raise("chat/m5", call("Ann Smith", "Building 7"))
        .await;
    let entries = bench
        .wait_outbox(WAIT, |e| {
            e.len() == 2 && e.iter().all(|(_, e)| e.status == Status::Delivered)
        })
        .await;
    assert!(
        entries.iter().all(|(_, e)| e.status == Status::Delivered),
        "{entries:?}"
    );
    let sms = entries
        .iter()
        .find(|(_, e)| e.channel == Channel::Sms)
        .map(|(_, e)| e.clone());
    let sms = sms.expect("sms entry");
    assert_eq!(sms.attempts, 2);
    let waited = sms
        .delivered_at
        .zip(Some(sms.created_at))
        .map(|(d, c)| d - c);
    assert!(
        waited.is_some_and(|w| w >= chrono::Duration::seconds(2)),
        "Retry-After 2 s was honoured: {waited:?}"
    );
    let pd = entries
        .iter()
        .find(|(_, e)| e.channel == Channel::Pagerduty)
        .map(|(_, e)| e.attempts);
    assert_eq!(pd, Some(3));
    assert_eq!(fake.accepted(Peer::Twilio).len(), 1, "exactly once");
    assert_eq!(fake.accepted(Peer::PagerDuty).len(), 1, "exactly once");
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_a_trouble_at_once_and_the_next_success_clears_it() {
    captured_logs();
    let fake = FakeChannels::start().await;
    fake.fail_next(Peer::Twilio, 1, 401, None);
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![recipient(Channel::Sms, Some("+14255550100"))],
    ));
    bench.record_call("chat/m6", None, None);
    bench
        .raise("chat/m6", call("Ann Smith", "Building 7"))
        .await;
    assert!(
        bench.wait_trouble("notify:sms", true, WAIT).await,
        "401 raises notify:sms without waiting for trouble_after_seconds (60 s)"
    );
    assert!(
        bench.wait_trouble("notify:sms", false, WAIT).await,
        "the retry succeeds and clears it"
    );
    let entries = bench.outbox();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.status, Status::Delivered);
    assert_eq!(entries[0].1.attempts, 2);
    assert!(entries[0]
        .1
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("401")));
    assert_eq!(fake.accepted(Peer::Twilio).len(), 1);
    bench.stop().await;
    assert_no_secrets(&fake, &bench);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_shows_why_and_does_not_hold_up_the_others() {
    captured_logs();
    let fake = FakeChannels::start().await;
    let mut bench = Bench::new();
    bench.start(&config(
        &fake,
        vec![
            // Valid E.164 for Beacon, but the fake (as Twilio) refuses it: 400, code 21211.
            recipient(Channel::Sms, Some("+10000000")),
            recipient(Channel::Sms, Some("+14255550100")),
        ],
    ));
    bench.record_call("chat/m7", None, None);
    bench
        .raise("chat/m7", call("Ann Smith", "Building 7"))
        .await;
    assert_eq!(fake.wait_accepted(Peer::Twilio, 1, WAIT).await.len(), 1);
    let entries = bench
        .wait_outbox(WAIT, |e| e.iter().any(|(_, e)| e.last_error.is_some()))
        .await;
    let refused = entries
        .iter()
        .find(|(_, e)| e.recipient == "+10000000")
        .map(|(_, e)| e.clone())
        .expect("entry");
    let error = refused.last_error.clone().unwrap_or_default();
    assert!(error.contains("Twilio answered 400"), "{error}");
    assert!(error.contains("21211"), "{error}");
    assert_eq!(refused.status, Status::Pending, "kept until it expires");
    let good = entries.iter().find(|(_, e)| e.recipient == "+14255550100");
    assert_eq!(good.map(|(_, e)| e.status), Some(Status::Delivered));
    bench.stop().await;
}
