//! Emergencies injected into the hub, each with a unique message id, and what became of each
//! record on the broker (partition and offset, from the producer's delivery reports).
//!
//! Rich notifications carry the message encrypted for the appliance's key (no Graph fetch);
//! basic ones name a message that the fake cloud holds, which the appliance must fetch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::client::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::Message;
use serde_json::{json, Value};

use crate::support::kafka::client_config;
use crate::support::notifications::{basic, rich, CHAT};
use crate::support::CLIENT_STATE;

/// How an emergency reaches the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The message inside the notification, encrypted.
    Rich,
    /// A basic notification; the message is fetched from the fake cloud.
    Basic,
    /// No notification at all: only the fake cloud holds the message (Graph dropped the
    /// notification, e.g. while the subscription was gone); only a resync can find it.
    CloudOnly,
}

/// One injected emergency.
#[derive(Debug, Clone)]
pub struct Injected {
    pub message_id: String,
    pub delivery: Delivery,
    pub phase: String,
    pub at: DateTime<Utc>,
}

impl Injected {
    /// The key of the call in the store and the alarm.
    pub fn key(&self) -> String {
        format!("{CHAT}/{}", self.message_id)
    }
}

/// Where a record landed: (partition, offset), or the producer's error in words.
pub type Landing = Result<(i32, i64), String>;

struct Reports {
    landings: Arc<Mutex<BTreeMap<String, Landing>>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<String>;

    fn delivery(&self, result: &DeliveryResult<'_>, message_id: Box<String>) {
        let landing = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        if let Ok(mut map) = self.landings.lock() {
            map.insert(*message_id, landing);
        }
    }
}

/// The encryption certificate the appliance publishes for rich notifications.
#[derive(Clone)]
pub struct RichKey {
    pub certificate_der: Vec<u8>,
    pub id: String,
}

/// Produces notifications into one hub and remembers every emergency it injected.
pub struct Injector {
    producer: ThreadedProducer<Reports>,
    topic: String,
    key: RichKey,
    landings: Arc<Mutex<BTreeMap<String, Landing>>>,
    pub injected: Vec<Injected>,
    next: u64,
    run_id: String,
}

/// A Teams emergency notification message as Graph returns it.
pub fn emergency_message(id: &str, caller: &str) -> Value {
    json!({
        "id": id,
        "messageType": "message",
        "createdDateTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastModifiedDateTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "chatId": CHAT,
        "importance": "high",
        "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": caller, "userIdentityType": "aadUser"}},
        "body": {"contentType": "html", "content": format!("<p>{caller} has placed an Emergency Call to 911</p><p>Location: 725 Example Street, Floor 4</p>")},
        "attachments": []
    })
}

/// An ordinary chat message (the bulk of a busy chat).
pub fn ordinary_message(id: &str) -> Value {
    json!({
        "id": id,
        "messageType": "message",
        "createdDateTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "chatId": CHAT,
        "importance": "normal",
        "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": "Robin Chat", "userIdentityType": "aadUser"}},
        "body": {"contentType": "text", "content": format!("lunch at noon? ({id})")},
        "attachments": []
    })
}

impl Injector {
    pub fn new(topic: &str, key: RichKey) -> Injector {
        let landings = Arc::new(Mutex::new(BTreeMap::new()));
        let producer = client_config()
            .set("linger.ms", "5")
            .set("acks", "all")
            // A broker outage is part of the campaign: keep records until it is back.
            .set("message.timeout.ms", "600000")
            .create_with_context(Reports {
                landings: landings.clone(),
            })
            .expect("producer");
        let run_id = format!("{:x}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
        Injector {
            producer,
            topic: topic.to_string(),
            key,
            landings,
            injected: Vec::new(),
            next: 0,
            run_id,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}-{:06}", self.run_id, self.next)
    }

    fn send(&self, message_id: &str, body: &[u8]) {
        let record =
            BaseRecord::with_opaque_to(&self.topic, Box::new(message_id.to_string())).payload(body);
        // The queue is large; a full one is waited out, never dropped.
        let mut record: BaseRecord<'_, (), [u8], Box<String>> = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "produce: {e}"
                    );
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Sends one rich emergency notification.
    pub fn rich_emergency(&mut self, phase: &str) -> Injected {
        let id = self.next_id("em-r");
        let message = emergency_message(&id, &format!("Caller {id}"));
        let body = rich(
            CLIENT_STATE,
            &id,
            &message,
            &self.key.certificate_der,
            &self.key.id,
        );
        self.send(&id, body.as_bytes());
        self.remember(id, Delivery::Rich, phase)
    }

    /// Posts an emergency in the fake cloud (not published by it) and sends the basic
    /// notification for it.
    pub async fn basic_emergency(
        &mut self,
        cloud: &crate::support::fake_cloud::FakeCloud,
        phase: &str,
    ) -> Injected {
        let id = self.next_id("em-b");
        cloud
            .post_message(CHAT, emergency_message(&id, &format!("Caller {id}")))
            .await;
        self.send(&id, basic(CLIENT_STATE, &id, "created").as_bytes());
        self.remember(id, Delivery::Basic, phase)
    }

    /// Posts an emergency in the fake cloud without any notification (found only by resync).
    pub async fn cloud_only_emergency(
        &mut self,
        cloud: &crate::support::fake_cloud::FakeCloud,
        phase: &str,
    ) -> Injected {
        let id = self.next_id("em-c");
        cloud
            .post_message(CHAT, emergency_message(&id, &format!("Caller {id}")))
            .await;
        self.remember(id, Delivery::CloudOnly, phase)
    }

    /// Sends one rich notification of an ordinary message (not remembered: not an emergency).
    pub fn rich_ordinary(&mut self) {
        let id = self.next_id("chat");
        let body = rich(
            CLIENT_STATE,
            &id,
            &ordinary_message(&id),
            &self.key.certificate_der,
            &self.key.id,
        );
        self.send(&id, body.as_bytes());
    }

    /// Sends a record body that is already sealed (pre-built bursts).
    pub fn send_prepared(&mut self, message_id: &str, body: &[u8]) {
        self.send(message_id, body);
    }

    /// Builds a rich notification body without sending it.
    pub fn seal_ordinary(&mut self) -> (String, String) {
        let id = self.next_id("chat");
        let body = rich(
            CLIENT_STATE,
            &id,
            &ordinary_message(&id),
            &self.key.certificate_der,
            &self.key.id,
        );
        (id, body)
    }

    /// Builds a rich emergency notification body without sending it; remembers it as
    /// injected once [`Injector::send_prepared`] has sent it (the caller says when).
    pub fn seal_emergency(&mut self) -> (String, String) {
        let id = self.next_id("em-r");
        let body = rich(
            CLIENT_STATE,
            &id,
            &emergency_message(&id, &format!("Caller {id}")),
            &self.key.certificate_der,
            &self.key.id,
        );
        (id, body)
    }

    pub fn remember(&mut self, message_id: String, delivery: Delivery, phase: &str) -> Injected {
        let injected = Injected {
            message_id,
            delivery,
            phase: phase.to_string(),
            at: Utc::now(),
        };
        self.injected.push(injected.clone());
        injected
    }

    /// Waits until everything sent is on the broker (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.producer.flush(timeout).is_ok()
    }

    /// Where each record landed so far, by message id.
    pub fn landings(&self) -> BTreeMap<String, Landing> {
        self.landings.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
