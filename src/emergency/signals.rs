//! The named signals a classification is based on, and their detection: message kind
//! (system event, deleted), sender vs. service account, importance, chat type, configured
//! phrases and keywords, dial strings and the presence of a location.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::extract::{Field, MessageText};
use super::{location, ChatType, Context, Location, NotEmergencyReason, Rules};

/// One observation about a message. Serialised in snake_case (`"high_importance"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// `messageType` systemEventMessage/chatEvent/typing or a `<systemEventMessage/>` body.
    SystemEvent,
    /// `deletedDateTime` is set.
    Deleted,
    /// `from.user.id` is the configured service account.
    FromServiceAccount,
    /// `from.user.id` is someone other than the configured service account.
    SenderNotServiceAccount,
    /// `importance` is high or urgent.
    HighImportance,
    /// The chat is a group chat (from [`Context::chat_type`]).
    GroupChat,
    /// The chat is known not to be a group chat while `require_group_chat` is set.
    NotGroupChat,
    /// A configured notification phrase is in the body or a card.
    Phrase,
    /// A configured keyword ("emergency", "Notruf", …) is in the body or a card.
    EmergencyKeyword,
    /// A configured emergency dial string is named.
    DialString,
    /// A configured test dial string (933) is named.
    TestDialString,
    /// Location text, a site or address parts were found.
    LocationText,
    /// Valid coordinates were found.
    Coordinates,
    /// A card attachment was read.
    AdaptiveCard,
}

/// The number dialled, as found in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialMatch {
    pub digits: String,
    pub is_test: bool,
}

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
    let (location, location_lines) = location::find(text, d.phrase_line, rules);
    d.location = location;
    d.dial = find_dial(text, d.phrase_line, &location_lines, rules);
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

/// A keyword at the start of a word (so "emergency" matches "emergency," and "emergencyroom",
/// not "nonemergency").
fn has_keyword(norm: &str, rules: &Rules) -> bool {
    rules.keywords.iter().any(|k| {
        norm.match_indices(k.as_str()).any(|(at, _)| {
            !norm[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
        })
    })
}

/// The dial string: a labelled value ("Dialed: 911") first, then a configured number on the
/// phrase line, then a configured number on any line that is not part of the location, an
/// address, a phone number or coordinates.
fn find_dial(
    text: &MessageText,
    phrase_line: Option<usize>,
    location_lines: &Range<usize>,
    rules: &Rules,
) -> Option<DialMatch> {
    let classify = |digits: &str| DialMatch {
        digits: digits.to_string(),
        is_test: rules.test_dial_strings.iter().any(|t| t == digits),
    };
    let labelled = text.labelled(Field::Dial).find_map(|value| {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        (1..=6).contains(&digits.len()).then(|| classify(&digits))
    });
    if labelled.is_some() {
        return labelled;
    }
    let on_phrase_line = phrase_line
        .and_then(|i| text.lines.get(i))
        .and_then(|line| configured_dial(&line.text, rules));
    on_phrase_line
        .or_else(|| {
            text.lines
                .iter()
                .enumerate()
                .filter(|(i, line)| {
                    !location_lines.contains(i)
                        && line.label.is_none_or(|(f, _)| f.may_hold_dial_string())
                })
                .find_map(|(_, line)| configured_dial(&line.text, rules))
        })
        .map(classify)
}

/// The first stand-alone configured dial or test string on a line.
fn configured_dial<'a>(line: &'a str, rules: &Rules) -> Option<&'a str> {
    digit_tokens(line).find(|token| {
        rules.dial_strings.iter().any(|d| d == token)
            || rules.test_dial_strings.iter().any(|d| d == token)
    })
}

/// Stand-alone runs of ASCII digits: not part of a word, a phone number (`+`, `-`, digit
/// groups) or a decimal number.
fn digit_tokens(line: &str) -> impl Iterator<Item = &str> {
    let bytes = line.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before = start.checked_sub(1).map(|b| bytes[b]);
            let after = bytes.get(i).copied();
            let after2 = bytes.get(i + 1).copied();
            let glued_before = before.is_some_and(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'-' | b'.' | b'/' | b'(' | b'_' | b'#')
                    || b >= 0x80
            });
            let glued_after = after.is_some_and(|a| {
                a.is_ascii_alphanumeric()
                    || matches!(a, b'-' | b'/' | b')' | b'_')
                    || a >= 0x80
                    || (matches!(a, b'.' | b',') && after2.is_some_and(|c| c.is_ascii_digit()))
            });
            if !glued_before && !glued_after {
                return Some(&line[start..i]);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_tokens_skip_phone_numbers_and_decimals() {
        let tokens: Vec<&str> =
            digit_tokens("call to 911. +1 425-555-0112 (112) 1.000 47.112, room 999b 112")
                .collect();
        assert_eq!(tokens, ["911", "112"]);
    }

    #[test]
    fn keywords_need_a_word_start() {
        let rules = Rules::default();
        assert!(has_keyword("an emergency!", &rules));
        assert!(has_keyword("(emergency)", &rules));
        assert!(!has_keyword("a nonemergency line", &rules));
        assert!(has_keyword("ein notruf", &rules));
    }
}
