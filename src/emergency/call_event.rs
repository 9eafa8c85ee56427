//! A Graph emergency call event as an [`EmergencyCall`], and the one call two sources make
//! (pure; issue 16 item 2).
//!
//! The event is the only documented machine-readable account of an emergency call
//! (graph-teams.md B.10): caller, number dialled, civic address and coordinates as Teams knows
//! them. The security-desk chat message carries what people read (its text, the chat, the
//! message) and whatever location its text gives. When both report one call, [`combine`]
//! keeps the chat message's text and identity and takes the event's structured parts, which
//! are not parsed out of prose: address, coordinates, call-back number, dial string.
//!
//! A call to a configured test number is a test from either source.

use serde_json::Value;

use super::model::{Address, Caller, EmergencyCall, Kind, Location};
use super::rules::Rules;
use crate::graph::emergency_events::{CallEvent, CivicAddress};

/// The call a `callStarted` event reports, and its kind (an emergency, or a test when the
/// number dialled is a test number). `raw` is the event as Graph sent it (kept with the call).
pub fn call_from_event(event: &CallEvent, raw: &Value, rules: &Rules) -> (Kind, EmergencyCall) {
    let is_test = event
        .number_dialed
        .as_deref()
        .is_some_and(|n| rules.is_test_dial_string(n));
    let caller = &event.caller;
    let address = caller.address.as_ref();
    let call = EmergencyCall {
        caller: Caller {
            display_name: caller
                .display_name
                .clone()
                .or_else(|| caller.upn.clone())
                .unwrap_or_else(|| super::extract::UNKNOWN_CALLER.to_string()),
            id: None,
            upn: caller.upn.clone(),
        },
        callback_number: caller.phone_number.clone(),
        dial_string: event.number_dialed.clone(),
        is_test,
        location: Location {
            text: address.and_then(address_text),
            site: None,
            address: address.map(civic_parts),
            latitude: caller.coordinates.map(|c| c.latitude),
            longitude: caller.coordinates.map(|c| c.longitude),
        },
        message_id: event.id.clone(),
        chat_id: String::new(),
        created: event.at,
        raw: raw.clone(),
    };
    let kind = if is_test { Kind::Test } else { Kind::Emergency };
    (kind, call)
}

/// The one call the chat message (`chat`, of `chat_kind`) and the call event (`event`, of
/// `event_kind`) report: the chat message's identity, text and site, the event's structured
/// parts where it has them. Its kind: a test if either says so; otherwise an emergency (the
/// event corroborates a possible chat message).
pub fn combine(
    chat: &EmergencyCall,
    chat_kind: Kind,
    event: &EmergencyCall,
    event_kind: Kind,
) -> (Kind, EmergencyCall) {
    let mut call = chat.clone();
    call.caller.upn = chat.caller.upn.clone().or_else(|| event.caller.upn.clone());
    call.callback_number = event
        .callback_number
        .clone()
        .or_else(|| chat.callback_number.clone());
    call.dial_string = event
        .dial_string
        .clone()
        .or_else(|| chat.dial_string.clone());
    call.is_test = chat.is_test || event.is_test;
    let place = &event.location;
    if place.address.is_some() {
        call.location.address = place.address.clone();
    }
    if place.latitude.is_some() && place.longitude.is_some() {
        call.location.latitude = place.latitude;
        call.location.longitude = place.longitude;
    }
    if call.location.text.is_none() {
        call.location.text = place.text.clone();
    }
    call.created = chat.created.min(event.created);
    let kind = if chat_kind == Kind::Test || event_kind == Kind::Test {
        Kind::Test
    } else {
        Kind::Emergency
    };
    (kind, call)
}

/// The civic address in lines as a person writes it: "725 Example St", extra lines
/// (`additionalInfo`, company), "Redmond, WA 98052", the country.
fn address_text(address: &CivicAddress) -> Option<String> {
    let extra = |key: &str| {
        address
            .additional_data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let mut lines = Vec::new();
    let street = [
        extra("houseNumber"),
        address.street.as_deref(),
        extra("streetSuffix"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    if !street.is_empty() {
        lines.push(street);
    }
    for key in ["additionalInfo", "companyName"] {
        if let Some(line) = extra(key) {
            lines.push(line.to_string());
        }
    }
    let region = [address.state.as_deref(), address.postal_code.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let town = [address.city.as_deref(), Some(region.as_str())]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if !town.is_empty() {
        lines.push(town);
    }
    if let Some(country) = address.country_or_region.as_deref() {
        lines.push(country.to_string());
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn civic_parts(address: &CivicAddress) -> Address {
    Address {
        street: address.street.clone(),
        city: address.city.clone(),
        state: address.state.clone(),
        postal_code: address.postal_code.clone(),
        country: address.country_or_region.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergency::{classify, Context};
    use crate::graph::emergency_events::decode;
    use serde_json::json;

    fn rules() -> Rules {
        Rules::compile(&Default::default()).expect("default rules")
    }

    fn event(number: &str) -> Value {
        json!({
            "id": "ev-1", "callEventType": "callStarted", "policyName": "HQ",
            "eventDateTime": "2026-12-06T10:15:20Z", "emergencyNumberDialed": number,
            "callerInfo": {
                "displayName": "Jordan Rivera", "upn": "jordan.rivera@contoso.com",
                "phoneNumber": "+14255550123",
                "location": {
                    "address": {"street": "Example Street", "city": "Redmond", "state": "WA",
                                "countryOrRegion": "United States", "postalCode": "98052",
                                "additionalData": {"houseNumber": "725", "streetSuffix": "St",
                                                   "additionalInfo": "Floor 4"}},
                    "coordinates": {"latitude": 47.6396, "longitude": -122.1283}
                }
            }
        })
    }

    fn from_event(number: &str) -> (Kind, EmergencyCall) {
        let raw = event(number);
        call_from_event(&decode(&raw).expect("decodes"), &raw, &rules())
    }

    #[test]
    fn an_event_is_an_emergency_with_its_address_in_lines_and_933_is_a_test() {
        let (kind, call) = from_event("911");
        assert_eq!(kind, Kind::Emergency);
        assert_eq!(call.caller.display_name, "Jordan Rivera");
        assert_eq!(call.callback_number.as_deref(), Some("+14255550123"));
        assert_eq!(
            call.location.text.as_deref(),
            Some("725 Example Street St\nFloor 4\nRedmond, WA 98052\nUnited States")
        );
        assert_eq!(call.location.latitude, Some(47.6396));
        assert_eq!(call.message_id, "ev-1");
        let (kind, call) = from_event("933");
        assert_eq!(kind, Kind::Test);
        assert!(call.is_test);
    }

    #[test]
    fn the_combined_call_keeps_the_chat_text_and_takes_the_events_structured_parts() {
        let message = json!({
            "id": "m1", "chatId": "19:c", "createdDateTime": "2026-12-06T10:15:30Z",
            "importance": "high",
            "from": {"user": {"id": "oid-1", "displayName": "Jordan Rivera"}},
            "body": {"contentType": "text",
                     "content": "Jordan Rivera has placed an Emergency Call to 911. Location: Building 4"},
        });
        let classification = classify(&message, &Context::default(), &rules());
        let mut chat = classification.call().expect("an emergency").clone();
        let (event_kind, event_call) = from_event("911");
        let (_, without_text) = combine(&chat, Kind::Emergency, &event_call, event_kind);
        assert_eq!(
            without_text.location.text, event_call.location.text,
            "a message without location text takes the event's address"
        );
        chat.location.text = Some("Building 4, east stairs".into());
        let (kind, call) = combine(&chat, Kind::Possible, &event_call, event_kind);
        assert_eq!(
            kind,
            Kind::Emergency,
            "the event corroborates a possible message"
        );
        assert_eq!(call.message_id, "m1");
        assert_eq!(call.caller.id.as_deref(), Some("oid-1"));
        assert_eq!(
            call.caller.upn.as_deref(),
            Some("jordan.rivera@contoso.com")
        );
        assert_eq!(
            call.location.text.as_deref(),
            Some("Building 4, east stairs")
        );
        assert_eq!(
            call.location
                .address
                .as_ref()
                .and_then(|a| a.city.as_deref()),
            Some("Redmond")
        );
        assert_eq!(call.location.longitude, Some(-122.1283));
        assert_eq!(call.callback_number.as_deref(), Some("+14255550123"));
        assert_eq!(
            call.created, event_call.created,
            "the earlier report's time"
        );
        let (test_kind, test_event) = from_event("933");
        assert_eq!(
            combine(&chat, Kind::Emergency, &test_event, test_kind).0,
            Kind::Test,
            "a test from either source is a test"
        );
    }
}
