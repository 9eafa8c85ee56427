//! A burst through recognition loses no emergency: 3,000 rich notifications (one in a hundred
//! an emergency) handed on as fast as the channel takes them, the way the consumer does after
//! a backlog; every emergency is recorded and raised exactly once, every entry leaves the inbox.

use std::sync::Arc;
use std::time::Duration;

use crate::support::console::emergency_message;
use crate::support::Appliance;
use beacon::alarm::{AlarmConfig, AuditAction};
use beacon::emergency::Rules;
use beacon::graph::notification::ChangeType;
use beacon::ingest::{InboxEntry, Notification};
use beacon::recognise::{MessageSource, Recogniser};
use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;

const CHAT: &str = "19:burst0c1e9a2b4c7d8e9f00112233aa@thread.v2";

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_rich_notifications_loses_no_emergency() {
    let appliance = Appliance::new();
    let store = appliance.store.clone();
    let (alarm, _task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), store.clone(), Utc::now());
    let recogniser = Recogniser::new(
        store.clone(),
        Arc::new(Rules::default()),
        alarm.clone(),
        MessageSource::Unavailable,
    );
    let (tx, rx) = mpsc::channel(1024);
    let stage = tokio::spawn(recogniser.run(rx));
    let n = 3_000;
    let mut emergencies = Vec::new();
    for i in 0..n {
        let id = format!("b{i}");
        let mut message = if i % 100 == 50 {
            emergency_message(&format!("Caller {i}"))
        } else {
            json!({"messageType": "message", "importance": "normal",
                   "from": {"user": {"id": "u-2", "displayName": "Sam"}},
                   "body": {"contentType": "text", "content": format!("lunch at {i}?")}})
        };
        if let Some(fields) = message.as_object_mut() {
            fields.insert("id".into(), json!(id));
            fields.insert("chatId".into(), json!(CHAT));
            fields.insert("createdDateTime".into(), json!(Utc::now().to_rfc3339()));
        }
        if i % 100 == 50 {
            emergencies.push(format!("{CHAT}/{id}"));
        }
        let entry = InboxEntry {
            key: format!("burst/{id}"),
            received_at: Utc::now(),
            position: format!("burst@{i}"),
            notification: Notification::Message {
                subscription_id: "sub".into(),
                chat_id: CHAT.into(),
                message_id: id,
                change_type: ChangeType::Created,
                message: Some(message),
            },
            raw: None,
        };
        assert!(store.admit(&entry.key, Utc::now(), &entry).expect("admit"));
        tx.send(entry).await.expect("recognition running");
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(120), stage)
        .await
        .expect("recognition drained the burst within 120 s")
        .expect("join");
    let missing: Vec<_> = emergencies
        .iter()
        .filter(|key| store.calls.get(key).ok().flatten().is_none())
        .collect();
    assert!(missing.is_empty(), "emergencies not recorded: {missing:?}");
    assert_eq!(store.inbox.len(), 0, "every entry left the inbox");
    let raised = store
        .audit
        .iter()
        .filter_map(|(_, v)| v.ok())
        .filter(|v| v["action"] == json!(AuditAction::CallRaised))
        .count();
    assert_eq!(raised, emergencies.len(), "each emergency raised once");
}
