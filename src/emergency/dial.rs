//! The dial string: which number the caller dialled, wherever the notification carries it —
//! on a labelled line or card fact ("Dialed: 911", "Number dialed", "Notrufnummer", …), on the
//! phrase line after "to"/"an"/"au"/"al"/"naar"/"para o" or in parentheses ("… has placed an
//! Emergency Call (933)"), or, failing those, as a configured number on any line that is not
//! part of the location, an address, a phone number or coordinates.
//!
//! A configured test number (933 by default) among the call's own dial strings (labelled or on
//! the phrase line) always wins: a test call is never taken for a real one.

use std::ops::Range;

use super::message::MessageText;
use super::rules::Rules;

/// The number dialled, as found in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialMatch {
    pub digits: String,
    pub is_test: bool,
}

/// Finds the dial string; `location_lines` are lines read as location text (so "Room 110"
/// there is no call to 110).
pub(crate) fn find(
    text: &MessageText,
    phrase_line: Option<usize>,
    location_lines: &Range<usize>,
    rules: &Rules,
) -> Option<DialMatch> {
    let classify = |digits: &str| DialMatch {
        digits: digits.to_string(),
        is_test: rules.test_dial_strings.iter().any(|t| t == digits),
    };
    // The call's own dial strings, most explicit first.
    let mut own: Vec<String> = text
        .labelled(super::labels::Field::Dial)
        .filter_map(labelled_digits)
        .collect();
    if let Some(line) = phrase_line.and_then(|i| text.lines.get(i)) {
        let (before, after) = line
            .text
            .split_at_checked(line.after_phrase(rules).unwrap_or_default())
            .unwrap_or(("", &line.text));
        own.extend(configured(after, rules).map(str::to_string));
        own.extend(configured(before, rules).map(str::to_string));
    }
    let own = own
        .iter()
        .find(|d| rules.test_dial_strings.contains(d))
        .or(own.first());
    if let Some(digits) = own {
        return Some(classify(digits));
    }
    text.lines
        .iter()
        .enumerate()
        .filter(|(i, line)| {
            !location_lines.contains(i)
                && Some(*i) != phrase_line
                && !line.is_link_text
                && line.field().is_none_or(|f| f.may_hold_dial_string())
        })
        .find_map(|(_, line)| configured(&line.text, rules).next())
        .map(classify)
}

/// The digits of a labelled dial value: a configured number in it, else all its digits when
/// there are 1 to 6 ("9-1-1" → 911).
fn labelled_digits(value: &str) -> Option<String> {
    let tokens: Vec<&str> = digit_tokens(value).collect();
    if let [one] = tokens.as_slice() {
        if one.len() <= 6 {
            return Some(one.to_string());
        }
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    (1..=6).contains(&digits.len()).then_some(digits)
}

/// Stand-alone configured dial or test strings on a line, in order.
fn configured<'a>(line: &'a str, rules: &'a Rules) -> impl Iterator<Item = &'a str> + 'a {
    digit_tokens(line).filter(|token| {
        rules.dial_strings.iter().any(|d| d == token)
            || rules.test_dial_strings.iter().any(|d| d == token)
    })
}

/// Stand-alone runs of ASCII digits: not part of a word, a phone number (`+`, `-`, digit
/// groups) or a decimal number. A number alone in parentheses — "(933)" — stands alone unless
/// digits follow it, as in a NANP area code "(425) 555-0123".
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
            let parenthesised = before == Some(b'(') && after == Some(b')') && {
                let rest = &bytes[(i + 1).min(bytes.len())..];
                let next = rest.iter().find(|b| !b.is_ascii_whitespace());
                !next.is_some_and(|b| b.is_ascii_digit() || *b == b'-')
            };
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
            if parenthesised || (!glued_before && !glued_after) {
                return line.get(start..i);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn dial(body: &str) -> Option<(String, bool)> {
        let rules = Rules::default();
        let m = json!({"body":{"contentType":"html","content":body}});
        let text = MessageText::read(m.as_object().unwrap_or(&Map::new()));
        let phrase = text.lines.iter().position(|l| l.has_phrase(&rules));
        find(&text, phrase, &(0..0), &rules).map(|d| (d.digits, d.is_test))
    }

    #[test]
    fn digit_tokens_skip_phone_numbers_and_decimals() {
        let tokens: Vec<&str> =
            digit_tokens("call to 911. +1 425-555-0112 (112) 1.000 47.112, room 999b 112 (933).")
                .collect();
        assert_eq!(tokens, ["911", "112", "933"]);
    }

    #[test]
    fn dial_strings_in_every_shape() {
        let cases = [
            ("<p>Jo has placed an Emergency Call to 911</p>", "911"),
            ("<p>Jo has placed an Emergency Call (933)</p>", "933"),
            (
                "<p>Jo has placed an Emergency Call</p><p>Number dialed: 9-1-1</p>",
                "911",
            ),
            ("<p>Jo hat einen Notruf (112) abgesetzt</p>", "112"),
            ("<p>Jo a passé un appel d’urgence au 112.</p>", "112"),
            ("<p>Jo heeft een noodoproep naar 112 geplaatst</p>", "112"),
            ("<p>Jo fez uma chamada de emergência para o 112</p>", "112"),
            (
                "<p>Jo (+1 425 555 0911) has placed an Emergency Call to 999</p>",
                "999",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(dial(body).map(|d| d.0), Some(want.to_string()), "{body}");
        }
    }

    #[test]
    fn a_test_number_of_the_call_always_makes_a_test() {
        assert_eq!(
            dial("<p>Jo has placed an Emergency Call to 911 (933)</p>"),
            Some(("933".into(), true))
        );
        assert_eq!(
            dial("<p>Jo has placed an Emergency Call to 911</p><p>Dialed: 933</p>"),
            Some(("933".into(), true))
        );
        // A 933 elsewhere (a street number) is not the call's dial string.
        assert_eq!(
            dial("<p>Jo has placed an Emergency Call to 911</p><p>Location: 933 Main St</p>"),
            Some(("911".into(), false))
        );
    }

    #[test]
    fn area_codes_and_house_numbers_are_not_dial_strings() {
        assert_eq!(
            dial("<p>Jo has placed an Emergency Call from (911) 555-0100</p>"),
            None
        );
        assert_eq!(
            dial("<p>Jo has placed an Emergency Call</p><p>Location: 112 Main Street</p>"),
            None
        );
    }
}
