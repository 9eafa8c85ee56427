//! What Graph writes into the Event Hub (graph-teams.md C, H): change notifications (H.1),
//! rich ones with `encryptedContent` (H.2), lifecycle events (H.3–H.5) and the validation
//! message at subscription creation (H.6). One `changeNotificationCollection` per record
//! (C.1 [INF]); no key, no headers, default partitioner (C.5: none documented).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::super::kafka;
use super::subscriptions::Subscription;
use super::web::{guid, notification_time};
use super::FakeOptions;

/// Lifecycle events (C.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// H.3; marks the subscription as needing reauthorization (delivery pauses until then).
    ReauthorizationRequired,
    /// H.4; Graph removed the subscription.
    SubscriptionRemoved,
    /// H.5; documented for Outlook resources only (B.9), offered for parser tests.
    Missed,
}

impl LifecycleEvent {
    pub fn name(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

/// One record the fake published (also kept when Kafka is off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub topic: String,
    pub body: String,
}

/// Publishing switches.
pub struct Switches {
    /// `false`: nothing is published, silently (as when the evaluation quota is used up, G11).
    pub enabled: bool,
    /// `false`: lifecycle events are not delivered (B.9: delivery via Event Hubs is [UNK]).
    pub lifecycle_delivery: bool,
    /// Notifications delivered for evaluation-mode subscriptions so far (B.1: 500 a month).
    pub evaluation_used: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            enabled: true,
            lifecycle_delivery: true,
            evaluation_used: 0,
        }
    }
}

/// Sends records into the broker (when enabled) and keeps a log of everything published.
pub struct Publisher {
    kafka: bool,
    senders: Mutex<HashMap<String, Arc<kafka::Sender>>>,
    log: Mutex<Vec<Published>>,
}

impl Publisher {
    pub fn new(kafka: bool) -> Publisher {
        Publisher {
            kafka,
            senders: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    pub fn log(&self) -> Vec<Published> {
        self.log.lock().expect("log").clone()
    }

    /// Whether Graph could publish into `hub` (always true without Kafka).
    pub async fn can_publish(&self, hub: &str) -> bool {
        if !self.kafka {
            return true;
        }
        let hub = hub.to_string();
        tokio::task::spawn_blocking(move || super::hub::exists(&hub))
            .await
            .unwrap_or(false)
    }

    /// Publishes and waits until the broker acknowledged every record.
    pub async fn deliver(self: &Arc<Self>, records: Vec<Published>) {
        if records.is_empty() {
            return;
        }
        self.log
            .lock()
            .expect("log")
            .extend(records.iter().cloned());
        if !self.kafka {
            return;
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut used = Vec::new();
            for record in &records {
                let sender = this.sender(&record.topic);
                sender.send(None, record.body.as_bytes());
                used.push(sender);
            }
            for sender in used {
                sender.flush();
            }
        })
        .await
        .expect("publish task");
    }

    fn sender(&self, topic: &str) -> Arc<kafka::Sender> {
        let mut senders = self.senders.lock().expect("senders");
        Arc::clone(
            senders
                .entry(topic.to_string())
                .or_insert_with(|| Arc::new(kafka::Sender::new(topic))),
        )
    }
}

/// The validation message for a new subscription's hub (B.6, H.6).
pub fn validation(hub: &str) -> Published {
    let body = json!({"value": [{
        "subscriptionId": "NA",
        "subscriptionExpirationDateTime": "NA",
        "clientState": "NA",
        "changeType": format!("Validation: Testing client application reachability for subscription Request-Id: {}", guid()),
        "resource": "NA",
        "resourceData": {"@odata.type": "NA", "@odata.id": "NA", "id": "NA"}
    }]});
    Published {
        topic: hub.to_string(),
        body: body.to_string(),
    }
}

/// The fields every item of a subscription carries (C.1).
fn item_base(opts: &FakeOptions, sub: &Subscription) -> serde_json::Map<String, Value> {
    let mut item = serde_json::Map::new();
    item.insert("subscriptionId".into(), json!(sub.id));
    item.insert(
        "subscriptionExpirationDateTime".into(),
        json!(notification_time(sub.expiration)),
    );
    if let Some(state) = &sub.client_state {
        item.insert("clientState".into(), json!(state));
    }
    item.insert("tenantId".into(), json!(opts.tenant_id));
    item
}

/// Change-notification items (topic, item) as records: one collection per item, or with
/// `batch` one per hub holding all its items in order (C.1: `value[]` may hold several
/// subscriptions' notifications).
pub fn collections(items: Vec<(String, Value)>, batch: bool) -> Vec<Published> {
    let mut records: Vec<(String, Vec<Value>)> = Vec::new();
    for (topic, item) in items {
        match records.iter_mut().find(|(t, _)| batch && *t == topic) {
            Some((_, batched)) => batched.push(item),
            None => records.push((topic, vec![item])),
        }
    }
    records
        .into_iter()
        .map(|(topic, items)| Published {
            topic,
            body: json!({ "value": items }).to_string(),
        })
        .collect()
}

/// A change notification item for one subscription and its hub (H.1; H.2 with
/// `encryptedContent` when the subscription has `includeResourceData`). `message` is the
/// chatMessage as it now is.
pub fn change(
    opts: &FakeOptions,
    sub: &Subscription,
    chat_id: &str,
    message: &Value,
    change_type: &str,
) -> (String, Value) {
    let id = message["id"].as_str().unwrap_or_default();
    let resource = format!("chats('{chat_id}')/messages('{id}')");
    let mut item = item_base(opts, sub);
    item.insert("changeType".into(), json!(change_type));
    item.insert("resource".into(), json!(resource));
    item.insert(
        "resourceData".into(),
        json!({"id": id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": resource}),
    );
    // [INF] A deleted message is notified without content; created/updated carry it.
    if let (true, Some(cert), Some(cert_id), false) = (
        sub.include_resource_data,
        &sub.encryption_certificate,
        &sub.encryption_certificate_id,
        change_type == "deleted",
    ) {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert.trim())
            .expect("certificate checked at creation");
        let sealed = beacon::graph::crypto::seal(&der, cert_id, message.to_string().as_bytes())
            .expect("seal");
        item.insert(
            "encryptedContent".into(),
            json!({
                "data": sealed.data,
                "dataSignature": sealed.data_signature,
                "dataKey": sealed.data_key,
                "encryptionCertificateId": sealed.encryption_certificate_id,
                "encryptionCertificateThumbprint": sealed.encryption_certificate_thumbprint,
            }),
        );
    }
    (sub.hub.clone(), Value::Object(item))
}

/// A lifecycle event (H.3–H.5) into the subscription's lifecycle hub; `None` without one.
pub fn lifecycle(
    opts: &FakeOptions,
    sub: &Subscription,
    event: LifecycleEvent,
) -> Option<Published> {
    let hub = sub.lifecycle_hub.clone()?;
    let mut item = item_base(opts, sub);
    item.insert("lifecycleEvent".into(), json!(event.name()));
    collections(vec![(hub, Value::Object(item))], false).pop()
}

/// A rich notification of an emergency call event for the policy's subscription (B.10, H.8):
/// `changeType: updated`, the subscription's resource, `resourceData` naming the
/// `emergencyCallEvent`, and the event itself in `encryptedContent` (rich only).
pub fn call_event(
    opts: &FakeOptions,
    sub: &Subscription,
    event_id: &str,
    event: &Value,
) -> (String, Value) {
    let mut item = item_base(opts, sub);
    item.insert("changeType".into(), json!("updated"));
    item.insert("resource".into(), json!(sub.resource));
    item.insert(
        "resourceData".into(),
        json!({"id": event_id, "@odata.type": "#microsoft.graph.emergencyCallEvent", "@odata.id": sub.resource}),
    );
    if let (Some(cert), Some(cert_id)) =
        (&sub.encryption_certificate, &sub.encryption_certificate_id)
    {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert.trim())
            .expect("certificate checked at creation");
        let sealed =
            beacon::graph::crypto::seal(&der, cert_id, event.to_string().as_bytes()).expect("seal");
        item.insert(
            "encryptedContent".into(),
            json!({
                "data": sealed.data,
                "dataSignature": sealed.data_signature,
                "dataKey": sealed.data_key,
                "encryptionCertificateId": sealed.encryption_certificate_id,
                "encryptionCertificateThumbprint": sealed.encryption_certificate_thumbprint,
            }),
        );
    }
    (sub.hub.clone(), Value::Object(item))
}
