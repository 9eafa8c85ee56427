//! The supervisor's last assessment, as the web page, `/api/health` and MQTT show it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::assess::Fault;
use super::paths::PathHealth;

/// The last assessment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// `None` until the first check.
    pub checked_at: Option<DateTime<Utc>>,
    pub faults: Vec<Fault>,
    /// Per path: calls reported, the last one, calls missed.
    pub paths: Vec<PathHealth>,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.checked_at.is_some() && self.faults.is_empty()
    }
}
