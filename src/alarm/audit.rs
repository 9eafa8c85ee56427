//! Audit records: one for every transition of the alarm, with time, source and who.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AlarmState, Source};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    CallRaised,
    CallUpdated,
    /// A possible call became a real one (a guard escalated it, or a second source
    /// corroborated it); `who` and `detail` say by whom or what.
    Confirmed,
    Acknowledged,
    Silenced,
    AutoSilenced,
    Escalated,
    Cleared,
    AutoCleared,
    TroubleRaised,
    TroubleCleared,
    LampTestStarted,
    LampTestEnded,
    /// The alarm was rebuilt from persisted state after a restart.
    Restored,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub source: Source,
    /// The user who acted, when known (web login, MQTT client name …).
    pub who: Option<String>,
    pub action: AuditAction,
    /// State before and after.
    pub from: AlarmState,
    pub to: AlarmState,
    /// Call keys concerned (empty for troubles and lamp tests).
    pub keys: Vec<String>,
    /// Free text: trouble component and detail, why a lamp test ended …
    pub detail: Option<String>,
}
