//! Through recognition: a message the classifier finds only "possible" (an important message
//! that mentions an emergency without the Teams notification phrase) raises the possible
//! level — its own strobe pattern, "POSSIBLE EMERGENCY — CHECK TEAMS" with the message text —
//! not the full alarm; `emergency.possible_alert = "full"` brings the full alarm back.

use std::sync::Arc;
use std::time::Duration;

use crate::support::Appliance;
use beacon::alarm::{AlarmConfig, OutputPattern, POSSIBLE_HEADLINE};
use beacon::alarm_task::AlarmView;
use beacon::emergency::{PossibleAlert, Rules, RulesConfig};
use beacon::graph::notification::ChangeType;
use beacon::ingest::{InboxEntry, Notification};
use beacon::recognise::{MessageSource, Recogniser};
use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc;

/// Recognises the corpus fixture `name` with `rules`; returns the alarm's view once it has
/// taken the call in.
async fn recognise_fixture(name: &str, rules: Rules) -> AlarmView {
    let path = format!(
        "{}/tests/fixtures/emergency/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture");
    let message: Value = serde_json::from_str(&text).expect("fixture JSON");
    let chat = message["chatId"].as_str().unwrap_or("19:chat").to_string();
    let id = message["id"].as_str().unwrap_or("1").to_string();
    let appliance = Appliance::new();
    let store = appliance.store.clone();
    let (alarm, _task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), store.clone(), Utc::now());
    let recogniser = Recogniser::new(
        store.clone(),
        Arc::new(rules),
        alarm.clone(),
        MessageSource::Unavailable,
    );
    let (tx, rx) = mpsc::channel(4);
    let stage = tokio::spawn(recogniser.run(rx));
    let entry = InboxEntry {
        key: format!("possible/{id}"),
        received_at: Utc::now(),
        position: "possible@0".into(),
        notification: Notification::Message {
            subscription_id: "sub".into(),
            chat_id: chat,
            message_id: id,
            change_type: ChangeType::Created,
            message: Some(message),
        },
        raw: None,
    };
    assert!(store.admit(&entry.key, Utc::now(), &entry).expect("admit"));
    tx.send(entry).await.expect("recognition running");
    drop(tx);
    tokio::time::timeout(Duration::from_secs(30), stage)
        .await
        .expect("recognised within 30 s")
        .expect("join");
    let view = alarm.view().borrow().clone();
    view
}

#[tokio::test(flavor = "multi_thread")]
async fn a_possible_message_raises_the_possible_level_not_the_full_alarm() {
    let view = recognise_fixture("possible_keyword_not_a_drill", Rules::default()).await;
    assert_eq!(view.outputs.pattern, OutputPattern::Possible);
    assert_eq!(view.display.headline, POSSIBLE_HEADLINE);
    let call = &view.display.calls[0];
    assert!(call.summary.is_possible);
    assert_eq!(call.summary.caller_name.as_deref(), Some("Chris Walker"));
    let message = call.summary.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("someone collapsed in the Building 2 lobby"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn possible_alert_full_sounds_the_full_alarm_as_before() {
    let config = RulesConfig {
        possible_alert: PossibleAlert::Full,
        ..RulesConfig::default()
    };
    let rules = Rules::compile(&config).expect("rules");
    let view = recognise_fixture("possible_keyword_not_a_drill", rules).await;
    assert_eq!(view.outputs.pattern, OutputPattern::Alarm);
    assert!(view.outputs.siren.is_on());
    assert!(!view.display.calls[0].summary.is_possible);
}
