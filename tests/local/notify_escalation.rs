//! Escalation end to end: nobody acknowledges a real call within `escalate_after_minutes`,
//! the alarm's timer fires, and the escalation recipients get their message (here an SMS
//! through the Twilio fake) — once, while the ordinary recipients are not told again.

use crate::support::fake_channels;
use crate::support::notify_harness;

use std::time::Duration;

use beacon::alarm::AlarmConfig;
use beacon::outputs::notify::channel::Channel;
use beacon::outputs::notify::config::{EscalationRecipient, Recipient};
use beacon::outputs::notify::message_kind::MessageKind;
use beacon::outputs::notify::outbox::Status;
use beacon::outputs::notify::NotifyConfig;
use beacon::secret::Secret;
use fake_channels::{FakeChannels, Peer, TWILIO_SID, TWILIO_TOKEN};
use notify_harness::{call, Bench};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_call_reaches_the_escalation_recipients_once() {
    let fake = FakeChannels::start().await;
    let mut bench = Bench::with_alarm(AlarmConfig {
        escalate_after_minutes: Some(1),
        ..AlarmConfig::default()
    });
    bench.start(&NotifyConfig {
        twilio_url: fake.twilio_url(),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(Secret::new(TWILIO_TOKEN)),
        twilio_from: Some("+15005550006".into()),
        retry_first_seconds: 1,
        retry_max_seconds: 2,
        timeout_seconds: 5,
        recipients: vec![Recipient {
            channel: Channel::Sms,
            to: Some("+14255550100".into()),
            zones: Vec::new(),
            on: None,
        }],
        escalation: vec![EscalationRecipient {
            channel: Channel::Sms,
            to: Some("+14255550199".into()),
            zones: Vec::new(),
        }],
        ..NotifyConfig::default()
    });
    bench.record_call("chat/esc", None, None);
    bench
        .raise("chat/esc", call("Ann Smith", "Building 7"))
        .await;
    let first = fake
        .wait_accepted(Peer::Twilio, 1, Duration::from_secs(20))
        .await;
    assert_eq!(first.len(), 1, "the alarm message");

    // The escalation timer runs in whole minutes: 60 s after the raise.
    let both = fake
        .wait_accepted(Peer::Twilio, 2, Duration::from_secs(100))
        .await;
    assert_eq!(both.len(), 2, "an escalation message after a minute");
    let escalation = &both[1].form();
    assert_eq!(
        escalation.get("To").map(String::as_str),
        Some("+14255550199")
    );
    let body = escalation.get("Body").cloned().unwrap_or_default();
    assert!(body.contains("Ann Smith"), "{body}");
    let entries = bench
        .wait_outbox(Duration::from_secs(20), |e| {
            e.iter()
                .any(|(_, e)| e.kind == MessageKind::Escalation && e.status == Status::Delivered)
        })
        .await;
    let escalations = entries
        .iter()
        .filter(|(_, e)| e.kind == MessageKind::Escalation)
        .count();
    assert_eq!(escalations, 1, "escalated once: {entries:?}");
    // Nothing more after the escalation (it fires once per episode).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.accepted(Peer::Twilio).len(), 2);
    bench.stop().await;
}
