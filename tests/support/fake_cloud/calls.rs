//! Placing an emergency call in the fake tenant: what Microsoft's cloud does when someone
//! dials an emergency number from Teams under an emergency calling policy.
//!
//! Two independent things happen (graph-teams.md B.10, E.2, H.7, H.8):
//! * Graph fires an `emergencyCallEvent` (`callStarted`) for the policy: a rich notification
//!   of the policy's emergency-event subscription, published into its hub;
//! * Teams posts the "important" security-desk chat message, which goes through the chat path
//!   like any message ([`super::FakeCloud::post_message`]).
//!
//! Each has its own [`Delivery`]: after a delay, dropped (Graph lost the notification: the
//! event is not published; the chat message exists in Graph but its notification is not
//! published, see [`super::drops`]), or never (no event fired / no message posted at all).
//!
//! ```ignore
//! let placed = cloud.place_call(CallPlan {
//!     event: Delivery::After(Duration::ZERO),
//!     chat: Delivery::Dropped,
//!     ..CallPlan::new("HQ-Emergency")
//! });
//! let delivered = placed.delivered().await; // when each was published
//! cloud.end_call(&placed).await;            // callEnded
//! ```
//!
//! [UNK] Graph does not document whether `callEnded` carries the id of the `callStarted`
//! event; the fake gives every event its own id. `callerInfo` has no object id (H.8): the
//! plan's object id is the chat message's `from.user.id`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::web::guid;
use super::FakeCloud;

/// When (and whether) one source reports the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Published (event) or posted (chat message) this long after the call is placed.
    After(Duration),
    /// Graph loses the notification: the event is not published; the chat message is posted
    /// at once and can be read from Graph, but its notification is never published.
    Dropped,
    /// Nothing at all: no event fires (e.g. the caller's policy is not watched), no message
    /// is posted.
    Never,
}

/// Who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCaller {
    pub display_name: String,
    pub upn: String,
    /// The caller's Entra object id (the chat message's `from.user.id`).
    pub object_id: String,
    pub phone_number: String,
}

/// Where from (`emergencyCallerInfo.location`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallLocation {
    pub street: String,
    pub city: String,
    pub state: String,
    pub country_or_region: String,
    pub postal_code: String,
    /// `additionalData` (house number, floor, company, …).
    pub additional_data: Value,
    pub latitude: f64,
    pub longitude: f64,
}

impl CallLocation {
    /// One line, as Teams writes the location into the chat message.
    pub fn one_line(&self) -> String {
        let number = self.additional_data["houseNumber"].as_str().unwrap_or("");
        format!(
            "{number} {}, {}, {} {}, {}",
            self.street, self.city, self.state, self.postal_code, self.country_or_region
        )
        .trim()
        .to_string()
    }
}

/// A call to place. [`CallPlan::new`] gives the H.8 example's caller and location, both
/// sources delivered at once.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub caller: PlannedCaller,
    /// `emergencyNumberDialed`, and the number in the chat message ("911", "933", …).
    pub number_dialed: String,
    /// The emergency calling policy (the subscription's `policyName`).
    pub policy: String,
    pub location: CallLocation,
    /// The call event (second source).
    pub event: Delivery,
    /// The security-desk chat message (first source).
    pub chat: Delivery,
    /// The chat the message is posted into.
    pub chat_id: String,
    /// The chat message to post; `None`: a default emergency message naming the caller (from
    /// `from.user.id`/`displayName`), the number and the location. An `id` is added when
    /// missing.
    pub chat_message: Option<Value>,
}

impl CallPlan {
    /// Jordan Rivera dials 911 under `policy` from the H.8 example address; both sources
    /// deliver at once into the security-desk chat.
    pub fn new(policy: &str) -> CallPlan {
        CallPlan {
            caller: PlannedCaller {
                display_name: "Jordan Rivera".into(),
                upn: "jordan.rivera@contoso.com".into(),
                object_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
                phone_number: "+14255550123".into(),
            },
            number_dialed: "911".into(),
            policy: policy.into(),
            location: CallLocation {
                street: "Example Street".into(),
                city: "Redmond".into(),
                state: "WA".into(),
                country_or_region: "United States".into(),
                postal_code: "98052".into(),
                additional_data: json!({"houseNumber": "725", "streetSuffix": "St", "additionalInfo": "Floor 4", "companyName": "Contoso"}),
                latitude: 47.6396,
                longitude: -122.1283,
            },
            event: Delivery::After(Duration::ZERO),
            chat: Delivery::After(Duration::ZERO),
            chat_id: "19:security-desk@thread.v2".into(),
            chat_message: None,
        }
    }

    /// The decrypted `emergencyCallEvent` Graph would send (H.8, nested shape, coordinates as
    /// strings like the example).
    pub fn event(&self, event_id: &str, kind: &str, at: DateTime<Utc>, tenant_id: &str) -> Value {
        let resource = format!(
            "communications/calls/getEmergencyEventsByPolicy(policyName='{}')",
            self.policy.replace('\'', "''")
        );
        let l = &self.location;
        json!({
            "@odata.type": "#microsoft.graph.emergencyCallEvent",
            "@odata.id": resource,
            "id": event_id,
            "emergencyCallEvent": {
                "id": event_id,
                "callEventType": kind,
                "policyName": self.policy,
                "eventDateTime": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "emergencyNumberDialed": self.number_dialed,
                "callerInfo": {
                    "displayName": self.caller.display_name,
                    "upn": self.caller.upn,
                    "phoneNumber": self.caller.phone_number,
                    "tenantId": tenant_id,
                    "location": {
                        "address": {
                            "street": l.street, "city": l.city, "state": l.state,
                            "countryOrRegion": l.country_or_region, "postalCode": l.postal_code,
                            "additionalData": l.additional_data,
                        },
                        "coordinates": {
                            "latitude": format!("{:.4}", l.latitude),
                            "longitude": format!("{:.4}", l.longitude),
                        }
                    }
                }
            }
        })
    }

    /// The chat message to post (see [`CallPlan::chat_message`]), with `id`.
    pub fn message(&self, id: &str) -> Value {
        let mut message = self.chat_message.clone().unwrap_or_else(|| {
            json!({
                "importance": "high",
                "messageType": "message",
                "from": {"user": {
                    "id": self.caller.object_id,
                    "displayName": self.caller.display_name,
                    "userIdentityType": "aadUser"
                }},
                "body": {"contentType": "html", "content": format!(
                    "<p>{} has placed an Emergency Call to {}</p><p>Location: {}</p>",
                    self.caller.display_name, self.number_dialed, self.location.one_line()
                )},
                "attachments": []
            })
        });
        if message["id"].as_str().is_none() {
            message["id"] = json!(id);
        }
        message
    }
}

/// What each source did, once both are through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// When the call event was published into the hub; `None` when it was dropped, never
    /// fired, or no subscription covered the policy.
    pub event_published_at: Option<DateTime<Utc>>,
    /// When the chat message was posted (it exists in Graph from then on); `None` for
    /// [`Delivery::Never`].
    pub chat_posted_at: Option<DateTime<Utc>>,
    /// Whether the chat message's notification was published (false when dropped, or no
    /// subscription covered the chat).
    pub chat_notified: bool,
}

/// A placed call: its ids and start, and the two deliveries under way.
pub struct PlacedCall {
    /// The `callStarted` event's id.
    pub event_id: String,
    /// The chat message's id (set even when the message is never posted).
    pub message_id: String,
    pub chat_id: String,
    /// `eventDateTime` of `callStarted`.
    pub placed_at: DateTime<Utc>,
    pub plan: CallPlan,
    event: Option<JoinHandle<Option<DateTime<Utc>>>>,
    chat: Option<JoinHandle<(Option<DateTime<Utc>>, bool)>>,
}

impl PlacedCall {
    /// Waits until both deliveries are through and says what each did.
    pub async fn delivered(&mut self) -> Delivered {
        let event_published_at = match self.event.take() {
            Some(task) => task.await.expect("event task"),
            None => None,
        };
        let (chat_posted_at, chat_notified) = match self.chat.take() {
            Some(task) => task.await.expect("chat task"),
            None => (None, false),
        };
        Delivered {
            event_published_at,
            chat_posted_at,
            chat_notified,
        }
    }
}

impl FakeCloud {
    /// Places an emergency call (see the module docs). Returns at once; the deliveries run
    /// on their own, each after its delay.
    pub fn place_call(&self, plan: CallPlan) -> PlacedCall {
        let placed_at = Utc::now();
        let event_id = guid();
        let message_id = format!(
            "{}{:03}",
            placed_at.timestamp_millis(),
            placed_at.timestamp_subsec_nanos() % 1000
        );
        let event = match plan.event {
            Delivery::After(delay) => {
                let inner = Arc::clone(&self.inner);
                let body = plan.event(
                    &event_id,
                    "callStarted",
                    placed_at,
                    &inner.options.tenant_id,
                );
                let (policy, id) = (plan.policy.clone(), event_id.clone());
                Some(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    inner
                        .publish_call_event(&policy, &id, &body)
                        .await
                        .then(Utc::now)
                }))
            }
            Delivery::Dropped | Delivery::Never => None,
        };
        let chat = match plan.chat {
            Delivery::Never => None,
            delivery => {
                let inner = Arc::clone(&self.inner);
                let message = plan.message(&message_id);
                let (chat_id, id) = (plan.chat_id.clone(), message_id.clone());
                Some(tokio::spawn(async move {
                    if let Delivery::After(delay) = delivery {
                        tokio::time::sleep(delay).await;
                    } else {
                        inner.state().drops.drop_message(&chat_id, &id);
                    }
                    let before = inner.publisher.log().len();
                    let posted_at = Utc::now();
                    inner.post(&chat_id, message).await;
                    let notified = delivery != Delivery::Dropped
                        && inner.publisher.log()[before..]
                            .iter()
                            .any(|p| p.body.contains(&format!("messages('{id}')")));
                    (Some(posted_at), notified)
                }))
            }
        };
        PlacedCall {
            event_id,
            message_id,
            chat_id: plan.chat_id.clone(),
            placed_at,
            plan,
            event,
            chat,
        }
    }

    /// The call ends: a `callEnded` event for the same caller and policy, published now.
    /// Returns its event id when it was published (a subscription covers the policy).
    pub async fn end_call(&self, placed: &PlacedCall) -> Option<String> {
        let id = guid();
        let body = placed
            .plan
            .event(&id, "callEnded", Utc::now(), &self.inner.options.tenant_id);
        self.inner
            .publish_call_event(&placed.plan.policy, &id, &body)
            .await
            .then_some(id)
    }
}
