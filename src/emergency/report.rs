//! The `beacon parse` output: a stable JSON shape built from a [`Classification`], and the
//! exit-code policy (0 emergency/test/possible, 1 not an emergency, 2 unreadable input).
//!
//! ```json
//! {"classification": "emergency" | "test" | "possible" | "not_emergency",
//!  "reason": "<why, in words>",
//!  "call": null | {
//!    "caller": {"display_name": str, "id": str|null, "upn": str|null},
//!    "dial_string": str|null, "is_test": bool,
//!    "location": {"text": str|null, "site": str|null,
//!                 "address": {"street": .., "city": .., "state": .., "postal_code": .., "country": ..} | null,
//!                 "latitude": float|null, "longitude": float|null},
//!    "chat_id": str, "message_id": str, "created": "<RFC 3339>"},
//!  "signals": ["high_importance", "phrase", ...]}
//! ```

use serde::Serialize;

use super::model::{Caller, Kind, Location, NotEmergencyReason, Signal};
use super::verdict::Classification;

/// Exit code for input that is not JSON at all (the CLI reports it before classifying).
pub const EXIT_UNREADABLE: i32 = 2;

/// `beacon parse` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseReport<'a> {
    pub classification: Kind,
    pub reason: String,
    pub call: Option<CallReport<'a>>,
    pub signals: &'a [Signal],
}

/// The `call` object of the report (a stable subset of [`super::EmergencyCall`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallReport<'a> {
    pub caller: &'a Caller,
    pub dial_string: Option<&'a str>,
    pub is_test: bool,
    pub location: &'a Location,
    pub chat_id: &'a str,
    pub message_id: &'a str,
    /// RFC 3339, UTC.
    pub created: String,
}

impl<'a> ParseReport<'a> {
    pub fn from_classification(classification: &'a Classification) -> ParseReport<'a> {
        ParseReport {
            classification: classification.kind(),
            reason: classification.reason(),
            call: classification.call().map(|call| CallReport {
                caller: &call.caller,
                dial_string: call.dial_string.as_deref(),
                is_test: call.is_test,
                location: &call.location,
                chat_id: &call.chat_id,
                message_id: &call.message_id,
                created: call
                    .created
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            }),
            signals: classification.signals(),
        }
    }

    /// The report as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Process exit code for `beacon parse`: 0 emergency/test/possible, 1 not an emergency,
/// 2 when the input was not a chatMessage object.
pub fn exit_code(classification: &Classification) -> i32 {
    match classification {
        Classification::NotEmergency {
            reason: NotEmergencyReason::NotAChatMessage,
            ..
        } => EXIT_UNREADABLE,
        Classification::NotEmergency { .. } => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergency::{classify, Context, Rules};
    use serde_json::json;

    #[test]
    fn report_has_exactly_the_documented_shape() {
        let message = json!({"id":"m1","chatId":"c1","importance":"high",
            "createdDateTime":"2025-03-01T10:15:23.456Z",
            "from":{"user":{"id":"u1","displayName":"Jo <b>"}},
            "body":{"contentType":"html","content":"<p>Jo has placed an Emergency Call to 911</p><p>City: Redmond</p>"}});
        let c = classify(&message, &Context::default(), &Rules::default());
        let v = ParseReport::from_classification(&c).to_value();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        assert_eq!(keys(&v), ["call", "classification", "reason", "signals"]);
        assert_eq!(v["classification"], "emergency");
        let call = &v["call"];
        assert_eq!(
            keys(call),
            [
                "caller",
                "chat_id",
                "created",
                "dial_string",
                "is_test",
                "location",
                "message_id"
            ]
        );
        assert_eq!(keys(&call["caller"]), ["display_name", "id", "upn"]);
        assert_eq!(
            keys(&call["location"]),
            ["address", "latitude", "longitude", "site", "text"]
        );
        assert_eq!(
            keys(&call["location"]["address"]),
            ["city", "country", "postal_code", "state", "street"]
        );
        assert_eq!(call["caller"]["display_name"], "Jo <b>");
        assert_eq!(call["created"], "2025-03-01T10:15:23.456Z");
        assert_eq!(call["dial_string"], "911");
        assert_eq!(call["location"]["latitude"], serde_json::Value::Null);
        assert_eq!(v["signals"][0], "high_importance");
        assert_eq!(exit_code(&c), 0);
    }

    #[test]
    fn not_emergency_and_unreadable_exit_codes() {
        let rules = Rules::default();
        let chat = classify(
            &json!({"body":{"content":"lunch?"}}),
            &Context::default(),
            &rules,
        );
        assert_eq!(exit_code(&chat), 1);
        let v = ParseReport::from_classification(&chat).to_value();
        assert_eq!(v["classification"], "not_emergency");
        assert_eq!(v["call"], serde_json::Value::Null);
        assert_eq!(v["reason"], "no emergency signals");
        assert_eq!(
            exit_code(&classify(&json!([1]), &Context::default(), &rules)),
            2
        );
    }
}
