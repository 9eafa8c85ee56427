//! Coordinates of the caller: labelled latitude/longitude, a labelled pair, map links (the real
//! `href` of a link, a card action URL, or a URL written in the text: `geo:` URIs, Google `q=`,
//! `@lat,lon`, `destination=` and `!3d…!4d…`, Bing `cp=` and `sp=point.`, OpenStreetMap
//! `mlat/mlon` and `#map=`, Apple `ll=`/`q=`, HERE `map=`), then a decimal pair in the text.
//! Every pair is range-checked; 0,0 is no fix.

use super::labels::Field;
use super::message::MessageText;
use super::rules::Rules;

/// Coordinates: labelled latitude/longitude, a labelled pair, map links, then any decimal pair
/// on a line that is not a phone/e-mail/dial line.
pub(crate) fn find(text: &MessageText, rules: &Rules) -> Option<(f64, f64)> {
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
                .filter(|l| !rules.patterns.url.is_match(&l.text) && !l.is_link_text)
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
pub(crate) fn pair_in(text: &str, rules: &Rules) -> Option<(f64, f64)> {
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

/// Coordinates in a `geo:` URI or a Google / Bing / OpenStreetMap / Apple / HERE map link.
fn from_map_link(link: &str, rules: &Rules) -> Option<(f64, f64)> {
    let p = &rules.patterns;
    let parse = |s: &str| s.parse::<f64>().ok();
    let pair = |c: regex::Captures| valid(parse(c.get(1)?.as_str())?, parse(c.get(2)?.as_str())?);
    let osm = || {
        let lat = parse(p.osm_mlat.captures(link)?.get(1)?.as_str())?;
        let lon = parse(p.osm_mlon.captures(link)?.get(1)?.as_str())?;
        valid(lat, lon)
    };
    p.geo_uri
        .captures(link.trim())
        .and_then(pair)
        .or_else(osm)
        .or_else(|| p.osm_hash.captures(link).and_then(pair))
        .or_else(|| p.google_data.captures(link).and_then(pair))
        .or_else(|| p.bing_point.captures(link).and_then(pair))
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
    use serde_json::{json, Map};

    fn text(body: &str) -> MessageText {
        let m = json!({"body":{"contentType":"html","content":body}});
        MessageText::read(m.as_object().unwrap_or(&Map::new()))
    }

    fn coords(body: &str) -> Option<(f64, f64)> {
        find(&text(body), &Rules::default())
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
            (
                "https://www.google.com/maps/dir/?api=1&destination=47.6401%2C-122.1299",
                (47.6401, -122.1299),
            ),
            (
                "https://www.google.com/maps/place/X/data=!4m2!3m1!1s0x0:0x0!3d47.6396!4d-122.1283",
                (47.6396, -122.1283),
            ),
            (
                "https://www.bing.com/maps?sp=point.47.6298_-122.3388_Caller",
                (47.6298, -122.3388),
            ),
            (
                "https://wego.here.com/?map=52.5308,13.3847,15,normal",
                (52.5308, 13.3847),
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
        for geo in [
            "geo:45.4641,9.1919",
            "GEO:45.4641,9.1919,120;u=35",
            "geo:45.4641,9.1919?z=18",
        ] {
            assert_eq!(
                coords(&format!("<a href=\"{geo}\">map</a>")),
                Some((45.4641, 9.1919)),
                "{geo}"
            );
        }
    }

    #[test]
    fn never_from_another_attribute() {
        assert_eq!(
            coords("<a title=\"href=https://maps.google.com/?q=40.7128,-74.0060\" href=\"https://example.com/\">map</a>"),
            None
        );
        assert_eq!(
            coords("<img alt=\"47.6396, -122.1283\" src=\"https://maps.google.com/?q=40.7128,-74.0060\">"),
            None
        );
    }
}
