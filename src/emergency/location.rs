//! Location extraction: the location text (lines kept), site/description, labelled civic
//! address parts, and coordinates from labels, decimal pairs or map links (Google `q=`/`@`,
//! Bing `cp=lat~lon`, OpenStreetMap `mlat/mlon` and `#map=`), validated for range.

use std::ops::Range;

use super::extract::{clean, clean_field, Field, Line, MessageText, MAX_TEXT_CHARS};
use super::{Address, Location, Rules};

/// Most continuation lines taken after a `Location:` label.
const MAX_LOCATION_LINES: usize = 8;

/// Finds everything about where the caller is; also returns the unlabelled lines taken as
/// location text (so that "Room 110" there is not read as a dial string).
pub(crate) fn find(
    text: &MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> (Location, Range<usize>) {
    let (latitude, longitude) = match coordinates(text, rules) {
        Some((lat, lon)) => (Some(lat), Some(lon)),
        None => (None, None),
    };
    let part = |field| text.labelled(field).find_map(clean_field);
    let address = Address {
        street: part(Field::Street),
        city: part(Field::City),
        state: part(Field::State),
        postal_code: part(Field::PostalCode),
        country: part(Field::Country),
    };
    let (location_text, lines) = location_text(text, phrase_line, rules);
    let location = Location {
        text: location_text,
        site: part(Field::Site),
        address: (address != Address::default()).then_some(address),
        latitude,
        longitude,
    };
    (location, lines)
}

/// The value of the first `Location:`-like label plus its continuation lines; without a label,
/// the lines right after the phrase line.
fn location_text(
    text: &MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> (Option<String>, Range<usize>) {
    let labelled = text
        .lines
        .iter()
        .position(|l| l.label.is_some_and(|(f, _)| f == Field::Location));
    let (first, start) = match (labelled, phrase_line) {
        (Some(i), _) => (text.lines[i].value().unwrap_or_default(), i + 1),
        (None, Some(i)) => ("", i + 1),
        (None, None) => return (None, 0..0),
    };
    let mut lines: Vec<&str> = Vec::new();
    if !first.is_empty() {
        lines.push(first);
    }
    // "Location:</p><p>725 Example St" — the value may start after a paragraph break.
    let skip_blank = if first.is_empty() {
        text.lines
            .iter()
            .skip(start)
            .take_while(|l| l.is_blank())
            .count()
    } else {
        0
    };
    let from = start + skip_blank;
    let continuation = text.lines.iter().skip(from).take_while(|l| {
        !l.is_blank() && l.label.is_none() && !is_detail_line(l, rules) && !l.has_phrase(rules)
    });
    let before = lines.len();
    lines.extend(
        continuation
            .take(MAX_LOCATION_LINES)
            .map(|l| l.text.as_str()),
    );
    let taken = from..from + (lines.len() - before);
    let joined = clean(&lines.join("\n"), true, MAX_TEXT_CHARS);
    ((!joined.is_empty()).then_some(joined), taken)
}

/// Lines that are a coordinate pair, a link or a phone number, not an address.
fn is_detail_line(line: &Line, rules: &Rules) -> bool {
    let t = line.text.as_str();
    rules.patterns.url.is_match(t)
        || pair_in(t, rules)
            .is_some_and(|_| t.chars().filter(char::is_ascii_alphabetic).count() <= 2)
        || rules
            .patterns
            .phone
            .find(t)
            .is_some_and(|m| m.len() + 4 >= t.len())
}

/// Coordinates: labelled latitude/longitude, a labelled pair, map links, then any decimal pair
/// on a line that is not a phone/e-mail/dial line.
pub(crate) fn coordinates(text: &MessageText, rules: &Rules) -> Option<(f64, f64)> {
    let number = |field| {
        text.labelled(field).find_map(|v| {
            let m = regex_number(v)?;
            let hemisphere = v[m.1..]
                .trim_start()
                .trim_start_matches('°')
                .trim_start()
                .chars()
                .next();
            signed(m.0, hemisphere)
        })
    };
    let labelled = number(Field::Latitude)
        .zip(number(Field::Longitude))
        .and_then(|(lat, lon)| valid(lat, lon));
    labelled
        .or_else(|| {
            text.labelled(Field::Coordinates)
                .find_map(|v| pair_in(v, rules))
        })
        .or_else(|| text.all_links(rules).find_map(|l| from_map_link(l, rules)))
        .or_else(|| {
            text.lines
                .iter()
                .filter(|l| {
                    !l.label.is_some_and(|(f, _)| {
                        matches!(f, Field::Callback | Field::Upn | Field::Dial)
                    })
                })
                .filter(|l| !rules.patterns.url.is_match(&l.text))
                .find_map(|l| pair_in(&l.text, rules))
        })
}

/// First decimal number in `v` and the byte offset just after it.
fn regex_number(v: &str) -> Option<(f64, usize)> {
    let start = v.find(|c: char| c.is_ascii_digit() || c == '-' || c == '+')?;
    let len = v[start..]
        .char_indices()
        .skip(1)
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(v.len() - start, |(i, _)| i);
    let end = start + len;
    v[start..end].parse().ok().map(|n| (n, end))
}

fn signed(value: f64, hemisphere: Option<char>) -> Option<f64> {
    match hemisphere.map(|c| c.to_ascii_uppercase()) {
        Some('S' | 'W') => Some(-value.abs()),
        _ => Some(value),
    }
}

/// A decimal "lat, lon" pair (optional `°` and N/S/E/W) in free text.
fn pair_in(text: &str, rules: &Rules) -> Option<(f64, f64)> {
    rules
        .patterns
        .coordinates
        .captures_iter(text)
        .find_map(|c| {
            let lat: f64 = c.get(1)?.as_str().parse().ok()?;
            let lon: f64 = c.get(3)?.as_str().parse().ok()?;
            let lat = signed(lat, c.get(2).and_then(|m| m.as_str().chars().next()))?;
            let lon = signed(lon, c.get(4).and_then(|m| m.as_str().chars().next()))?;
            valid(lat, lon)
        })
}

/// Coordinates in a Google / Bing / OpenStreetMap / Apple map link.
fn from_map_link(link: &str, rules: &Rules) -> Option<(f64, f64)> {
    let p = &rules.patterns;
    let parse = |s: &str| s.parse::<f64>().ok();
    let pair = |c: regex::Captures| valid(parse(c.get(1)?.as_str())?, parse(c.get(2)?.as_str())?);
    let osm = || {
        let lat = parse(p.osm_mlat.captures(link)?.get(1)?.as_str())?;
        let lon = parse(p.osm_mlon.captures(link)?.get(1)?.as_str())?;
        valid(lat, lon)
    };
    osm()
        .or_else(|| p.osm_hash.captures(link).and_then(pair))
        .or_else(|| p.map_pair.captures_iter(link).find_map(pair))
}

/// Range check; also rejects 0,0 (a common "no fix" placeholder) and non-finite values.
fn valid(lat: f64, lon: f64) -> Option<(f64, f64)> {
    let ok = lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
        && !(lat == 0.0 && lon == 0.0);
    ok.then_some((lat, lon))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn text(body: &str) -> MessageText {
        let m = json!({"body":{"contentType":"html","content":body}});
        MessageText::read(m.as_object().unwrap_or(&Map::new()))
    }

    fn coords(body: &str) -> Option<(f64, f64)> {
        coordinates(&text(body), &Rules::default())
    }

    #[test]
    fn decimal_pairs_with_signs_degrees_and_hemispheres() {
        let cases = [
            ("<p>47.6396, -122.1283</p>", (47.6396, -122.1283)),
            ("<p>at 51.5007° N, 0.1246° W now</p>", (51.5007, -0.1246)),
            ("<p>-33.8568;151.2153</p>", (-33.8568, 151.2153)),
            ("<p>Lat: 48.8584</p><p>Lon: 2.2945</p>", (48.8584, 2.2945)),
            (
                "<p>Latitude: 33.9 S</p><p>Longitude: 18.4 E</p>",
                (-33.9, 18.4),
            ),
            ("<p>Coordinates: 52.37, 4.89</p>", (52.37, 4.89)),
        ];
        for (body, want) in cases {
            assert_eq!(coords(body), Some(want), "{body}");
        }
    }

    #[test]
    fn out_of_range_zero_and_lookalikes_are_rejected() {
        assert_eq!(coords("<p>95.1234, 10.1234</p>"), None);
        assert_eq!(coords("<p>45.1234, 190.1234</p>"), None);
        assert_eq!(coords("<p>0.00, 0.00</p>"), None);
        assert_eq!(coords("<p>Version 1.2, 3.4 released</p>"), None);
        assert_eq!(coords("<p>Phone: +47.6396, 122.1283</p>"), None);
        assert_eq!(coords("<p>192.168.1.10, 10.0.0.1</p>"), None);
    }

    #[test]
    fn map_links() {
        let cases = [
            (
                "https://www.google.com/maps?q=47.6396,-122.1283",
                (47.6396, -122.1283),
            ),
            (
                "https://maps.google.com/?q=47.6396%2C-122.1283&z=17",
                (47.6396, -122.1283),
            ),
            (
                "https://www.google.com/maps/place/X/@47.6396,-122.1283,17z",
                (47.6396, -122.1283),
            ),
            (
                "https://www.bing.com/maps?cp=47.6396~-122.1283&lvl=17",
                (47.6396, -122.1283),
            ),
            (
                "https://www.openstreetmap.org/?mlat=52.5163&amp;mlon=13.3777#map=17/52.5/13.3",
                (52.5163, 13.3777),
            ),
            (
                "https://www.openstreetmap.org/#map=17/52.5163/13.3777",
                (52.5163, 13.3777),
            ),
            (
                "https://maps.apple.com/?ll=37.3349,-122.0090",
                (37.3349, -122.0090),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(
                coords(&format!("<a href=\"{url}\">map</a>")),
                Some(want),
                "{url}"
            );
            assert_eq!(
                coords(&format!("<p>Map {url}</p>")),
                Some(want),
                "{url} as text"
            );
        }
        assert_eq!(
            coords("<a href=\"https://www.bing.com/maps?cp=91.0~10.0\">x</a>"),
            None
        );
    }

    #[test]
    fn location_text_keeps_lines_and_stops_at_details() {
        let t = text("<p>Jo has placed an Emergency Call</p><p>Location: 725 Example Street<br>Floor 4<br>Redmond, WA 98052<br>47.6396, -122.1283<br>Please respond</p>");
        let (loc, _) = find(&t, Some(0), &Rules::default());
        assert_eq!(
            loc.text.as_deref(),
            Some("725 Example Street\nFloor 4\nRedmond, WA 98052")
        );
        assert_eq!(loc.latitude, Some(47.6396));
        assert_eq!(loc.address, None);
    }

    #[test]
    fn location_without_label_follows_the_phrase_line() {
        let t = text(
            "<p>Jo has placed an Emergency Call<br>Building 7, Floor 2<br>Lisbon</p><p>Other</p>",
        );
        let (loc, _) = find(&t, Some(0), &Rules::default());
        assert_eq!(loc.text.as_deref(), Some("Building 7, Floor 2\nLisbon"));
        assert_eq!(
            find(&text("<p>just chat</p>"), None, &Rules::default())
                .0
                .text,
            None
        );
        let paragraphs = text(
            "<p>Jo has placed an Emergency Call</p><p>Location:</p><p>Rua Augusta 10<br>Lisboa</p>",
        );
        assert_eq!(
            find(&paragraphs, Some(0), &Rules::default())
                .0
                .text
                .as_deref(),
            Some("Rua Augusta 10\nLisboa")
        );
    }

    #[test]
    fn civic_labels_fill_the_address() {
        let t = text("<p>Street: 725 Example St</p><p>City: Redmond</p><p>State: WA</p><p>ZIP: 98052</p><p>Country or region: US</p><p>Site: HQ-B7</p>");
        let (loc, _) = find(&t, None, &Rules::default());
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
        let de = text("<p>Straße: Hauptstraße 5</p><p>PLZ: 10115</p><p>Stadt: Berlin</p>");
        let a = find(&de, None, &Rules::default())
            .0
            .address
            .unwrap_or_default();
        assert_eq!(
            (
                a.street.as_deref(),
                a.postal_code.as_deref(),
                a.city.as_deref()
            ),
            (Some("Hauptstraße 5"), Some("10115"), Some("Berlin"))
        );
        let _ = Value::Null;
    }
}
