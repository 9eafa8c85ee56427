//! Classifying a Teams `chatMessage` as an emergency-call notification and extracting the call.
//!
//! Pure: no IO, no clock reads (time, when needed, comes in through [`Context`]). The entry
//! point is [`classify`]; [`update::merge_update`] folds later edits of the same message into
//! an existing call, [`zones::ZoneRules::decide`] is the local site filter and
//! [`report::ParseReport`] is the stable `beacon parse` output.
//!
//! Decision, from the signals found (see [`Signal`]):
//! * system events, deleted messages and messages sent by the service account: `NotEmergency`;
//! * a configured phrase in an important (high/urgent) message: `Emergency`, or `Test` when
//!   the dial string is a test number (933);
//! * otherwise "fail loud": an important message that mentions an emergency (keyword) or names
//!   a dial string and a location, or a phrase match at normal importance that also carries a
//!   dial string or a location, is `Possible` (raises the alarm unless
//!   `possible_raises_alarm = false`);
//! * anything else, e.g. ordinary chat mentioning "emergency": `NotEmergency`.

pub mod card;
pub mod extract;
pub mod html;
pub mod location;
pub mod report;
pub mod rules;
pub mod signals;
pub mod update;
pub mod zones;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use report::{exit_code, ParseReport};
pub use rules::{Rules, RulesConfig, RulesError};
pub use signals::Signal;
pub use update::{merge_update, MergeError, MergeOutcome};
pub use zones::{ZoneConfig, ZoneDecision, ZoneReason, ZoneRules};

/// Kind of chat the message was posted in (Graph `chat.chatType`, any casing accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatType {
    OneOnOne,
    Group,
    Meeting,
    /// `unknownFutureValue` or anything new.
    Other,
}

impl ChatType {
    /// Parses a Graph `chatType` value in any casing.
    pub fn parse(value: &str) -> ChatType {
        match value.trim().to_ascii_lowercase().as_str() {
            "oneonone" | "one_on_one" => ChatType::OneOnOne,
            "group" => ChatType::Group,
            "meeting" => ChatType::Meeting,
            _ => ChatType::Other,
        }
    }
}

/// What the pipeline knows about the message besides its JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// From `GET /chats/{id}`, when known; unknown never rejects a message.
    pub chat_type: Option<ChatType>,
    /// Azure AD object id of the appliance's own account (messages it sent are ignored).
    pub service_account_id: Option<String>,
    /// When the notification arrived; used as `created` only if the message has no timestamp.
    pub received_at: Option<DateTime<Utc>>,
}

/// An emergency call extracted from a Teams notification.
///
/// **All strings are untrusted text chosen (partly) by the caller** — a display name can be
/// `<script>…`, `<img onerror=…>` or carry bidi overrides. Extraction removes control and bidi
/// override characters and caps lengths, but does not escape: every renderer (web page, e-mail,
/// SMS, display, MQTT consumer) must escape these strings for its own output format and must
/// never interpret them as markup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmergencyCall {
    pub caller: Caller,
    /// Call-back number (digits with a leading `+` when international), when the message has one.
    pub callback_number: Option<String>,
    /// The number dialled (911, 112, 933, …), when the message names it.
    pub dial_string: Option<String>,
    /// The dial string is a configured test number.
    pub is_test: bool,
    pub location: Location,
    /// Graph `chatMessage.id`.
    pub message_id: String,
    /// Graph `chatMessage.chatId` (empty when the message lacks it).
    pub chat_id: String,
    /// `createdDateTime` (falling back to `lastModifiedDateTime`, then `Context::received_at`).
    pub created: DateTime<Utc>,
    /// The chatMessage exactly as received (the latest version after [`merge_update`]).
    pub raw: Value,
}

/// Who placed the call (untrusted text, see [`EmergencyCall`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `from.user.displayName`, else a "Caller" label, else the text before the phrase;
    /// [`extract::UNKNOWN_CALLER`] when none of those exist.
    pub display_name: String,
    /// Azure AD object id (`from.user.id`).
    pub id: Option<String>,
    /// User principal name / e-mail, when the message provides one.
    pub upn: Option<String>,
}

/// Where the caller is (untrusted text, see [`EmergencyCall`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The location as written, lines kept (`\n`).
    pub text: Option<String>,
    /// Site / location description / building.
    pub site: Option<String>,
    /// Civic parts, when the message labels them.
    pub address: Option<Address>,
    /// WGS84 degrees, validated (|lat| ≤ 90, |lon| ≤ 180, not 0,0); both or neither.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Location {
    /// Whether any part of a location is known.
    pub fn is_known(&self) -> bool {
        self.text.is_some()
            || self.site.is_some()
            || self.address.is_some()
            || self.latitude.is_some()
    }
}

/// Labelled civic address parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// Why a message is not an emergency notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotEmergencyReason {
    /// The input is not a JSON object (exit code 2).
    NotAChatMessage,
    /// `systemEventMessage` / `chatEvent` / `typing` or a `<systemEventMessage/>` body.
    SystemEvent,
    /// `deletedDateTime` is set.
    Deleted,
    /// Sent by the appliance's own service account.
    FromServiceAccount,
    /// `require_group_chat` is set and the chat is known not to be a group chat.
    NotGroupChat,
    /// Mentions an emergency but at normal importance, without call details.
    NormalImportance,
    /// Nothing emergency-like.
    NoEmergencySignals,
}

impl NotEmergencyReason {
    /// The reason in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotAChatMessage => "input is not a chatMessage JSON object",
            Self::SystemEvent => "system event message",
            Self::Deleted => "message was deleted",
            Self::FromServiceAccount => "sent by the service account",
            Self::NotGroupChat => "not a group chat and require_group_chat is set",
            Self::NormalImportance => {
                "mentions an emergency at normal importance without call details"
            }
            Self::NoEmergencySignals => "no emergency signals",
        }
    }
}

/// The classifier's verdict, with the signals that decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Classification {
    Emergency {
        call: Box<EmergencyCall>,
        signals: Vec<Signal>,
    },
    Test {
        call: Box<EmergencyCall>,
        signals: Vec<Signal>,
    },
    /// Partial match: treated as an emergency unless `possible_raises_alarm = false`.
    Possible {
        call: Box<EmergencyCall>,
        signals: Vec<Signal>,
    },
    NotEmergency {
        reason: NotEmergencyReason,
        signals: Vec<Signal>,
    },
}

/// Stable lower-case names of the four outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Emergency,
    Test,
    Possible,
    NotEmergency,
}

impl Classification {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Emergency { .. } => Kind::Emergency,
            Self::Test { .. } => Kind::Test,
            Self::Possible { .. } => Kind::Possible,
            Self::NotEmergency { .. } => Kind::NotEmergency,
        }
    }

    /// The extracted call, unless not an emergency.
    pub fn call(&self) -> Option<&EmergencyCall> {
        match self {
            Self::Emergency { call, .. }
            | Self::Test { call, .. }
            | Self::Possible { call, .. } => Some(call),
            Self::NotEmergency { .. } => None,
        }
    }

    /// The signals that decided the verdict, in detection order.
    pub fn signals(&self) -> &[Signal] {
        match self {
            Self::Emergency { signals, .. }
            | Self::Test { signals, .. }
            | Self::Possible { signals, .. }
            | Self::NotEmergency { signals, .. } => signals,
        }
    }

    /// Whether the emergency alarm fires: `Emergency` always, `Possible` when configured.
    /// `Test` calls are recorded and shown as tests, never as an emergency alarm.
    pub fn raises_alarm(&self, rules: &Rules) -> bool {
        match self {
            Self::Emergency { .. } => true,
            Self::Possible { .. } => rules.possible_raises_alarm,
            Self::Test { .. } | Self::NotEmergency { .. } => false,
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> String {
        let has = |s| self.signals().contains(&s);
        match self {
            Self::NotEmergency { reason, .. } => reason.describe().to_string(),
            Self::Emergency { call, .. } | Self::Test { call, .. } => {
                let dial = call.dial_string.as_deref().map_or_else(
                    || "no dial string named".to_string(),
                    |d| format!("dial string {d}"),
                );
                let test = if call.is_test { " (test number)" } else { "" };
                format!("emergency-call phrase in an important message; {dial}{test}")
            }
            Self::Possible { .. } if has(Signal::Phrase) => {
                "emergency-call phrase with call details but not marked important".to_string()
            }
            Self::Possible { .. } => {
                "important message mentions an emergency but the notification phrase did not match"
                    .to_string()
            }
        }
    }
}

/// Classifies one Graph `chatMessage` and, when it is (or may be) an emergency, extracts the call.
///
/// Never panics; any JSON value is accepted (non-objects are `NotAChatMessage`).
pub fn classify(message: &Value, context: &Context, rules: &Rules) -> Classification {
    let Some(object) = message.as_object() else {
        return Classification::NotEmergency {
            reason: NotEmergencyReason::NotAChatMessage,
            signals: Vec::new(),
        };
    };
    let text = extract::MessageText::read(object);
    let found = signals::detect(object, &text, context, rules);
    if let Some(reason) = found.rejection {
        return Classification::NotEmergency {
            reason,
            signals: found.signals,
        };
    }
    let has = |s| found.signals.contains(&s);
    let high = has(Signal::HighImportance);
    let phrase = has(Signal::Phrase);
    let dial = found.dial.is_some();
    let location = has(Signal::LocationText) || has(Signal::Coordinates);
    let keyword = has(Signal::EmergencyKeyword);
    let kind = if phrase && high {
        if found.dial.as_ref().is_some_and(|d| d.is_test) {
            Kind::Test
        } else {
            Kind::Emergency
        }
    } else if (high && (keyword || (dial && location))) || (phrase && (dial || location)) {
        Kind::Possible
    } else {
        let reason = if phrase || keyword {
            NotEmergencyReason::NormalImportance
        } else {
            NotEmergencyReason::NoEmergencySignals
        };
        return Classification::NotEmergency {
            reason,
            signals: found.signals,
        };
    };
    let call = Box::new(extract::build_call(
        message, object, &text, &found, context, rules,
    ));
    let signals = found.signals;
    match kind {
        Kind::Emergency => Classification::Emergency { call, signals },
        Kind::Test => Classification::Test { call, signals },
        _ => Classification::Possible { call, signals },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(importance: &str, body: &str) -> Value {
        json!({"id":"m","chatId":"c","importance":importance,
            "from":{"user":{"id":"U1","displayName":"Jo"}},
            "body":{"contentType":"html","content":body}})
    }

    fn rules(edit: impl FnOnce(&mut RulesConfig)) -> Rules {
        let mut config = RulesConfig::default();
        edit(&mut config);
        Rules::compile(&config).unwrap_or_default()
    }

    const CALL: &str = "<p>Jo has placed an Emergency Call to 911</p>";

    #[test]
    fn chat_type_parses_any_casing() {
        assert_eq!(ChatType::parse("OneOnOne"), ChatType::OneOnOne);
        assert_eq!(ChatType::parse(" GROUP "), ChatType::Group);
        assert_eq!(ChatType::parse("meeting"), ChatType::Meeting);
        assert_eq!(ChatType::parse("unknownFutureValue"), ChatType::Other);
    }

    #[test]
    fn require_group_chat_rejects_known_other_chats_only() {
        let strict = rules(|c| c.require_group_chat = true);
        let ctx = |chat_type| Context {
            chat_type,
            ..Context::default()
        };
        let one = classify(
            &message("high", CALL),
            &ctx(Some(ChatType::OneOnOne)),
            &strict,
        );
        assert!(matches!(
            one,
            Classification::NotEmergency {
                reason: NotEmergencyReason::NotGroupChat,
                ..
            }
        ));
        let group = classify(&message("high", CALL), &ctx(Some(ChatType::Group)), &strict);
        assert_eq!(group.kind(), Kind::Emergency);
        assert!(group.signals().contains(&Signal::GroupChat));
        let unknown = classify(&message("high", CALL), &ctx(None), &strict);
        assert_eq!(
            unknown.kind(),
            Kind::Emergency,
            "unknown chat type never rejects"
        );
    }

    #[test]
    fn possible_alarm_is_configurable_and_tests_never_alarm() {
        let drill = message("high", "<p>Emergency drill at noon</p>");
        let loud = Rules::default();
        let quiet = rules(|c| c.possible_raises_alarm = false);
        let possible = classify(&drill, &Context::default(), &loud);
        assert_eq!(possible.kind(), Kind::Possible);
        assert!(possible.raises_alarm(&loud));
        assert!(!possible.raises_alarm(&quiet));
        let test = classify(
            &message("high", "<p>Jo has placed an Emergency Call to 933</p>"),
            &Context::default(),
            &loud,
        );
        assert_eq!(test.kind(), Kind::Test);
        assert!(!test.raises_alarm(&loud));
        assert!(test.call().is_some_and(|c| c.is_test));
    }

    #[test]
    fn service_account_is_matched_case_insensitively() {
        let ctx = Context {
            service_account_id: Some(" u1 ".into()),
            ..Context::default()
        };
        let own = classify(&message("high", CALL), &ctx, &Rules::default());
        assert_eq!(own.kind(), Kind::NotEmergency);
        assert_eq!(own.reason(), "sent by the service account");
    }

    #[test]
    fn custom_dial_strings_and_phrases_apply() {
        let custom = rules(|c| {
            c.phrases = vec!["SOS gemeldet".into()];
            c.dial_strings = vec!["144".into()];
        });
        let m = message("high", "<p>Jo hat SOS gemeldet: 144</p>");
        let result = classify(&m, &Context::default(), &custom);
        assert_eq!(result.kind(), Kind::Emergency);
        assert_eq!(
            result.call().and_then(|c| c.dial_string.as_deref()),
            Some("144")
        );
        let default = classify(&m, &Context::default(), &Rules::default());
        assert_eq!(default.kind(), Kind::NotEmergency);
    }
}
