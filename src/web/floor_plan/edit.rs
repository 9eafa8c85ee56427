//! A plan as the settings form submits it, checked against the plans already kept and the
//! configured zones: every problem as a sentence, and nothing saved unless there are none.
//! Pure: no IO, the time and the new plan's id are passed in.

use chrono::{DateTime, Utc};

use super::image::{self, ImageFacts, MAX_SIDE};
use super::outline::{self, ZoneOutline};
use super::{FloorPlan, MAX_PLANS};

/// Longest site name.
pub const MAX_SITE_CHARS: usize = 100;

/// What the form sent.
#[derive(Debug, Default)]
pub struct Submission<'a> {
    /// The plan being changed; `None` for a new one.
    pub plan: Option<&'a str>,
    pub site: &'a str,
    /// A new image; `None` (or empty) keeps the plan's image.
    pub image: Option<&'a [u8]>,
    /// The zones' outlines, one per line (see [`outline`]).
    pub zones: &'a str,
}

/// A submission without problems.
#[derive(Debug)]
pub struct Checked {
    /// The plan it changes; `None` for a new one.
    pub replaces: Option<FloorPlan>,
    pub site: String,
    /// The new image's facts; `None` keeps the old image.
    pub image: Option<ImageFacts>,
    pub zones: Vec<ZoneOutline>,
}

impl Checked {
    /// The plan to keep: `id` is used for a new plan only.
    pub fn into_plan(self, id: String, by: &str, at: DateTime<Utc>) -> Option<FloorPlan> {
        let (id, kind, width, height) = match (self.image, &self.replaces) {
            (Some(facts), replaces) => (
                replaces.as_ref().map_or(id, |p| p.id.clone()),
                facts.kind,
                facts.width,
                facts.height,
            ),
            (None, Some(old)) => (old.id.clone(), old.image, old.width, old.height),
            (None, None) => return None,
        };
        Some(FloorPlan {
            id,
            site: self.site,
            image: kind,
            width,
            height,
            zones: self.zones,
            updated_at: at,
            updated_by: by.to_string(),
        })
    }
}

/// Checks `submission` against `plans` (every plan kept) and the `configured` zone names.
pub fn check(
    submission: &Submission,
    plans: &[FloorPlan],
    configured: &[String],
) -> Result<Checked, Vec<String>> {
    let replaces = match submission.plan {
        Some(id) => match plans.iter().find(|p| p.id == id) {
            Some(plan) => Some(plan.clone()),
            None => return Err(vec!["That floor plan is gone (removed meanwhile?).".into()]),
        },
        None => None,
    };
    let others: Vec<&FloorPlan> = plans
        .iter()
        .filter(|p| replaces.as_ref().is_none_or(|r| r.id != p.id))
        .collect();
    let mut problems = Vec::new();

    let site = submission.site.trim();
    if site.is_empty() {
        problems.push("Name the site (like \"HQ, building 7\").".to_string());
    } else if site.chars().count() > MAX_SITE_CHARS {
        problems.push(format!(
            "The site's name is longer than {MAX_SITE_CHARS} characters."
        ));
    } else if let Some(other) = others.iter().find(|p| p.site.eq_ignore_ascii_case(site)) {
        problems.push(format!(
            "{} already has a floor plan: change that one instead.",
            other.site
        ));
    }
    if replaces.is_none() && plans.len() >= MAX_PLANS {
        problems.push(format!(
            "At most {MAX_PLANS} floor plans are kept: remove one first."
        ));
    }

    let new_image = submission.image.filter(|bytes| !bytes.is_empty());
    let image = match (new_image, &replaces) {
        (Some(bytes), _) => match image::recognise(bytes) {
            Ok(facts) => Some(facts),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
        (None, Some(_)) => None,
        (None, None) => {
            problems.push("Choose an image file (PNG or JPEG) for the new plan.".into());
            None
        }
    };
    // The corners are checked against the image they are drawn on: the new one, else the
    // kept one; with neither readable only the names are checked.
    let size = match (&image, &replaces) {
        (Some(facts), _) => (facts.width, facts.height),
        (None, Some(old)) if new_image.is_none() => (old.width, old.height),
        _ => (MAX_SIDE, MAX_SIDE),
    };
    let zones = match outline::parse(submission.zones, configured, size) {
        Ok(zones) => zones,
        Err(mut found) => {
            problems.append(&mut found);
            Vec::new()
        }
    };
    for zone in &zones {
        if let Some(other) = others.iter().find(|p| p.outline(&zone.name).is_some()) {
            problems.push(format!(
                "Zone \"{}\" is already outlined on the plan of {}: a zone is on one plan.",
                zone.name, other.site
            ));
        }
    }

    if problems.is_empty() {
        Ok(Checked {
            replaces,
            site: site.to_string(),
            image,
            zones,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::floor_plan::image::ImageKind;

    fn configured() -> Vec<String> {
        vec!["East wing".into(), "Lab".into()]
    }

    fn kept(id: &str, site: &str, zones: &str) -> FloorPlan {
        FloorPlan {
            id: id.into(),
            site: site.into(),
            image: ImageKind::Png,
            width: 100,
            height: 50,
            zones: outline::parse(zones, &configured(), (100, 50)).unwrap_or_default(),
            updated_at: DateTime::<Utc>::MIN_UTC,
            updated_by: "admin".into(),
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Grayscale);
            if let Ok(mut writer) = encoder.write_header() {
                let _ = writer.write_image_data(&vec![0u8; (width * height) as usize]);
            }
        }
        out
    }

    #[test]
    fn a_new_plan_needs_a_site_an_image_and_good_outlines() {
        let image = png(300, 200);
        let new = Submission {
            site: " HQ ",
            image: Some(&image),
            zones: "east wing: 200,10 290,190",
            ..Submission::default()
        };
        let checked = check(&new, &[], &configured()).map_err(|p| p.join(" "));
        let plan = checked
            .ok()
            .and_then(|c| c.into_plan("7".into(), "admin", DateTime::<Utc>::MIN_UTC));
        let plan = plan.unwrap_or_else(|| kept("", "", ""));
        assert_eq!((plan.id.as_str(), plan.site.as_str()), ("7", "HQ"));
        assert_eq!((plan.width, plan.height), (300, 200));
        assert_eq!(plan.zones[0].name, "East wing");

        let nothing = check(&Submission::default(), &[], &configured())
            .err()
            .unwrap_or_default();
        assert_eq!(nothing.len(), 2, "{nothing:?}");
        assert!(nothing[0].contains("Name the site"));
        assert!(nothing[1].contains("Choose an image"));
    }

    #[test]
    fn an_edit_keeps_the_image_and_its_size_checks_the_corners() {
        let plans = [kept("1", "HQ", "Lab: 1,1 9,9")];
        let edit = Submission {
            plan: Some("1"),
            site: "HQ",
            zones: "Lab: 1,1 99,49\nEast wing: 0,0 100,50",
            ..Submission::default()
        };
        let checked = check(&edit, &plans, &configured()).map_err(|p| p.join(" "));
        let plan = checked
            .ok()
            .and_then(|c| c.into_plan("9".into(), "admin", DateTime::<Utc>::MIN_UTC));
        assert!(plan.is_some_and(|p| p.id == "1" && p.zones.len() == 2 && p.width == 100));
        let outside = Submission {
            zones: "Lab: 1,1 101,49",
            ..edit
        };
        let problems = check(&outside, &plans, &configured())
            .err()
            .unwrap_or_default();
        assert!(problems[0].contains("outside the image (100×50 pixels)"));
    }

    #[test]
    fn a_site_or_zone_of_another_plan_and_a_gone_plan_are_refused() {
        let plans = [kept("1", "HQ", "Lab: 1,1 9,9"), kept("2", "Depot", "")];
        let clash = Submission {
            plan: Some("2"),
            site: "hq",
            zones: "lab: 1,1 5,5",
            ..Submission::default()
        };
        let problems = check(&clash, &plans, &configured())
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("HQ already has a floor plan"));
        assert!(problems[1].contains("Zone \"Lab\" is already outlined on the plan of HQ"));
        let gone = Submission {
            plan: Some("3"),
            ..clash
        };
        assert!(check(&gone, &plans, &configured()).is_err_and(|p| p[0].contains("gone")));
    }
}
