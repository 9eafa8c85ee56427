//! A screen-agnostic summary of the alarm for the display, web page and MQTT; rendering lives
//! elsewhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::machine::Alarm;
use super::outputs::OutputPattern;
use super::{AlarmState, CallLevel, CallSummary};

/// Headline for a test call, as NFPA 72 asks test messages to say.
pub const TEST_HEADLINE: &str = "THIS IS A TEST";

/// Headline for a possible call: the guard must look at the message in Teams.
pub const POSSIBLE_HEADLINE: &str = "POSSIBLE EMERGENCY — CHECK TEAMS";

/// What the screen is mainly about. Alarm beats possible beats test beats lamp test beats
/// trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayMode {
    Ready,
    /// At least one real call is active (acknowledged or not).
    Alarm,
    /// A possible call is active, and no real one.
    Possible,
    /// Only test calls are active.
    Test,
    LampTest,
    /// No call, but troubles are active.
    Trouble,
}

/// One active call as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub key: String,
    pub summary: CallSummary,
    pub raised_at: DateTime<Utc>,
    pub elapsed_secs: u64,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
}

/// One active trouble as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TroubleView {
    pub component: String,
    pub detail: String,
    pub since: DateTime<Utc>,
}

/// Everything a screen needs to show the alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayModel {
    pub mode: DisplayMode,
    pub state: AlarmState,
    /// "EMERGENCY CALL", "POSSIBLE EMERGENCY — CHECK TEAMS", "THIS IS A TEST", "LAMP TEST",
    /// "TROUBLE" or "READY".
    pub headline: String,
    /// Every active call is acknowledged.
    pub acknowledged: bool,
    /// An unacknowledged call wants the siren but it has been silenced.
    pub siren_silenced: bool,
    /// Most urgent first: unacknowledged before acknowledged, real before possible before
    /// test, newest first.
    pub calls: Vec<CallView>,
    /// By component name.
    pub troubles: Vec<TroubleView>,
    /// Seconds since the earliest active call.
    pub elapsed_secs: Option<u64>,
}

impl Alarm {
    /// The display summary at `now`.
    pub fn display(&self, now: DateTime<Utc>) -> DisplayModel {
        let mut calls: Vec<CallView> = self
            .calls
            .values()
            .map(|c| CallView {
                key: c.key.clone(),
                summary: c.summary.clone(),
                raised_at: c.raised_at,
                elapsed_secs: seconds_between(c.raised_at, now),
                acknowledged: c.acknowledged.is_some(),
                acknowledged_by: c.acknowledged.as_ref().and_then(|a| a.who.clone()),
            })
            .collect();
        calls.sort_by(|a, b| {
            (a.acknowledged, a.summary.level(), b.raised_at).cmp(&(
                b.acknowledged,
                b.summary.level(),
                a.raised_at,
            ))
        });
        let pattern = self.pattern(now);
        let most_urgent = calls.iter().map(|c| c.summary.level()).min();
        let mode = if let Some(level) = most_urgent {
            match level {
                CallLevel::Emergency => DisplayMode::Alarm,
                CallLevel::Possible => DisplayMode::Possible,
                CallLevel::Test => DisplayMode::Test,
            }
        } else if pattern == OutputPattern::LampTest {
            DisplayMode::LampTest
        } else if !self.troubles.is_empty() {
            DisplayMode::Trouble
        } else {
            DisplayMode::Ready
        };
        let headline = match mode {
            DisplayMode::Alarm => "EMERGENCY CALL",
            DisplayMode::Possible => POSSIBLE_HEADLINE,
            DisplayMode::Test => TEST_HEADLINE,
            DisplayMode::LampTest => "LAMP TEST",
            DisplayMode::Trouble => "TROUBLE",
            DisplayMode::Ready => "READY",
        };
        let state = self.state();
        DisplayModel {
            mode,
            state,
            headline: headline.to_owned(),
            acknowledged: state == AlarmState::Acknowledged,
            siren_silenced: matches!(pattern, OutputPattern::Alarm | OutputPattern::Test)
                && self.siren_wanted()
                && !self.siren_sounding(now),
            elapsed_secs: calls
                .iter()
                .map(|c| c.raised_at)
                .min()
                .map(|first| seconds_between(first, now)),
            calls,
            troubles: self
                .troubles
                .iter()
                .map(|(component, t)| TroubleView {
                    component: component.clone(),
                    detail: t.detail.clone(),
                    since: t.since,
                })
                .collect(),
        }
    }
}

/// Whole seconds from `from` to `to`, zero if the clock went backwards.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}
