//! The call page's view of a floor plan: the plan of the caller's site with the caller's zone
//! outlined, filled and named, in the image's own coordinates (drawn as inline SVG over the
//! image: no script, no tiles, no internet). Pure: no IO.

use super::FloorPlan;

/// What the call page draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedPlan {
    /// The plan's id (its image is `/floor-plans/<id>`).
    pub id: String,
    pub site: String,
    pub width: u32,
    pub height: u32,
    /// The caller's zone, as configured.
    pub zone: String,
    /// SVG `points` of its outline.
    pub points: String,
    /// Where its name is written, and how large (a thirtieth of the image's larger side).
    pub label_x: u32,
    pub label_y: u32,
    pub font_size: u32,
}

impl MarkedPlan {
    /// `plan` with `zone` marked; `None` when the zone is not outlined on it.
    pub fn of(plan: &FloorPlan, zone: &str) -> Option<MarkedPlan> {
        let outline = plan.outline(zone)?;
        let (label_x, label_y) = outline.middle();
        Some(MarkedPlan {
            id: plan.id.clone(),
            site: plan.site.clone(),
            width: plan.width,
            height: plan.height,
            zone: outline.name.clone(),
            points: outline.points(),
            label_x,
            label_y,
            font_size: (plan.width.max(plan.height) / 30).max(10),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::floor_plan::image::ImageKind;
    use crate::web::floor_plan::outline::ZoneOutline;

    #[test]
    fn the_callers_zone_is_marked_where_it_is_outlined() {
        let plan = FloorPlan {
            id: "4".into(),
            site: "HQ".into(),
            image: ImageKind::Jpeg,
            width: 600,
            height: 300,
            zones: vec![ZoneOutline {
                name: "East wing".into(),
                corners: vec![(400, 0), (600, 0), (600, 300), (400, 300)],
            }],
            updated_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            updated_by: "admin".into(),
        };
        let marked = MarkedPlan::of(&plan, "east WING");
        assert_eq!(
            marked,
            Some(MarkedPlan {
                id: "4".into(),
                site: "HQ".into(),
                width: 600,
                height: 300,
                zone: "East wing".into(),
                points: "400,0 600,0 600,300 400,300".into(),
                label_x: 500,
                label_y: 150,
                font_size: 20,
            })
        );
        assert_eq!(MarkedPlan::of(&plan, "Lab"), None);
        // After the configuration renamed the zone, the plan says so.
        assert_eq!(
            plan.unconfigured(&["EAST WING".into()]),
            Vec::<String>::new()
        );
        assert_eq!(
            plan.unconfigured(&["East".into()]),
            vec!["East wing".to_string()]
        );
    }
}
