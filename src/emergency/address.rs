//! Splitting a civic address written on one line (or a few) into street, city, state, postal
//! code and country, for the forms a LIS address takes when Teams prints it:
//!
//! * US: `725 Example Street, Floor 4, Redmond, WA 98052, United States` (city, two-letter
//!   state and ZIP, in one segment or two);
//! * EU: `Hauptstraße 5, 10115 Berlin, Deutschland`, `8 Rue de Rivoli, 75004 Paris`,
//!   `Coolsingel 40, 3011 AD Rotterdam`, `Avenida da Liberdade 110, 1269-046 Lisboa`,
//!   `Piazza del Duomo 1, 20122 Milano MI` (postal code before the city, an Italian province
//!   after it);
//! * UK: `Palace of Westminster, London SW1A 0AA`.
//!
//! A four-digit postal code (Austria, Switzerland, Belgium, Denmark, …) is only taken after the
//! first segment, where a US house number cannot be. Nothing is split unless a postal code is
//! recognised: a building or floor alone is no address.
//! The street is the first segment before the city with a house number that is not a floor,
//! suite or room. The country is the segment after the postal code when it is only letters.

use regex::Regex;

use super::model::Address;
use super::textnorm::clean_field;

/// Compiled once (held by [`super::rules::Rules`]).
#[derive(Debug, Clone)]
pub(crate) struct AddressPatterns {
    /// `[City] ST 12345[-6789] [USA]`
    us: Regex,
    /// `12345 City [PR]`, `1234 AB City`, `1234-567 City`, `D-12345 City`
    eu: Regex,
    /// `City SW1A 0AA`
    uk: Regex,
}

impl AddressPatterns {
    pub(crate) fn new(build: impl Fn(&str) -> Regex) -> Self {
        Self {
            us: build(
                r"^(?:(?P<city>\p{L}[\p{L} .'\-]*?)\s+)?(?P<state>[A-Z]{2})\.?\s+(?P<zip>\d{5}(?:-\d{4})?)(?:\s+(?P<country>USA|US|U\.S\.A\.|United States(?: of America)?))?$",
            ),
            eu: build(
                r"^(?P<zip>\d{4}\s?[A-Z]{2}|\d{4}-\d{3}|[A-Z]{1,2}-\d{4,5}|\d{5}|\d{4})\s+(?P<city>\p{L}[\p{L} .'\-]*?)(?:\s+(?P<province>[A-Z]{2}))?$",
            ),
            uk: build(
                r"^(?P<city>\p{L}[\p{L} .'\-]*?)\s+(?P<zip>[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$",
            ),
        }
    }
}

/// US states, districts and territories (two-letter postal abbreviations).
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "PR", "GU", "VI", "AS", "MP",
];

/// Words that start a segment naming a part of a building, not a street.
const NOT_STREET: &[&str] = &[
    "floor",
    "fl",
    "level",
    "suite",
    "ste",
    "room",
    "rm",
    "unit",
    "apt",
    "building",
    "bldg",
    "wing",
    "desk",
    "etage",
    "étage",
    "og",
    "stock",
    "raum",
    "zimmer",
    "gebäude",
    "salle",
    "bâtiment",
    "piso",
    "planta",
    "sala",
    "edificio",
    "piano",
    "stanza",
    "andar",
    "edifício",
    "verdieping",
    "kamer",
    "gebouw",
];

/// Splits `text` (segments separated by commas, semicolons or line breaks) into its parts;
/// `None` when no postal code is recognised.
pub(crate) fn split(text: &str, patterns: &AddressPatterns) -> Option<Address> {
    let segments: Vec<&str> = text
        .split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(16)
        .collect();
    // US first over all segments: "1200 Westlake Ave N" must not be read as an EU postal code
    // and city when "Seattle, WA 98109" follows.
    let find = |form: fn(&str, usize, &[&str], &AddressPatterns) -> Option<Address>| {
        segments
            .iter()
            .enumerate()
            .find_map(|(i, segment)| form(segment, i, &segments, patterns))
    };
    find(us).or_else(|| find(uk)).or_else(|| find(eu))
}

/// The country: given inline, or the next segment when it is only letters and spaces.
fn country_after(i: usize, segments: &[&str]) -> Option<String> {
    segments
        .get(i + 1)
        .filter(|s| {
            s.chars().count() <= 60
                && s.chars()
                    .all(|c| c.is_alphabetic() || c == ' ' || c == '.' || c == '-')
        })
        .and_then(|s| clean_field(s))
}

/// The street among `before`: the first segment with a house number that is not a floor,
/// suite or room (a street name alone, without a number, is not taken).
fn street(before: &[&str]) -> Option<String> {
    before
        .iter()
        .find(|s| {
            let lower = s.to_lowercase();
            let first = lower
                .split(|c: char| !c.is_alphanumeric())
                .find(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or_default();
            s.chars().any(|c| c.is_ascii_digit())
                && s.chars().any(char::is_alphabetic)
                && !NOT_STREET.contains(&first)
        })
        .and_then(|s| clean_field(s))
}

fn us(segment: &str, i: usize, segments: &[&str], p: &AddressPatterns) -> Option<Address> {
    let c = p.us.captures(segment)?;
    let state = c.name("state")?.as_str();
    if !US_STATES.contains(&state) {
        return None;
    }
    // "Redmond, WA 98052": the city is the segment before, unless the segment holds it.
    let (city, before) = match c.name("city") {
        Some(city) => (clean_field(city.as_str()), segments.get(..i)?),
        None => {
            let at = i.checked_sub(1)?;
            let city = segments
                .get(at)
                .filter(|s| !s.chars().any(|c| c.is_ascii_digit()));
            (city.and_then(|s| clean_field(s)), segments.get(..at)?)
        }
    };
    Some(Address {
        street: street(before),
        city,
        state: clean_field(state),
        postal_code: c.name("zip").and_then(|z| clean_field(z.as_str())),
        country: c
            .name("country")
            .and_then(|m| clean_field(m.as_str()))
            .or_else(|| country_after(i, segments)),
    })
}

fn eu(segment: &str, i: usize, segments: &[&str], p: &AddressPatterns) -> Option<Address> {
    let c = p.eu.captures(segment)?;
    let zip = c.name("zip")?.as_str();
    if i == 0 && zip.len() == 4 && zip.bytes().all(|b| b.is_ascii_digit()) {
        return None; // "1234 Main Street, …": a house number, not a postal code
    }
    Some(Address {
        street: street(segments.get(..i)?),
        city: c.name("city").and_then(|m| clean_field(m.as_str())),
        state: c.name("province").and_then(|m| clean_field(m.as_str())),
        postal_code: c.name("zip").and_then(|m| clean_field(m.as_str())),
        country: country_after(i, segments),
    })
}

fn uk(segment: &str, i: usize, segments: &[&str], p: &AddressPatterns) -> Option<Address> {
    let c = p.uk.captures(segment)?;
    Some(Address {
        street: street(segments.get(..i)?),
        city: c.name("city").and_then(|m| clean_field(m.as_str())),
        state: None,
        postal_code: c.name("zip").and_then(|m| clean_field(m.as_str())),
        country: country_after(i, segments),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Option<[Option<String>; 5]> {
        let patterns = AddressPatterns::new(|re| Regex::new(re).unwrap_or_else(|e| panic!("{e}")));
        split(text, &patterns).map(|a| [a.street, a.city, a.state, a.postal_code, a.country])
    }

    fn want(p: [Option<&str>; 5]) -> Option<[Option<String>; 5]> {
        Some(p.map(|s| s.map(str::to_string)))
    }

    #[test]
    fn us_forms() {
        assert_eq!(
            parts("725 Example Street, Redmond, WA 98052, United States"),
            want([
                Some("725 Example Street"),
                Some("Redmond"),
                Some("WA"),
                Some("98052"),
                Some("United States")
            ])
        );
        assert_eq!(
            parts("500 Pine Street\nSuite 300\nSeattle WA 98101-1234 USA"),
            want([
                Some("500 Pine Street"),
                Some("Seattle"),
                Some("WA"),
                Some("98101-1234"),
                Some("USA")
            ])
        );
        assert_eq!(
            parts("Floor 4, 725 Example Street, Redmond, WA 98052"),
            want([
                Some("725 Example Street"),
                Some("Redmond"),
                Some("WA"),
                Some("98052"),
                None
            ])
        );
    }

    #[test]
    fn eu_and_uk_forms() {
        assert_eq!(
            parts("Stephansplatz 1, 1010 Wien, Österreich"),
            want([
                Some("Stephansplatz 1"),
                Some("Wien"),
                None,
                Some("1010"),
                Some("Österreich")
            ])
        );
        assert_eq!(
            parts("Hauptstraße 5, 2. OG, 10115 Berlin, Deutschland"),
            want([
                Some("Hauptstraße 5"),
                Some("Berlin"),
                None,
                Some("10115"),
                Some("Deutschland")
            ])
        );
        assert_eq!(
            parts("Damrak 1, 1012 LG Amsterdam"),
            want([
                Some("Damrak 1"),
                Some("Amsterdam"),
                None,
                Some("1012 LG"),
                None
            ])
        );
        assert_eq!(
            parts("Rua Augusta 100, 1100-048 Lisboa, Portugal"),
            want([
                Some("Rua Augusta 100"),
                Some("Lisboa"),
                None,
                Some("1100-048"),
                Some("Portugal")
            ])
        );
        assert_eq!(
            parts("Piazza del Duomo 1, 20122 Milano MI"),
            want([
                Some("Piazza del Duomo 1"),
                Some("Milano"),
                Some("MI"),
                Some("20122"),
                None
            ])
        );
        assert_eq!(
            parts("Palace of Westminster, London SW1A 0AA"),
            want([None, Some("London"), None, Some("SW1A 0AA"), None])
        );
    }

    #[test]
    fn no_postal_code_no_split() {
        assert_eq!(parts("Building 2, Floor 1"), None);
        assert_eq!(parts("Via del Corso 10, Roma"), None);
        assert_eq!(parts("Room 110, Building 2\nContoso Campus"), None);
        assert_eq!(parts("東京都港区1-2-3"), None);
        assert_eq!(parts("Lab 12345"), None);
        assert_eq!(parts("1234 Main Street, Springfield"), None);
    }
}
