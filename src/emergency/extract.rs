//! Building the [`EmergencyCall`] from the message text and what detection found: the caller
//! (sender, a "Caller" label, or the name before the phrase), UPN, call-back number, dial
//! string, location, ids and timestamps. Every extracted string passes through
//! `textnorm::clean` (controls and bidi overrides removed, length capped);
//! nothing is escaped here — see the note on [`EmergencyCall`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::labels::Field;
use super::message::MessageText;
use super::model::{Caller, Context, EmergencyCall};
use super::rules::Rules;
use super::signals::{self, Detection};
use super::textnorm::{clean, clean_field, normalize_with_offsets, MAX_FIELD_CHARS};

/// Display name used when the message names no caller at all.
pub const UNKNOWN_CALLER: &str = "Unknown caller";

fn timestamp(object: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    let s = object.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn string_at(object: &Map<String, Value>, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(|s| clean(s, false, MAX_FIELD_CHARS))
        .unwrap_or_default()
}

/// Extracts the call from a message whatever its classification (used by
/// [`super::merge_update`]); `None` if `message` is not a JSON object.
pub fn extract(message: &Value, context: &Context, rules: &Rules) -> Option<EmergencyCall> {
    let object = message.as_object()?;
    let text = MessageText::read(object);
    let found = signals::detect(object, &text, context, rules);
    Some(build_call(message, object, &text, &found, context, rules))
}

pub(crate) fn build_call(
    message: &Value,
    object: &Map<String, Value>,
    text: &MessageText,
    found: &Detection,
    context: &Context,
    rules: &Rules,
) -> EmergencyCall {
    let created = timestamp(object, "createdDateTime")
        .or_else(|| timestamp(object, "lastModifiedDateTime"))
        .or(context.received_at)
        .unwrap_or_default();
    EmergencyCall {
        caller: caller(object, text, found, rules),
        callback_number: callback_number(text, found, rules),
        dial_string: found.dial.as_ref().map(|d| d.digits.clone()),
        is_test: found.dial.as_ref().is_some_and(|d| d.is_test),
        location: found.location.clone(),
        message_id: string_at(object, "id"),
        chat_id: string_at(object, "chatId"),
        created,
        raw: message.clone(),
    }
}

fn caller(
    object: &Map<String, Value>,
    text: &MessageText,
    found: &Detection,
    rules: &Rules,
) -> Caller {
    let user = object
        .get("from")
        .and_then(|f| f.get("user"))
        .and_then(Value::as_object);
    let user_str = |key: &str| user.and_then(|u| u.get(key)).and_then(Value::as_str);
    let display_name = user_str("displayName")
        .and_then(clean_field)
        .or_else(|| text.labelled(Field::Caller).find_map(clean_field))
        .or_else(|| name_before_phrase(text, found.phrase_line, rules))
        .unwrap_or_else(|| UNKNOWN_CALLER.to_string());
    let upn = user_str("userPrincipalName")
        .or_else(|| user_str("email"))
        .and_then(|u| first_email(u, rules))
        .or_else(|| {
            text.labelled(Field::Upn)
                .find_map(|v| first_email(v, rules))
        })
        .or_else(|| {
            text.links_with_scheme("mailto:")
                .find_map(|l| first_email(l, rules))
        })
        .or_else(|| text.lines.iter().find_map(|l| first_email(&l.text, rules)));
    Caller {
        display_name,
        id: signals::sender_id(object).and_then(clean_field),
        upn,
    }
}

fn first_email(text: &str, rules: &Rules) -> Option<String> {
    rules
        .patterns
        .email
        .find(text)
        .and_then(|m| clean_field(m.as_str()))
}

/// "Jordan Rivera (+1 425 555 0123) has placed an emergency call" → "Jordan Rivera".
fn name_before_phrase(
    text: &MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> Option<String> {
    let line = &text.lines.get(phrase_line?)?.text;
    let (norm, offsets) = normalize_with_offsets(line);
    let at = rules
        .phrases
        .iter()
        .filter_map(|p| norm.find(p.as_str()))
        .min()?;
    let before = line.get(..*offsets.get(at)?)?.trim();
    let before = match before.find('(') {
        Some(paren) => before[..paren].trim(),
        None => before,
    };
    clean_field(before)
}

/// A labelled number with at least 7 digits, a `tel:` link, or a phone-looking number on the
/// phrase line or anywhere in the text.
fn callback_number(text: &MessageText, found: &Detection, rules: &Rules) -> Option<String> {
    let phone_ok = |digits: &str| (7..=15).contains(&digits.len());
    let tidy = |raw: &str| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let plus = if raw.trim_start().starts_with('+') {
            "+"
        } else {
            ""
        };
        phone_ok(&digits).then(|| format!("{plus}{digits}"))
    };
    let from_pattern = |line: &str| {
        rules
            .patterns
            .phone
            .find(line)
            .and_then(|m| tidy(m.as_str()))
    };
    text.labelled(Field::Callback)
        .find_map(tidy)
        .or_else(|| text.links_with_scheme("tel:").find_map(tidy))
        .or_else(|| {
            found
                .phrase_line
                .and_then(|i| text.lines.get(i))
                .and_then(|l| from_pattern(&l.text))
        })
        .or_else(|| {
            text.lines
                .iter()
                .filter(|l| l.field().is_none_or(|f| f == Field::Caller))
                .find_map(|l| from_pattern(&l.text))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_name_from_the_phrase_line_when_sender_is_unknown() {
        let rules = Rules::default();
        let m = json!({"body":{"contentType":"text","content":
            "Jordan Rivera (+1 425 555 0123) has placed an Emergency Call to 911"}});
        let call = extract(&m, &Context::default(), &rules).unwrap_or_default();
        assert_eq!(call.caller.display_name, "Jordan Rivera");
        assert_eq!(call.caller.id, None);
        assert_eq!(call.callback_number.as_deref(), Some("+14255550123"));
        assert_eq!(call.dial_string.as_deref(), Some("911"));
    }

    #[test]
    fn upn_from_fact_mailto_or_text() {
        let rules = Rules::default();
        let upn = |content: &str| {
            let m = json!({"body":{"contentType":"html","content":content}});
            extract(&m, &Context::default(), &rules).and_then(|c| c.caller.upn)
        };
        assert_eq!(
            upn("<p>UPN: jo@contoso.com</p>").as_deref(),
            Some("jo@contoso.com")
        );
        assert_eq!(
            upn("<a href=\"MAILTO:Jo.R@Contoso.com\">Jo</a>").as_deref(),
            Some("Jo.R@Contoso.com")
        );
        assert_eq!(
            upn("<p>reach me at a.b@c.org.</p>").as_deref(),
            Some("a.b@c.org")
        );
        assert_eq!(upn("<p>nothing here @ all</p>"), None);
    }

    #[test]
    fn ids_and_created_time_fall_back_sensibly() {
        let rules = Rules::default();
        let received = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let ctx = Context {
            received_at: received,
            ..Context::default()
        };
        let m = json!({"id": "1", "createdDateTime": "not a time"});
        let call = extract(&m, &ctx, &rules).unwrap_or_default();
        assert_eq!(Some(call.created), received);
        assert_eq!(call.chat_id, "");
        assert_eq!(call.message_id, "1");
        let m = json!({"createdDateTime": "2025-03-01T10:15:23.456+01:00"});
        let call = extract(&m, &ctx, &rules).unwrap_or_default();
        assert_eq!(call.created.to_rfc3339(), "2025-03-01T09:15:23.456+00:00");
        assert_eq!(call.raw, m);
    }
}
