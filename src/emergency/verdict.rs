//! The decision: from the [`Detection`] of a message to its [`Classification`] — emergency,
//! test, possible or not an emergency — and the extracted call.
//!
//! * system events, deleted messages and messages sent by the service account: not an
//!   emergency;
//! * a configured phrase in an important (high/urgent) message: an emergency, or a test when
//!   the call's dial string is a test number (933);
//! * the phrase at normal importance with a dial string or a location: still an emergency
//!   (importance is not guaranteed), a test for a test number, and only *possible* when the
//!   message also announces a test, drill, change or reminder;
//! * without the phrase, an important message that mentions an emergency (keyword) or names a
//!   dial string and a location is *possible* ("fail loud") — unless it says it is not an
//!   emergency, or is a notice of a test, drill, change or maintenance, or a reminder: then not
//!   an emergency; with a test number it is a test;
//! * anything else, e.g. ordinary chat mentioning "emergency": not an emergency.

use serde_json::Value;

use super::extract;
use super::message::MessageText;
use super::model::{Context, EmergencyCall, Kind, NotEmergencyReason, Signal};
use super::rules::Rules;
use super::signals::{self, Detection};

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
    /// Partial match: its own alert level (`possible_alert`), unless `possible_raises_alarm =
    /// false`.
    Possible {
        call: Box<EmergencyCall>,
        signals: Vec<Signal>,
    },
    NotEmergency {
        reason: NotEmergencyReason,
        signals: Vec<Signal>,
    },
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

    /// Whether the call alerts: `Emergency` always, `Possible` unless configured off (at its
    /// own level unless `possible_alert = "full"`).
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
                let importance = if has(Signal::HighImportance) {
                    "an important message"
                } else {
                    "a message of normal importance with call details"
                };
                if has(Signal::Phrase) {
                    format!("emergency-call phrase in {importance}; {dial}{test}")
                } else {
                    format!("important message mentions an emergency; {dial}{test}")
                }
            }
            Self::Possible { .. } if has(Signal::Phrase) => {
                "emergency-call phrase with call details at normal importance, but the message \
                 also announces a test, drill, change or reminder"
                    .to_string()
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
    let text = MessageText::read(object);
    let found = signals::detect(object, &text, context, rules);
    let kind = match decide(&found) {
        Ok(kind) => kind,
        Err(reason) => {
            return Classification::NotEmergency {
                reason,
                signals: found.signals,
            }
        }
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

/// The verdict from the signals (see the module documentation).
fn decide(found: &Detection) -> Result<Kind, NotEmergencyReason> {
    if let Some(reason) = found.rejection {
        return Err(reason);
    }
    let has = |s| found.signals.contains(&s);
    let high = has(Signal::HighImportance);
    let phrase = has(Signal::Phrase);
    let keyword = has(Signal::EmergencyKeyword);
    let announced = has(Signal::Announcement);
    let dial = found.dial.is_some();
    let test = found.dial.as_ref().is_some_and(|d| d.is_test);
    let location = has(Signal::LocationText) || has(Signal::Coordinates);
    if phrase && (high || dial || location) {
        return Ok(if test {
            Kind::Test
        } else if high || !announced {
            Kind::Emergency
        } else {
            Kind::Possible
        });
    }
    if high && (keyword || (dial && location)) {
        return if announced {
            Err(NotEmergencyReason::Announcement)
        } else if test {
            Ok(Kind::Test)
        } else {
            Ok(Kind::Possible)
        };
    }
    Err(if phrase || keyword {
        NotEmergencyReason::NormalImportance
    } else {
        NotEmergencyReason::NoEmergencySignals
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergency::{ChatType, RulesConfig};
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
        let drill = message("high", "<p>Medical emergency at reception, please come</p>");
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

    #[test]
    fn hostile_bodies_stay_fast() {
        let bodies = [
            format!(
                "<p>Jo has placed an Emergency Call to 911</p>{}",
                "<a href=\"geo:1.5,2.5\">x</a><br>".repeat(20_000)
            ),
            format!(
                "<p>Jo has placed an Emergency Call (933) from {}</p>",
                "(1) ".repeat(50_000)
            ),
            format!("<p>Emergency reminder {}</p>", "drill test ".repeat(20_000)),
            format!(
                "<p>Jo has placed an Emergency Call</p><p>Location: {}</p>",
                "1234 AB Amsterdam, ".repeat(20_000)
            ),
            "<p>Jo has placed an Emergency Call<br>".repeat(5_000),
        ];
        let started = std::time::Instant::now();
        let rules = Rules::default();
        let kinds: Vec<Kind> = bodies
            .iter()
            .map(|body| classify(&message("high", body), &Context::default(), &rules).kind())
            .collect();
        assert_eq!(
            kinds,
            [
                Kind::Emergency,
                Kind::Test,
                Kind::NotEmergency,
                Kind::Emergency,
                Kind::Emergency
            ]
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_phrase_at_normal_importance_is_an_emergency_unless_announced() {
        let verdict = |importance: &str, body: &str| {
            classify(
                &message(importance, body),
                &Context::default(),
                &Rules::default(),
            )
        };
        let call = verdict("normal", "<p>Jo has placed an Emergency Call to 911</p>");
        assert_eq!(call.kind(), Kind::Emergency);
        assert!(call.reason().contains("normal importance"));
        assert_eq!(
            verdict("normal", "<p>Jo has placed an Emergency Call (933)</p>").kind(),
            Kind::Test
        );
        let reminder = verdict(
            "normal",
            "<p>Reminder: when someone has placed an Emergency Call to 911, meet them at the door</p>",
        );
        assert_eq!(reminder.kind(), Kind::Possible);
        assert_eq!(
            verdict(
                "normal",
                "<p>FYI Jo has placed an emergency call earlier</p>"
            )
            .kind(),
            Kind::NotEmergency
        );
        // In an important message the phrase is an emergency whatever else the text says.
        assert_eq!(
            verdict(
                "high",
                "<p>Jo has placed an Emergency Call to 911</p><p>Reminder: x</p>"
            )
            .kind(),
            Kind::Emergency
        );
    }

    #[test]
    fn announcements_are_not_possible_emergencies_but_real_reports_are() {
        let verdict = |body: &str| {
            classify(
                &message("high", body),
                &Context::default(),
                &Rules::default(),
            )
        };
        let notice = verdict("<p>Fire alarm test at 9:00. This is not an emergency.</p>");
        assert!(matches!(
            notice,
            Classification::NotEmergency {
                reason: NotEmergencyReason::Announcement,
                ..
            }
        ));
        assert!(notice.signals().contains(&Signal::Announcement));
        assert_eq!(
            verdict("<p>EMERGENCY in the lobby, this is not a drill</p>").kind(),
            Kind::Possible
        );
        // A test number without the phrase is a test, never a siren.
        assert_eq!(
            verdict("<p>Emergency call</p><p>Dialed: 933</p><p>Location: Lobby</p>").kind(),
            Kind::Test
        );
    }
}
