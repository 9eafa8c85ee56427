//! The state the lead stores after every change and hands back to `Alarm::restore` after a
//! restart, so that an unacknowledged call is still alarming after a reboot.
//!
//! Troubles and a running lamp test are not persisted: health supervision raises troubles
//! again within its interval, and a lamp test must not resume after a reboot.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CallSummary, Source};

/// Current format of [`PersistedState`].
pub const PERSIST_VERSION: u32 = 1;

/// Who acknowledged a call, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub at: DateTime<Utc>,
    pub source: Source,
    pub who: Option<String>,
}

/// A call that is active (not yet cleared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveCall {
    pub key: String,
    pub summary: CallSummary,
    pub raised_at: DateTime<Utc>,
    pub acknowledged: Option<Acknowledgement>,
    /// When a possible call acknowledged before it was confirmed started waiting for
    /// acknowledgement again; escalation counts from here instead of `raised_at`.
    #[serde(default)]
    pub waiting_since: Option<DateTime<Utc>>,
}

impl ActiveCall {
    /// When the call started waiting for acknowledgement (escalation counts from here).
    pub fn waiting_since(&self) -> DateTime<Utc> {
        self.waiting_since.unwrap_or(self.raised_at)
    }
}

/// Timers and flags of the open event (from the first call until clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// When the current (or last) alerting episode started: Idle or Acknowledged → Alerting.
    pub alerting_since: DateTime<Utc>,
    /// Whether this alerting episode has escalated.
    pub escalated: bool,
    /// When the siren last started or resounded (a new call); auto-silence counts from here.
    pub siren_since: DateTime<Utc>,
    /// Silenced (manually or by auto-silence) since `siren_since`.
    pub siren_silenced: bool,
    /// When everything became acknowledged; auto-clear counts from here.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The siren burst of a possible call sounds until then.
    #[serde(default)]
    pub possible_siren_until: Option<DateTime<Utc>>,
}

/// A call key already raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedKey {
    pub key: String,
    pub at: DateTime<Utc>,
    /// Raised as a possible call and not confirmed yet: a later real report of the same key
    /// raises it again as a real call.
    #[serde(default)]
    pub possible: bool,
}

/// Everything needed to bring the alarm back after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    pub version: u32,
    /// Active calls, oldest first.
    pub calls: Vec<ActiveCall>,
    /// Present while calls are active.
    pub episode: Option<Episode>,
    /// Keys already raised, oldest first, so a redelivery after restart does not re-alert.
    #[serde(default)]
    pub remembered: Vec<RememberedKey>,
}
