//! The zones drawn on a floor plan: one outline per configured zone, in the image's pixel
//! coordinates, written one per line as `Zone name: x,y x,y …` (two corners make a rectangle,
//! three or more a polygon). Parsing checks every line against the configured zone names and
//! the image's size and reports each problem by line; nothing is kept from a text with a
//! problem. Pure: no IO.

use serde::{Deserialize, Serialize};

/// Most corners one outline may have.
pub const MAX_CORNERS: usize = 64;

/// One zone's outline on a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneOutline {
    /// The configured zone's name, spelled as configured.
    pub name: String,
    /// The polygon's corners in image pixels (a rectangle is stored as its four corners).
    pub corners: Vec<(u32, u32)>,
}

impl ZoneOutline {
    /// SVG `points`: `x,y x,y …`.
    pub fn points(&self) -> String {
        self.corners
            .iter()
            .map(|(x, y)| format!("{x},{y}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The middle of the outline's bounding box (where its name is written).
    pub fn middle(&self) -> (u32, u32) {
        let xs = self.corners.iter().map(|c| c.0);
        let ys = self.corners.iter().map(|c| c.1);
        let (left, right) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
        let (top, bottom) = (ys.clone().min().unwrap_or(0), ys.max().unwrap_or(0));
        (left + (right - left) / 2, top + (bottom - top) / 2)
    }
}

/// The outlines as the editor shows them again (one line each).
pub fn to_text(outlines: &[ZoneOutline]) -> String {
    outlines
        .iter()
        .map(|o| format!("{}: {}", o.name, o.points()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads `text` (one outline per line, blank lines skipped) for an image of `width`×`height`
/// whose zones must be among `configured`; every problem as a sentence naming its line.
pub fn parse(
    text: &str,
    configured: &[String],
    (width, height): (u32, u32),
) -> Result<Vec<ZoneOutline>, Vec<String>> {
    let mut outlines: Vec<ZoneOutline> = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let number = index + 1;
        match parse_line(line, configured, (width, height)) {
            Ok(outline) => {
                if outlines.iter().any(|o| o.name == outline.name) {
                    problems.push(format!(
                        "Line {number}: zone \"{}\" is outlined twice.",
                        outline.name
                    ));
                } else {
                    outlines.push(outline);
                }
            }
            Err(problem) => problems.push(format!("Line {number}: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(outlines)
    } else {
        Err(problems)
    }
}

fn parse_line(
    line: &str,
    configured: &[String],
    (width, height): (u32, u32),
) -> Result<ZoneOutline, String> {
    let Some((name, corners)) = line.rsplit_once(':') else {
        return Err(
            "write the zone's name, a colon, then its corners (\"East wing: 10,10 200,120\")."
                .into(),
        );
    };
    let name = name.trim();
    let Some(name) = configured.iter().find(|c| c.eq_ignore_ascii_case(name)) else {
        return Err(if configured.is_empty() {
            "no zones are configured ([[emergency.zones]] in beacon.toml); a plan's zones are named like them.".into()
        } else {
            format!(
                "\"{name}\" is not a configured zone (configured: {}).",
                configured.join("; ")
            )
        });
    };
    let mut points = Vec::new();
    for word in corners.split_whitespace() {
        let point = word
            .split_once(',')
            .and_then(|(x, y)| Some((x.trim().parse::<u32>().ok()?, y.trim().parse::<u32>().ok()?)))
            .ok_or_else(|| {
                format!("\"{word}\" is not a corner (x,y in whole pixels, like 120,45).")
            })?;
        if point.0 > width || point.1 > height {
            return Err(format!(
                "corner {},{} is outside the image ({width}×{height} pixels).",
                point.0, point.1
            ));
        }
        points.push(point);
    }
    let corners = match points.as_slice() {
        [] | [_] => {
            return Err(format!(
                "zone \"{name}\" needs two corners (a rectangle) or three or more (a polygon)."
            ))
        }
        [(x1, y1), (x2, y2)] => {
            let (left, right) = ((*x1).min(*x2), (*x1).max(*x2));
            let (top, bottom) = ((*y1).min(*y2), (*y1).max(*y2));
            if left == right || top == bottom {
                return Err(format!("zone \"{name}\"'s rectangle has no area."));
            }
            vec![(left, top), (right, top), (right, bottom), (left, bottom)]
        }
        many if many.len() > MAX_CORNERS => {
            return Err(format!(
                "zone \"{name}\" has {} corners; at most {MAX_CORNERS}.",
                many.len()
            ))
        }
        many => many.to_vec(),
    };
    Ok(ZoneOutline {
        name: name.clone(),
        corners,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Vec<String> {
        vec!["East wing, floor 2".into(), "Lab".into()]
    }

    #[test]
    fn rectangles_and_polygons_named_like_the_configured_zones() {
        let text = "east wing, floor 2: 10,20 110,80\n\n  Lab: 0,0 50,0 25,40  \n";
        let outlines = parse(text, &zones(), (200, 100)).unwrap_or_default();
        assert_eq!(
            outlines,
            vec![
                ZoneOutline {
                    name: "East wing, floor 2".into(),
                    corners: vec![(10, 20), (110, 20), (110, 80), (10, 80)],
                },
                ZoneOutline {
                    name: "Lab".into(),
                    corners: vec![(0, 0), (50, 0), (25, 40)],
                },
            ]
        );
        assert_eq!(outlines[0].middle(), (60, 50));
        assert_eq!(outlines[1].points(), "0,0 50,0 25,40");
        // What the editor shows again reads back the same.
        assert_eq!(
            parse(&to_text(&outlines), &zones(), (200, 100)),
            Ok(outlines)
        );
    }

    #[test]
    fn every_problem_is_reported_by_its_line() {
        let text =
            "West wing: 1,1 2,2\nLab: 1,1 500,2\nLab 1,1 2,2\nLab: 1,1\nLab: 1;1 2,2\nLab: 3,3 3,9";
        let problems = parse(text, &zones(), (200, 100)).err().unwrap_or_default();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems[0].starts_with(
            "Line 1: \"West wing\" is not a configured zone (configured: East wing, floor 2; Lab)"
        ));
        assert!(problems[1].contains("corner 500,2 is outside the image (200×100 pixels)"));
        assert!(problems[2].contains("a colon"));
        assert!(problems[3].contains("needs two corners"));
        assert!(problems[4].contains("\"1;1\" is not a corner"));
        assert!(problems[5].contains("has no area"));
        let twice = parse("Lab: 1,1 2,2\nLAB: 3,3 4,4", &zones(), (200, 100));
        assert!(twice.is_err_and(|p| p[0].contains("outlined twice")));
        let none = parse("Lab: 1,1 2,2", &[], (200, 100));
        assert!(none.is_err_and(|p| p[0].contains("no zones are configured")));
    }
}
