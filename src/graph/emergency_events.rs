//! Graph emergency call events, the second source (graph-teams.md B.10, H.8) — pure parts:
//! the subscription Graph requires for them and the decoding of one decrypted event.
//!
//! * Resource `communications/calls/getEmergencyEventsByPolicy(policyName='{policy}')`,
//!   `changeType: "updated"`, rich notifications only (`includeResourceData` and an encryption
//!   certificate), at most one day → renewed at half-life; one subscription per application,
//!   tenant and policy name (a second is `409 Conflict`). Application permission
//!   `CallEvents-Emergency.Read.All` only: a client-credentials token, never the delegated one.
//! * The decrypted payload is `#microsoft.graph.emergencyCallEvent`, flat (resource page) or
//!   nested under `"emergencyCallEvent"` (concept page example); coordinates come as numbers
//!   (the type) or strings (the example). Both shapes are accepted.
//!
//! The app-only token and the keeper that creates, renews and adopts these subscriptions are
//! in [`super::call_events`].

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The longest lifetime Graph grants these subscriptions (B.10).
pub const MAX_LIFETIME: Duration = Duration::days(1);

/// The resource of the emergency events of one emergency calling policy. A quote in the name
/// is doubled, as OData string literals require.
pub fn resource(policy_name: &str) -> String {
    format!(
        "communications/calls/getEmergencyEventsByPolicy(policyName='{}')",
        policy_name.replace('\'', "''")
    )
}

/// Whether `resource` (as Graph lists it) is an emergency-events resource of any policy.
pub fn is_resource(resource: &str) -> bool {
    resource
        .trim_start_matches('/')
        .to_ascii_lowercase()
        .starts_with("communications/calls/getemergencyeventsbypolicy(")
}

/// The body of `POST /subscriptions` for `policy_name` (B.5, B.7, B.10): rich, `updated`,
/// expiring a day from `now`, into the Event Hub at `notification_url` (`EventHub:…`).
pub fn subscription_request(
    policy_name: &str,
    notification_url: &str,
    client_state: &str,
    certificate_base64: &str,
    certificate_id: &str,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "changeType": "updated",
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": notification_url,
        "resource": resource(policy_name),
        "expirationDateTime": expiry(now).to_rfc3339_opts(SecondsFormat::Secs, true),
        "clientState": client_state,
        "includeResourceData": true,
        "encryptionCertificate": certificate_base64,
        "encryptionCertificateId": certificate_id,
    })
}

/// The expiry to ask for at `now` (a day, less a minute for clock skew).
pub fn expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + MAX_LIFETIME - Duration::minutes(1)
}

/// When to renew a subscription that expires at `expires`, made or renewed at `since`:
/// at half its remaining life.
pub fn renew_at(since: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
    since + (expires - since) / 2
}

/// What happened to the call (`callEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallEventType {
    CallStarted,
    CallEnded,
    RosterUpdated,
    /// `unknownFutureValue` or anything newer.
    #[serde(other)]
    Unknown,
}

/// A civic address (`emergencyCallerInfo.location.address`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CivicAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country_or_region: Option<String>,
    pub postal_code: Option<String>,
    /// `additionalData` (house number, suffix, floor, company, …) as Graph sends it.
    pub additional_data: Option<Value>,
}

/// Latitude and longitude in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

/// The caller (`emergencyCallerInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallerInfo {
    pub display_name: Option<String>,
    pub upn: Option<String>,
    pub phone_number: Option<String>,
    pub tenant_id: Option<String>,
    pub address: Option<CivicAddress>,
    pub coordinates: Option<Coordinates>,
}

/// One emergency call event, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    pub id: String,
    pub event_type: CallEventType,
    pub policy_name: Option<String>,
    pub at: DateTime<Utc>,
    pub number_dialed: Option<String>,
    pub caller: CallerInfo,
}

/// Why an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not an emergency call event: {0}")]
    NotAnEvent(&'static str),
    #[error("emergency call event {id}: `eventDateTime` is not a time: {value}")]
    BadTime { id: String, value: String },
}

/// Decodes a decrypted `emergencyCallEvent` (flat or nested, see the module docs).
pub fn decode(decrypted: &Value) -> Result<CallEvent, EventError> {
    let event = decrypted
        .get("emergencyCallEvent")
        .filter(|v| v.is_object())
        .unwrap_or(decrypted);
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let id = text(event, "id").ok_or(EventError::NotAnEvent("no id"))?;
    let event_type = event
        .get("callEventType")
        .ok_or(EventError::NotAnEvent("no callEventType"))
        .map(|v| serde_json::from_value(v.clone()).unwrap_or(CallEventType::Unknown))?;
    let when = text(event, "eventDateTime").ok_or(EventError::NotAnEvent("no eventDateTime"))?;
    let at = DateTime::parse_from_rfc3339(&when)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| EventError::BadTime {
            id: id.clone(),
            value: when.clone(),
        })?;
    let info = event.get("callerInfo").cloned().unwrap_or(Value::Null);
    let location = info.get("location").cloned().unwrap_or(Value::Null);
    let address = location
        .get("address")
        .filter(|a| a.is_object())
        .and_then(|a| serde_json::from_value::<CivicAddress>(a.clone()).ok())
        .filter(|a| *a != CivicAddress::default());
    let coordinates = location.get("coordinates").and_then(|c| {
        Some(Coordinates {
            latitude: degrees(c.get("latitude")?, 90.0)?,
            longitude: degrees(c.get("longitude")?, 180.0)?,
        })
    });
    Ok(CallEvent {
        id,
        event_type,
        policy_name: text(event, "policyName"),
        at,
        number_dialed: text(event, "emergencyNumberDialed"),
        caller: CallerInfo {
            display_name: text(&info, "displayName"),
            upn: text(&info, "upn"),
            phone_number: text(&info, "phoneNumber"),
            tenant_id: text(&info, "tenantId"),
            address,
            coordinates,
        },
    })
}

/// A coordinate as a number or a numeric string, within ±`limit` degrees.
fn degrees(value: &Value, limit: f64) -> Option<f64> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (number.is_finite() && number.abs() <= limit).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h8() -> Value {
        json!({
            "@odata.type": "#microsoft.graph.emergencyCallEvent",
            "id": "3c9e1f20-5a4b-4c3d-8e7f-0a1b2c3d4e5f",
            "emergencyCallEvent": {
                "id": "3c9e1f20-5a4b-4c3d-8e7f-0a1b2c3d4e5f",
                "callEventType": "callStarted",
                "policyName": "HQ-Emergency",
                "eventDateTime": "2025-03-01T10:15:20.000Z",
                "emergencyNumberDialed": "911",
                "callerInfo": {
                    "displayName": "Jordan Rivera",
                    "upn": "jordan.rivera@contoso.com",
                    "phoneNumber": "+14255550123",
                    "tenantId": "11111111-2222-3333-4444-555555555555",
                    "location": {
                        "address": {"street": "Example Street", "city": "Redmond", "state": "WA",
                                    "countryOrRegion": "United States", "postalCode": "98052",
                                    "additionalData": {"houseNumber": "725", "streetSuffix": "St"}},
                        "coordinates": {"latitude": "47.6396", "longitude": "-122.1283"}
                    }
                }
            }
        })
    }

    #[test]
    fn the_nested_example_with_string_coordinates_decodes() {
        let event = decode(&h8()).expect("decodes");
        assert_eq!(event.event_type, CallEventType::CallStarted);
        assert_eq!(event.number_dialed.as_deref(), Some("911"));
        assert_eq!(
            event.caller.upn.as_deref(),
            Some("jordan.rivera@contoso.com")
        );
        assert_eq!(event.caller.phone_number.as_deref(), Some("+14255550123"));
        let address = event.caller.address.expect("an address");
        assert_eq!(address.city.as_deref(), Some("Redmond"));
        assert_eq!(
            event.caller.coordinates,
            Some(Coordinates {
                latitude: 47.6396,
                longitude: -122.1283
            })
        );
    }

    #[test]
    fn the_flat_shape_with_numbers_and_a_future_event_type_decodes() {
        let mut flat = h8()["emergencyCallEvent"].clone();
        flat["callEventType"] = json!("somethingNew");
        flat["callerInfo"]["location"]["coordinates"] =
            json!({"latitude": 51.5, "longitude": -0.12});
        let event = decode(&flat).expect("decodes");
        assert_eq!(event.event_type, CallEventType::Unknown);
        assert_eq!(event.caller.coordinates.map(|c| c.latitude), Some(51.5));
    }

    #[test]
    fn bad_input_is_an_error_in_words_and_bad_coordinates_are_dropped() {
        assert!(matches!(
            decode(&json!({"id": "x"})),
            Err(EventError::NotAnEvent(_))
        ));
        let mut bad_time = h8();
        bad_time["emergencyCallEvent"]["eventDateTime"] = json!("yesterday");
        assert!(decode(&bad_time)
            .expect_err("refused")
            .to_string()
            .contains("yesterday"));
        let mut far = h8();
        far["emergencyCallEvent"]["callerInfo"]["location"]["coordinates"] =
            json!({"latitude": "123", "longitude": "0"});
        assert_eq!(decode(&far).expect("decodes").caller.coordinates, None);
    }

    #[test]
    fn the_subscription_is_rich_updated_and_at_most_a_day() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let body = subscription_request(
            "O'Brien HQ",
            "EventHub:https://ns.servicebus.windows.net/eventhubname/calls?tenantId=contoso.com",
            "state",
            "MIIB",
            "key-1",
            now,
        );
        assert_eq!(
            body["resource"],
            "communications/calls/getEmergencyEventsByPolicy(policyName='O''Brien HQ')"
        );
        assert_eq!(body["changeType"], "updated");
        assert!(is_resource(body["resource"].as_str().unwrap_or_default()));
        assert!(!is_resource("/users/x/chats/getAllMessages"));
        assert_eq!(body["includeResourceData"], true);
        assert_eq!(body["expirationDateTime"], "2026-12-06T11:59:00Z");
        assert_eq!(
            renew_at(now, expiry(now)),
            now + Duration::hours(12) - Duration::seconds(30)
        );
    }
}
