//! Floor plans: per site, an image the admin uploads (PNG or JPEG) with the building's zones
//! outlined on it, so the call page can show where in the building the caller is — without
//! internet, beside the map. A zone is one of the configured `[[emergency.zones]]` (the zone a
//! call's record names) and is outlined on at most one plan.
//!
//! Kept in the store's `floor_plans` tree: `plan/<id>` holds the description as JSON and
//! `image/<id>` the image's bytes, written together. Served to logged-in users only
//! (`pages::floor_plans`). Parts: [`image`] (what a file is, from its bytes), [`outline`] (the
//! zones' outlines as text), [`edit`] (a submitted plan checked against the others),
//! [`marked`] (the call page's view of the caller's zone).

pub mod edit;
pub mod image;
pub mod marked;
pub mod outline;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Blobs, Store, StoreError};
use image::ImageKind;
use outline::ZoneOutline;

/// Most plans kept (each image up to [`image::MAX_BYTES`]).
pub const MAX_PLANS: usize = 20;

/// One site's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorPlan {
    /// Chosen by the appliance (digits); in the image's URL.
    pub id: String,
    /// The site's name as the admin wrote it ("HQ, building 7").
    pub site: String,
    pub image: ImageKind,
    pub width: u32,
    pub height: u32,
    pub zones: Vec<ZoneOutline>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl FloorPlan {
    /// The outline of zone `name` on this plan.
    pub fn outline(&self, name: &str) -> Option<&ZoneOutline> {
        self.zones
            .iter()
            .find(|z| z.name.eq_ignore_ascii_case(name))
    }

    /// The outlined zones that are not among `configured` (any more): no call names them.
    pub fn unconfigured(&self, configured: &[String]) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| !configured.iter().any(|c| c.eq_ignore_ascii_case(&z.name)))
            .map(|z| z.name.clone())
            .collect()
    }
}

const PLAN: &str = "plan/";
const IMAGE: &str = "image/";

/// The plans in the store. Cheap to clone.
#[derive(Clone)]
pub struct FloorPlans {
    store: Store,
}

impl FloorPlans {
    pub fn of(store: &Store) -> FloorPlans {
        FloorPlans {
            store: store.clone(),
        }
    }

    fn blobs(&self) -> &Blobs {
        &self.store.floor_plans
    }

    /// Every readable plan, by site name. An unreadable one is logged by key and left out.
    pub fn all(&self) -> Vec<FloorPlan> {
        let entries = match self.blobs().with_prefix(PLAN) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "console: the floor plans cannot be read");
                return Vec::new();
            }
        };
        let mut plans: Vec<FloorPlan> = entries
            .into_iter()
            .filter_map(|(key, bytes)| match serde_json::from_slice(&bytes) {
                Ok(plan) => Some(plan),
                Err(error) => {
                    tracing::warn!(key, %error, "console: an unreadable floor plan is skipped");
                    None
                }
            })
            .collect();
        plans.sort_by_key(|p: &FloorPlan| p.site.to_lowercase());
        plans
    }

    /// Plan `id`.
    pub fn get(&self, id: &str) -> Option<FloorPlan> {
        self.all().into_iter().find(|p| p.id == id)
    }

    /// The plan on which zone `zone` is outlined, if any.
    pub fn outlining(&self, zone: &str) -> Option<FloorPlan> {
        self.all().into_iter().find(|p| p.outline(zone).is_some())
    }

    /// Plan `id`'s image: its type and bytes.
    pub fn image(&self, id: &str) -> Result<Option<(ImageKind, Vec<u8>)>, StoreError> {
        let Some(plan) = self.get(id) else {
            return Ok(None);
        };
        Ok(self
            .blobs()
            .get(&format!("{IMAGE}{id}"))?
            .map(|bytes| (plan.image, bytes)))
    }

    /// A new id for a plan.
    pub fn new_id(&self) -> Result<String, StoreError> {
        Ok(self.store.next_id()?.to_string())
    }

    /// Writes `plan` (and, when given, its new image) and flushes: it outlasts a power cut.
    pub fn save(&self, plan: &FloorPlan, image: Option<&[u8]>) -> Result<(), StoreError> {
        let description = serde_json::to_vec(plan).map_err(|e| StoreError::Corrupt {
            tree: "floor_plans".into(),
            key: format!("{PLAN}{}", plan.id),
            reason: e.to_string(),
        })?;
        let plan_key = format!("{PLAN}{}", plan.id);
        let image_key = format!("{IMAGE}{}", plan.id);
        let mut changes: Vec<(&str, Option<&[u8]>)> = vec![(&plan_key, Some(&description))];
        if let Some(bytes) = image {
            changes.push((&image_key, Some(bytes)));
        }
        self.blobs().write(&changes)?;
        self.store.flush()
    }

    /// Removes plan `id` and its image; false when there was none.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        if self.get(id).is_none() {
            return Ok(false);
        }
        self.blobs().write(&[
            (&format!("{PLAN}{id}"), None),
            (&format!("{IMAGE}{id}"), None),
        ])?;
        self.store.flush()?;
        Ok(true)
    }
}

impl FloorPlans {
    /// The call page's plan for a call in `zone`: the plan it is outlined on, marked.
    pub fn marked(&self, zone: &str) -> Option<marked::MarkedPlan> {
        self.outlining(zone)
            .and_then(|plan| marked::MarkedPlan::of(&plan, zone))
    }
}
