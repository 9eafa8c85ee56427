//! Detection: the [`Signal`]s a classification is based on — message kind (system event,
//! deleted), sender vs. service account, importance, chat type, configured phrases and
//! keywords, an announcement (test, drill, change, reminder: `cues.rs`), the dial string
//! (`dial.rs`) and the location (`location.rs`) — gathered once per message into a
//! `Detection` that the decision and the extraction read.

use serde_json::{Map, Value};

use super::dial::{self, DialMatch};
use super::location;
use super::message::MessageText;
pub use super::model::Signal;
use super::model::{ChatType, Context, Location, NotEmergencyReason};
use super::rules::Rules;
use super::textnorm::find_at_word_start;

/// Everything detection found, for the decision and for extraction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Detection {
    pub signals: Vec<Signal>,
    pub rejection: Option<NotEmergencyReason>,
    /// Index into `MessageText::lines` of the first line holding a phrase.
    pub phrase_line: Option<usize>,
    pub dial: Option<DialMatch>,
    pub location: Location,
}

fn str_at<'a>(object: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut map = object;
    for key in parents {
        map = map.get(*key)?.as_object()?;
    }
    map.get(*last)?.as_str()
}

pub(crate) fn sender_id(object: &Map<String, Value>) -> Option<&str> {
    str_at(object, &["from", "user", "id"]).filter(|id| !id.trim().is_empty())
}

/// Finds all signals; sets `rejection` for messages that can never be emergencies.
pub(crate) fn detect(
    object: &Map<String, Value>,
    text: &MessageText,
    context: &Context,
    rules: &Rules,
) -> Detection {
    let mut d = Detection::default();
    let reject = |d: &mut Detection, signal, reason| {
        d.signals.push(signal);
        d.rejection.get_or_insert(reason);
    };

    let message_type = str_at(object, &["messageType"]).unwrap_or_default();
    let body = str_at(object, &["body", "content"]).unwrap_or_default();
    let system_type = ["systemeventmessage", "chatevent", "typing"]
        .iter()
        .any(|t| message_type.eq_ignore_ascii_case(t));
    if system_type || body.trim().eq_ignore_ascii_case("<systemEventMessage/>") {
        reject(&mut d, Signal::SystemEvent, NotEmergencyReason::SystemEvent);
    }
    if object.get("deletedDateTime").is_some_and(|v| !v.is_null()) {
        reject(&mut d, Signal::Deleted, NotEmergencyReason::Deleted);
    }
    if let Some(sender) = sender_id(object) {
        match context.service_account_id.as_deref() {
            Some(own) if own.trim().eq_ignore_ascii_case(sender.trim()) => reject(
                &mut d,
                Signal::FromServiceAccount,
                NotEmergencyReason::FromServiceAccount,
            ),
            Some(_) => d.signals.push(Signal::SenderNotServiceAccount),
            None => {}
        }
    }
    let importance = str_at(object, &["importance"]).unwrap_or_default().trim();
    if importance.eq_ignore_ascii_case("high") || importance.eq_ignore_ascii_case("urgent") {
        d.signals.push(Signal::HighImportance);
    }
    match context.chat_type {
        Some(ChatType::Group) => d.signals.push(Signal::GroupChat),
        Some(_) if rules.require_group_chat => {
            reject(
                &mut d,
                Signal::NotGroupChat,
                NotEmergencyReason::NotGroupChat,
            );
        }
        _ => {}
    }
    if text.has_card {
        d.signals.push(Signal::AdaptiveCard);
    }

    d.phrase_line = text.lines.iter().position(|line| line.has_phrase(rules));
    if d.phrase_line.is_some() {
        d.signals.push(Signal::Phrase);
    }
    if text.lines.iter().any(|line| has_keyword(&line.norm, rules)) {
        d.signals.push(Signal::EmergencyKeyword);
    }
    if rules
        .patterns
        .cues
        .announce_non_emergency(text.lines.iter().map(|l| l.norm.as_str()))
    {
        d.signals.push(Signal::Announcement);
    }
    let (location, location_lines) = location::find(text, d.phrase_line, rules);
    d.location = location;
    d.dial = dial::find(text, d.phrase_line, &location_lines, rules);
    if let Some(dial) = &d.dial {
        d.signals.push(if dial.is_test {
            Signal::TestDialString
        } else {
            Signal::DialString
        });
    }
    if d.location.text.is_some() || d.location.site.is_some() || d.location.address.is_some() {
        d.signals.push(Signal::LocationText);
    }
    if d.location.latitude.is_some() {
        d.signals.push(Signal::Coordinates);
    }
    d
}

/// A configured keyword at the start of a word (so "emergency" matches "emergency," and
/// "emergencyroom", not "nonemergency").
fn has_keyword(norm: &str, rules: &Rules) -> bool {
    rules
        .keywords
        .iter()
        .any(|k| find_at_word_start(norm, k).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_need_a_word_start() {
        let rules = Rules::default();
        assert!(has_keyword("an emergency!", &rules));
        assert!(has_keyword("(emergency)", &rules));
        assert!(!has_keyword("a nonemergency line", &rules));
        assert!(has_keyword("ein notruf", &rules));
    }
}
