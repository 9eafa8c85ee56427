//! Self-test of the fake cloud's placed calls, driven with plain reqwest (not Beacon's client):
//! an app-only token from the client-credentials grant, the emergency-event subscription as
//! graph-teams.md B.10 describes it, and `place_call` / `end_call` publishing rich
//! `emergencyCallEvent` notifications into the real broker — decryptable with the
//! subscription's key and decodable as H.8 — while the security-desk message takes the chat
//! path (or is dropped: in Graph, not notified). Needs the test broker.

use std::time::Duration;

use crate::support::fake_cloud::{hub, CallPlan, Delivery, FakeCloud, FakeOptions};
use crate::support::{kafka, unique};
use beacon::graph::crypto::{EncryptionKey, KeyRing};
use beacon::graph::emergency_events::{self, CallEventType};
use beacon::graph::notification::EncryptedContent;
use chrono::Utc;
use serde_json::{json, Value};

const SECRET: &str = "fake-app-secret";

async fn app_token(cloud: &FakeCloud) -> String {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        cloud.login_url(),
        cloud.options().tenant_id
    );
    let body: Value = reqwest::Client::new()
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cloud.options().client_id.as_str()),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

async fn post(cloud: &FakeCloud, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", cloud.graph_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn hub_url(hub: &str) -> String {
    format!("EventHub:https://beacon-test.servicebus.windows.net/eventhubname/{hub}?tenantId=contoso.com")
}

/// The one item of a record.
fn item(record: &str) -> Value {
    let collection: Value = serde_json::from_str(record).expect("record is JSON");
    collection["value"][0].clone()
}

fn decrypt(key: &EncryptionKey, item: &Value) -> Value {
    let content = &item["encryptedContent"];
    let field = |name: &str| content[name].as_str().unwrap_or_default().to_string();
    let sealed = EncryptedContent {
        data: field("data"),
        data_key: field("dataKey"),
        data_signature: field("dataSignature"),
        encryption_certificate_id: field("encryptionCertificateId"),
        encryption_certificate_thumbprint: None,
    };
    let plain = KeyRing::new(vec![key.clone()])
        .decrypt(&sealed)
        .expect("decrypts with the subscription's key");
    serde_json::from_slice(&plain).expect("json")
}

#[tokio::test]
async fn a_placed_call_publishes_a_decryptable_event_and_ends_with_call_ended() {
    let cloud = FakeCloud::start(FakeOptions {
        kafka: true,
        client_secret: Some(SECRET.into()),
        ..FakeOptions::default()
    })
    .await;
    let hub_name = unique("fake-calls");
    kafka::create_topic(&hub_name, 1).await;
    let key = EncryptionKey::generate("beacon-calls", Utc::now(), 30).expect("key");
    let body = emergency_events::subscription_request(
        "HQ-Emergency",
        &hub_url(&hub_name),
        "calls-state",
        &key.certificate_base64(),
        &key.id,
        Utc::now(),
    );

    // Without consent the app-only token has no role: 403.
    let token = app_token(&cloud).await;
    let (status, refused) = post(&cloud, &token, "/subscriptions", &body).await;
    assert_eq!(status, 403, "{refused}");
    cloud.grant_app_consent(true);
    let token = app_token(&cloud).await;
    // Rich only, a day at most (B.10).
    let mut basic = body.clone();
    basic["includeResourceData"] = json!(false);
    assert_eq!(post(&cloud, &token, "/subscriptions", &basic).await.0, 400);
    let mut long = body.clone();
    long["expirationDateTime"] = json!((Utc::now() + chrono::Duration::hours(25)).to_rfc3339());
    assert_eq!(post(&cloud, &token, "/subscriptions", &long).await.0, 400);
    let (status, sub) = post(&cloud, &token, "/subscriptions", &body).await;
    assert_eq!(status, 201, "{sub}");
    // One per application, tenant and policy.
    assert_eq!(post(&cloud, &token, "/subscriptions", &body).await.0, 409);

    let mut placed = cloud.place_call(CallPlan {
        event: Delivery::After(Duration::from_millis(200)),
        chat: Delivery::Dropped,
        number_dialed: "933".into(),
        ..CallPlan::new("HQ-Emergency")
    });
    let delivered = placed.delivered().await;
    let published = delivered
        .event_published_at
        .expect("the event was published");
    assert!(published >= placed.placed_at + chrono::Duration::milliseconds(200));
    assert!(delivered.chat_posted_at.is_some() && !delivered.chat_notified);
    let ended = cloud.end_call(&placed).await.expect("callEnded published");

    // Validation, callStarted, callEnded (one partition: in order).
    let records = hub::read(&hub_name, 3, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let started = item(&records[1]);
    assert_eq!(started["subscriptionId"], sub["id"]);
    assert_eq!(started["clientState"], "calls-state");
    assert_eq!(started["changeType"], "updated");
    assert_eq!(started["resourceData"]["id"], json!(placed.event_id));
    let event = emergency_events::decode(&decrypt(&key, &started)).expect("H.8 shape");
    assert_eq!(event.id, placed.event_id);
    assert_eq!(event.event_type, CallEventType::CallStarted);
    assert_eq!(event.policy_name.as_deref(), Some("HQ-Emergency"));
    assert_eq!(event.number_dialed.as_deref(), Some("933"));
    assert_eq!(event.caller.display_name.as_deref(), Some("Jordan Rivera"));
    assert_eq!(
        event.caller.upn.as_deref(),
        Some("jordan.rivera@contoso.com")
    );
    assert_eq!(
        event.caller.tenant_id.as_deref(),
        Some(cloud.options().tenant_id.as_str())
    );
    assert_eq!(
        event.caller.address.and_then(|a| a.city).as_deref(),
        Some("Redmond")
    );
    assert!(event.caller.coordinates.is_some());
    assert_eq!(
        event.at.timestamp_millis(),
        placed.placed_at.timestamp_millis()
    );
    let end = emergency_events::decode(&decrypt(&key, &item(&records[2]))).expect("decodes");
    assert_eq!((end.id, end.event_type), (ended, CallEventType::CallEnded));

    // The dropped chat message is in Graph all the same, naming the same caller.
    let (message, _) = (placed.message_id.clone(), ());
    let resp: Value = reqwest::Client::new()
        .get(format!(
            "{}/chats/{}/messages",
            cloud.graph_url(),
            placed.chat_id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    // The app-only token does not open chats (the chat path is the service account's).
    assert_eq!(resp["error"]["code"], "Forbidden", "{resp}");
    assert_eq!(cloud.dropped_notifications().len(), 1);
    assert_eq!(cloud.dropped_notifications()[0].1, message);

    // A dropped event is never published.
    let mut lost = cloud.place_call(CallPlan {
        event: Delivery::Dropped,
        chat: Delivery::Never,
        ..CallPlan::new("HQ-Emergency")
    });
    assert_eq!(lost.delivered().await, Default::default());
    assert!(hub::read(&hub_name, 4, Duration::from_secs(2)).await.len() == 3);
}
