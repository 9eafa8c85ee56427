//! The whole path: an emergency message posted in the fake Microsoft cloud is published like
//! Graph into the real broker (SASL_SSL), consumed, fetched from Graph, recognised, raises the
//! alarm once and is recorded — and an edit adds the location without a second alarm.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_cloud::FakeCloud;
use crate::support::{unique, Appliance};
use beacon::alarm::AlarmState;
use beacon::calls::CallRecord;
use beacon::emergency::Rules;
use beacon::graph::subscription::SubscriptionKeeper;
use beacon::recognise::{MessageSource, Recogniser};
use chrono::Utc;
use serde_json::json;

const CHAT: &str = "19:e2e0c1e9a2b4c7d8e9f00112233aabb@thread.v2";

/// A hub, the fake cloud publishing into it, and an appliance signed in and subscribed to it.
struct Subscribed {
    hub: String,
    cloud: FakeCloud,
    appliance: Appliance,
    graph: beacon::graph::client::GraphClient,
    account: beacon::graph::account::Account,
}

async fn subscribed(prefix: &str, partitions: i32) -> Subscribed {
    let (hub, cloud) = crate::support::process::hub_and_cloud(prefix, partitions).await;
    let appliance = Appliance::new();
    let store = appliance.store.clone();
    // Sign in the service account and learn who it is.
    let (_tokens, graph) = crate::support::signed_in::sign_in(&cloud, &store).await;
    let account = beacon::graph::account::fetch_and_store(&graph, &store)
        .await
        .expect("/me");
    // Subscribe: Graph checks it can publish into the hub (the validation message).
    let keeper = SubscriptionKeeper::new(
        graph.clone(),
        store.clone(),
        appliance.client_states.clone(),
        crate::support::signed_in::subscription(&cloud, &hub),
    );
    keeper.step(Utc::now()).await.expect("reconcile");
    keeper.step(Utc::now()).await.expect("create");
    Subscribed {
        hub,
        cloud,
        appliance,
        graph,
        account,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_in_teams_raises_the_alarm_through_the_real_broker() {
    let Subscribed {
        hub,
        cloud,
        appliance,
        graph,
        account,
    } = subscribed("e2e-hub", 2).await;
    let store = appliance.store.clone();

    // The appliance: consumer → ingest → recognition (fetching from Graph) → alarm.
    let (alarm, _alarm_task) =
        beacon::alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let mut view = alarm.view();
    let mut running = appliance.consume(&hub, &unique("beacon-e2e"), true);
    let recogniser = Recogniser {
        service_account_id: Some(account.id.clone()),
        ..Recogniser::new(
            store.clone(),
            Arc::new(Rules::default()),
            alarm.clone(),
            MessageSource::Graph(graph.clone()),
        )
    };

    // Someone dials 911; Teams posts the notification to the group chat.
    let message = json!({
        "messageType": "message",
        "importance": "high",
        "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": "Jordan Rivera", "userIdentityType": "aadUser"}},
        "body": {"contentType": "html", "content": "<p>Jordan Rivera has placed an Emergency Call to 911</p>"}
    });
    let id = cloud.post_message(CHAT, message).await;
    let handed = running.until_message(&id, Duration::from_secs(30)).await;
    let entry = handed.last().expect("handed on").clone();
    assert!(
        matches!(
            &entry.notification,
            beacon::ingest::Notification::Message { message: None, .. }
        ),
        "a basic notification: the message is fetched"
    );
    recogniser.handle(&entry).await.expect("recognised");
    tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|v| v.state == AlarmState::Alerting),
    )
    .await
    .expect("alarm within 5 s")
    .expect("alarm view");
    let key = format!("{CHAT}/{id}");
    let record: CallRecord =
        serde_json::from_value(store.calls.get(&key).expect("read").expect("recorded"))
            .expect("record");
    assert_eq!(record.call.caller.display_name, "Jordan Rivera");
    assert!(record.alarmed_locally);
    assert!(record.call.location.text.is_none());

    // The location follows in an edit: one `updated` notification, merged, no second alarm.
    cloud
        .edit_message(
            CHAT,
            &id,
            json!({"body": {"contentType": "html", "content": "<p>Jordan Rivera has placed an Emergency Call to 911</p><p>Location: 725 Example Street, Floor 4, Redmond</p>"}}),
        )
        .await;
    let handed = running.take(1, Duration::from_secs(30)).await;
    let update = handed.first().expect("the edit is handed on").clone();
    recogniser.handle(&update).await.expect("merged");
    let record: CallRecord =
        serde_json::from_value(store.calls.get(&key).expect("read").expect("recorded"))
            .expect("record");
    assert_eq!(record.updates, 1);
    assert!(record
        .call
        .location
        .text
        .unwrap_or_default()
        .contains("725 Example Street"));
    let raised = store
        .audit
        .iter()
        .filter_map(|(_, v)| v.ok())
        .filter(|v| v["action"] == "call_raised")
        .count();
    assert_eq!(raised, 1, "one alarm for one call");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_posted_while_the_appliance_was_down_is_found_by_resync_once() {
    let Subscribed {
        hub,
        cloud,
        appliance,
        graph,
        ..
    } = subscribed("resync-hub", 1).await;
    let store = appliance.store.clone();

    // The appliance is down; the notification waits in the hub, and (say) the quota ate
    // another one silently: only resync can find that one.
    let before = Utc::now() - chrono::Duration::seconds(5);
    cloud.set_publishing(false);
    let quiet = cloud
        .post_message(
            CHAT,
            json!({"importance": "high", "messageType": "message",
                   "from": {"user": {"id": "u-1", "displayName": "Sam Lee"}},
                   "body": {"contentType": "html", "content": "<p>Sam Lee has placed an Emergency Call to 112</p>"}}),
        )
        .await;
    cloud.set_publishing(true);
    let loud = cloud
        .post_message(
            CHAT,
            json!({"importance": "high", "messageType": "message",
                   "from": {"user": {"id": "u-2", "displayName": "Ana Ruiz"}},
                   "body": {"contentType": "html", "content": "<p>Ana Ruiz has placed an Emergency Call to 911</p>"}}),
        )
        .await;

    // Back up: resync first, then the consumer catches up with the hub.
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let report = beacon::graph::resync::resync(
        &graph,
        &store,
        &tx,
        before,
        Utc::now(),
        beacon::graph::resync::RESYNC,
    )
    .await
    .expect("resync");
    assert_eq!(report.handed_off, 2, "{report:?}");
    let mut found = Vec::new();
    while let Ok(entry) = rx.try_recv() {
        found.push(crate::support::message_id_of(&entry).map(str::to_string));
    }
    assert!(
        found.contains(&Some(quiet.clone())) && found.contains(&Some(loud.clone())),
        "{found:?}"
    );

    let mut running = appliance.consume(&hub, &unique("beacon-resync"), true);
    let sentinel = cloud
        .post_message(CHAT, json!({"messageType": "message", "importance": "normal", "body": {"contentType": "text", "content": "sentinel"}}))
        .await;
    let mut handed = running
        .until_message(&sentinel, Duration::from_secs(20))
        .await;
    handed.extend(running.take(1, Duration::from_secs(1)).await);
    running.stop().await;
    let handed_ids: Vec<_> = handed
        .iter()
        .filter_map(crate::support::message_id_of)
        .collect();
    assert!(
        !handed_ids.contains(&loud.as_str()),
        "the hub's copy of a resynced message is not handed on again: {handed_ids:?}"
    );
    assert_eq!(handed.len(), 1, "only the sentinel: {handed_ids:?}");
    assert_eq!(appliance.counters.snapshot().duplicates, 1);
}
