//! Where the caller is, as a [`Location`]: the location text (lines kept), the site, the civic
//! address and the coordinates.
//!
//! * Text: the value of the first `Location:`-like label and its continuation lines; without a
//!   label, the place named in the phrase's own sentence ("… has placed an Emergency Call to 999
//!   from LOCATION SOUTHAMPTON HQ Building 2", "… depuis SIEGE LYON Bâtiment B") and the
//!   unlabelled lines after the phrase (after `<br>`, past call-back / UPN / dialled lines).
//!   Continuation stops at a blank line, another label, a link, a coordinate pair or a phone
//!   number.
//! * Site: a `Site:`/`Place:`-like label, else the place named in the sentence.
//! * Address: labelled parts (`City:`, `PLZ:`, …) win; the others come from splitting the
//!   location text (`address.rs`).
//! * Coordinates: `coordinates.rs`.
//!
//! Every value is cleaned and capped (`textnorm.rs`): a location is never longer than
//! the display shows, and a cut one ends with `…`.

use std::ops::Range;

use super::address;
use super::coordinates;
use super::labels::Field;
use super::message::{Line, MessageText};
use super::model::{Address, Location};
use super::rules::Rules;
use super::textnorm::{clean, clean_field, normalize_with_offsets, MAX_LOCATION_CHARS};

/// Most continuation lines taken after a label or the phrase.
const MAX_LOCATION_LINES: usize = 8;
/// Most call-detail lines (call-back number, UPN, dialled number) skipped between the phrase
/// and unlabelled location lines.
const MAX_SKIPPED_LINES: usize = 6;

/// Words after the phrase that introduce the caller's place, by language.
const FROM: &[&str] = &[
    "from",
    "von",
    "aus",
    "depuis",
    "desde",
    "da",
    "dal",
    "dalla",
    "vanaf",
    "vanuit",
    "a partir de",
];

/// A word that only labels the place that follows it ("from LOCATION Southampton HQ").
const PLACE_LABELS: &[&str] = &[
    "location",
    "loc",
    "standort",
    "emplacement",
    "ubicación",
    "posizione",
    "localização",
    "locatie",
];

/// Verbs that close a German or Dutch sentence after the place ("… aus Gebäude 2 abgesetzt").
const CLOSING_VERBS: &[&str] = &[
    "abgesetzt",
    "getätigt",
    "gewählt",
    "abgegeben",
    "gemacht",
    "geplaatst",
    "gedaan",
    "gepleegd",
];

/// Finds everything about where the caller is; also returns the lines taken as location text
/// (so that "Room 110" there is not read as a dial string).
pub(crate) fn find(
    text: &MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> (Location, Range<usize>) {
    let (latitude, longitude) = match coordinates::find(text, rules) {
        Some((lat, lon)) => (Some(lat), Some(lon)),
        None => (None, None),
    };
    let part = |field| text.labelled(field).find_map(clean_field);
    let labelled = Address {
        street: part(Field::Street),
        city: part(Field::City),
        state: part(Field::State),
        postal_code: part(Field::PostalCode),
        country: part(Field::Country),
    };
    let place = phrase_line
        .and_then(|i| text.lines.get(i))
        .and_then(|line| place_in_sentence(line, rules));
    let (mut lines, taken) = location_lines(text, phrase_line, rules);
    if let Some(place) = &place {
        if !lines.iter().any(|l| l.contains(place.as_str())) {
            lines.insert(0, place.as_str());
        }
    }
    let joined = clean(&lines.join("\n"), true, MAX_LOCATION_CHARS);
    let location_text = (!joined.is_empty()).then_some(joined);
    let split = location_text
        .as_deref()
        .and_then(|t| address::split(t, &rules.patterns.address))
        .unwrap_or_default();
    let address = Address {
        street: labelled.street.or(split.street),
        city: labelled.city.or(split.city),
        state: labelled.state.or(split.state),
        postal_code: labelled.postal_code.or(split.postal_code),
        country: labelled.country.or(split.country),
    };
    let location = Location {
        text: location_text,
        site: part(Field::Site).or(place),
        address: (address != Address::default()).then_some(address),
        latitude,
        longitude,
    };
    (location, taken)
}

/// The lines of the location text and the range of unlabelled lines taken: the first
/// `Location:`-like label with its continuation, else the unlabelled lines after the phrase.
fn location_lines<'a>(
    text: &'a MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> (Vec<&'a str>, Range<usize>) {
    let labelled = text
        .lines
        .iter()
        .position(|l| l.field() == Some(Field::Location));
    let mut lines: Vec<&str> = Vec::new();
    let from = match (labelled, phrase_line) {
        (Some(i), _) => {
            let first = text.lines[i].value().unwrap_or_default();
            if first.is_empty() {
                // "Location:</p><p>725 Example St" — the value may start after a paragraph break.
                i + 1 + blank_lines(text, i + 1)
            } else {
                lines.push(first);
                i + 1
            }
        }
        (None, Some(i)) => i + 1 + skipped_detail_lines(text, i + 1, rules),
        (None, None) => return (lines, 0..0),
    };
    let continuation = text
        .lines
        .iter()
        .skip(from)
        .take_while(|l| is_location_line(l, rules))
        .take(MAX_LOCATION_LINES)
        .map(|l| l.text.as_str());
    let before = lines.len();
    lines.extend(continuation);
    let taken = from..from + (lines.len() - before);
    (lines, taken)
}

fn blank_lines(text: &MessageText, from: usize) -> usize {
    text.lines
        .iter()
        .skip(from)
        .take_while(|l| l.is_blank())
        .count()
}

/// Blank lines and call-detail lines (call-back number, UPN, dialled number, caller) right
/// after the phrase, before unlabelled location lines.
fn skipped_detail_lines(text: &MessageText, from: usize, rules: &Rules) -> usize {
    let skipped = text
        .lines
        .iter()
        .skip(from)
        .take(MAX_SKIPPED_LINES)
        .take_while(|l| {
            l.is_blank()
                || matches!(
                    l.field(),
                    Some(Field::Callback | Field::Upn | Field::Dial | Field::Caller)
                )
                || is_detail_line(l, rules)
        })
        .count();
    // Only skip when a location line follows; otherwise keep the old reading (nothing).
    let next = text.lines.get(from + skipped);
    if next.is_some_and(|l| is_location_line(l, rules)) {
        skipped
    } else {
        blank_lines(text, from)
    }
}

/// An unlabelled line that can continue a location.
fn is_location_line(line: &Line, rules: &Rules) -> bool {
    !line.is_blank()
        && line.label.is_none()
        && !line.is_link_text
        && !is_detail_line(line, rules)
        && !line.has_phrase(rules)
}

/// Lines that are a coordinate pair, a link or a phone number, not an address.
fn is_detail_line(line: &Line, rules: &Rules) -> bool {
    let t = line.text.as_str();
    rules.patterns.url.is_match(t)
        || t.to_ascii_lowercase().starts_with("geo:")
        || coordinates::pair_in(t, rules)
            .is_some_and(|_| t.chars().filter(char::is_ascii_alphabetic).count() <= 2)
        || rules
            .patterns
            .phone
            .find(t)
            .is_some_and(|m| m.len() + 4 >= t.len())
}

/// The place named after the phrase in its own sentence: "… to 999 from LOCATION
/// SOUTHAMPTON HQ Building 2" → "SOUTHAMPTON HQ Building 2".
fn place_in_sentence(line: &Line, rules: &Rules) -> Option<String> {
    let rest = line.text.get(line.after_phrase(rules)?..)?;
    let (norm, offsets) = normalize_with_offsets(rest);
    let padded = format!(" {norm} ");
    let start = FROM
        .iter()
        .filter_map(|w| {
            let at = padded.find(&format!(" {w} "))?;
            // `padded` has one extra leading byte: the word ends at `at + len(w) + 1` there,
            // which is `at + len(w)` in `norm`.
            offsets.get(at + w.len()).copied()
        })
        .min()?;
    let mut place = rest.get(start..)?.trim();
    for stop in [". ", " (", " - ", " – ", "; ", " | "] {
        if let Some(at) = place.find(stop) {
            place = &place[..at];
        }
    }
    let mut place = place
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!'])
        .trim();
    if let Some((first, tail)) = place.split_once([' ', ':']) {
        let label = first.trim_end_matches(':').to_lowercase();
        if PLACE_LABELS.contains(&label.as_str()) && !tail.trim().is_empty() {
            place = tail.trim_start_matches([':', ' ']);
        }
    }
    if let Some((head, last)) = place.rsplit_once(' ') {
        if CLOSING_VERBS.contains(&last.to_lowercase().as_str()) {
            place = head.trim_end();
        }
    }
    let phone_like = place.starts_with(['+', '(', '@'])
        || rules
            .patterns
            .phone
            .find(place)
            .is_some_and(|m| m.len() * 2 >= place.len())
        || !place.chars().any(char::is_alphabetic);
    if phone_like {
        return None;
    }
    clean_field(place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn text(body: &str) -> MessageText {
        let m = json!({"body":{"contentType":"html","content":body}});
        MessageText::read(m.as_object().unwrap_or(&Map::new()))
    }

    fn location(body: &str) -> Location {
        let t = text(body);
        let rules = Rules::default();
        let phrase = t.lines.iter().position(|l| l.has_phrase(&rules));
        find(&t, phrase, &rules).0
    }

    #[test]
    fn location_text_keeps_lines_and_stops_at_details() {
        let loc = location("<p>Jo has placed an Emergency Call</p><p>Location: 725 Example Street<br>Floor 4<br>Redmond, WA 98052<br>47.6396, -122.1283<br>Please respond</p>");
        assert_eq!(
            loc.text.as_deref(),
            Some("725 Example Street\nFloor 4\nRedmond, WA 98052")
        );
        assert_eq!(loc.latitude, Some(47.6396));
        let address = loc.address.unwrap_or_default();
        assert_eq!(address.street.as_deref(), Some("725 Example Street"));
        assert_eq!(address.city.as_deref(), Some("Redmond"));
        assert_eq!(address.postal_code.as_deref(), Some("98052"));
    }

    #[test]
    fn location_without_label_follows_the_phrase_line() {
        let loc = location(
            "<p>Jo has placed an Emergency Call<br>Building 7, Floor 2<br>Lisbon</p><p>Other</p>",
        );
        assert_eq!(loc.text.as_deref(), Some("Building 7, Floor 2\nLisbon"));
        assert_eq!(location("<p>just chat</p>").text, None);
        let paragraphs = location(
            "<p>Jo has placed an Emergency Call</p><p>Location:</p><p>Rua Augusta 10<br>Lisboa</p>",
        );
        assert_eq!(paragraphs.text.as_deref(), Some("Rua Augusta 10\nLisboa"));
    }

    #[test]
    fn unlabelled_lines_after_call_details_and_not_the_map_link() {
        let loc = location(
            "<p>Jo has placed an Emergency Call to 911<br>Callback: +1 425 555 0123<br>UPN: jo@contoso.com<br>500 Pine Street<br>Seattle, WA 98101<br><a href=\"geo:47.6114,-122.3366\">Open map</a></p>",
        );
        assert_eq!(
            loc.text.as_deref(),
            Some("500 Pine Street\nSeattle, WA 98101")
        );
        assert_eq!(loc.latitude, Some(47.6114));
    }

    #[test]
    fn place_named_in_the_sentence() {
        let loc = location("<p>Oliver has placed an Emergency Call to 999 from LOCATION SOUTHAMPTON HQ Building 2</p>");
        assert_eq!(loc.site.as_deref(), Some("SOUTHAMPTON HQ Building 2"));
        assert_eq!(loc.text.as_deref(), Some("SOUTHAMPTON HQ Building 2"));
        let de = location("<p>Anna hat einen Notruf an 112 aus Werk Süd, Halle 3 abgesetzt.</p>");
        assert_eq!(de.site.as_deref(), Some("Werk Süd, Halle 3"));
        let phone = location("<p>Jo has placed an Emergency Call from +1 425 555 0123</p>");
        assert_eq!((phone.site, phone.text), (None, None));
    }

    #[test]
    fn a_long_location_is_cut_with_a_mark() {
        let long = "Wing 7 corridor ".repeat(200);
        let loc = location(&format!(
            "<p>Jo has placed an Emergency Call</p><p>Location: {long}</p>"
        ));
        let text = loc.text.unwrap_or_default();
        assert_eq!(text.chars().count(), MAX_LOCATION_CHARS);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn civic_labels_fill_the_address_and_win_over_the_split() {
        let loc = location("<p>Street: 725 Example St</p><p>City: Redmond</p><p>State: WA</p><p>ZIP: 98052</p><p>Country or region: US</p><p>Site: HQ-B7</p>");
        assert_eq!(
            loc.address,
            Some(Address {
                street: Some("725 Example St".into()),
                city: Some("Redmond".into()),
                state: Some("WA".into()),
                postal_code: Some("98052".into()),
                country: Some("US".into()),
            })
        );
        assert_eq!(loc.site.as_deref(), Some("HQ-B7"));
        let de = location("<p>Standort: Hauptstraße 5, 10115 Berlin</p><p>Stadt: Berlin-Mitte</p>");
        let a = de.address.unwrap_or_default();
        assert_eq!(
            (
                a.street.as_deref(),
                a.postal_code.as_deref(),
                a.city.as_deref()
            ),
            (Some("Hauptstraße 5"), Some("10115"), Some("Berlin-Mitte"))
        );
    }
}
