//! The alarm: what the appliance's strobe, siren, trouble output and display should be doing
//! about emergency calls, and what a guard has done about them.
//!
//! This module is pure (sans-IO): no clock reads, no tokio, no files. The adapter owns an
//! [`Alarm`], feeds it [`Event`]s with the current wall-clock time, carries out the returned
//! [`Effect`]s (write the audit record, store [`Alarm::snapshot`] when the state changed, hand
//! [`Effect::Escalate`] to the notifier) and drives the hardware from [`Alarm::outputs`]. The
//! effects are small and the snapshot is taken only when asked for: it holds every remembered
//! key, and copying those on each step delayed the strobe. It calls
//! `handle(Event::Tick, now)` at [`Alarm::next_deadline`] (a late tick is harmless: every event
//! first runs the timers that are due).
//!
//! States, derived from the active calls:
//!
//! ```text
//!            CallRaised (new key)            Acknowledge
//!   Idle ─────────────────────────► Alerting ───────────► Acknowledged
//!    ▲                                 ▲                        │
//!    │                                 ├── CallRaised (new key) ┤
//!    │                                 └── Confirm (possible) ──┤
//!    └──────────── Clear (manual) or auto-clear timer ──────────┘
//! ```
//!
//! Every call has one of three levels ([`CallLevel`]): a real emergency, a *possible* one
//! (the classifier was not sure) and a test.
//!
//! * A call key is raised at most once: redelivery of the same key is refused, also after the
//!   call was acknowledged or cleared (the last [`REMEMBERED_KEYS`] keys are remembered and
//!   persisted). The one exception is the upgrade of a possible call, below.
//! * A possible call has its own strobe pattern ([`OutputPattern::Possible`]), a short siren
//!   burst (`possible_siren_seconds`, 0 = none) instead of the continuous siren, and is
//!   acknowledged, silenced and cleared like any call. It is never dropped and never sounds the
//!   full alarm by itself.
//! * A possible call becomes a real one — full [`OutputPattern::Alarm`], the continuous siren,
//!   waiting for a new acknowledgement, an audit record [`AuditAction::Confirmed`] saying who
//!   or what — when [`Event::Confirm`] names it (a guard's escalation from the console, MQTT or
//!   a long press of the button confirms every active possible call; a second source names its
//!   key), or when a later [`Event::CallRaised`] for the same key is not possible and not a test
//!   (corroboration; for a possible call already cleared this raises it again, as a real call).
//!   A call is upgraded at most once; a real call is never downgraded (`CallUpdated` keeps the
//!   level).
//! * An alarm is never cleared without an acknowledgement; `Clear` while alerting is refused.
//! * Silence (manual, or auto-silence after `siren_auto_silence_minutes`) stops the siren only;
//!   the strobe flashes until acknowledged. A new call resounds the siren.
//! * Escalation fires once per alerting episode, `escalate_after_minutes` after the earliest
//!   unacknowledged real *or possible* call of the episode started waiting, unless it was
//!   acknowledged first: nobody looking at a possible alert is as much a failure as nobody
//!   looking at a real one. Test-only episodes never escalate. A call confirmed after its
//!   acknowledgement waits again from the confirmation; one confirmed after the episode
//!   escalated does not escalate again (the confirmation itself sends the alarm notification).
//! * Troubles are an overlay on their own output; they never change the alarm pattern.
//! * A lamp test turns every output on for `lamp_test_seconds`; it is refused while a call is
//!   active and is ended by a new call.

mod audit;
mod config;
mod keys;
mod machine;
mod outputs;
mod persist;
mod view;

pub use audit::{unrecorded_raises, AuditAction, AuditRecord, LOST_RAISE_DETAIL};
pub use config::{AcknowledgedStrobe, AlarmConfig, ConfigError, ConfigErrors};
pub use keys::REMEMBERED_KEYS;
pub use machine::Alarm;
pub use outputs::{Output, OutputPattern, OutputState, MIN_FLASH_PERIOD_MS};
pub use persist::{Acknowledgement, ActiveCall, Episode, PersistedState, RememberedKey};
pub use view::{
    CallView, DisplayMode, DisplayModel, TroubleView, POSSIBLE_HEADLINE, TEST_HEADLINE,
};

use serde::{Deserialize, Serialize};

/// What the classifier knows about an emergency call, as shown to the guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallSummary {
    /// Caller display name from Teams.
    pub caller_name: Option<String>,
    /// Location text as conveyed to the PSAP.
    pub location: Option<String>,
    /// The dial string (911, 112, 933 …).
    pub dial_string: Option<String>,
    /// Call-back number, when the notification carries one (Kari's Law content).
    pub callback_number: Option<String>,
    /// A test call (933 or a drill): own output pattern, display says "THIS IS A TEST".
    pub is_test: bool,
    /// A possible emergency (the classifier was not sure): own output pattern, a short siren
    /// burst, display says "POSSIBLE EMERGENCY — CHECK TEAMS". `is_test` wins over it.
    pub is_possible: bool,
    /// The message text, cut to a few hundred characters, for a possible call: the guard reads
    /// it to decide.
    pub message: Option<String>,
}

impl CallSummary {
    /// The call's alert level.
    pub fn level(&self) -> CallLevel {
        if self.is_test {
            CallLevel::Test
        } else if self.is_possible {
            CallLevel::Possible
        } else {
            CallLevel::Emergency
        }
    }
}

/// How loud a call is, most urgent first (the order sorts calls for display).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallLevel {
    /// A recognised emergency call: the full alarm.
    Emergency,
    /// Maybe an emergency: its own strobe pattern and a short siren burst.
    Possible,
    /// A test call: its own strobe pattern, siren only if configured.
    Test,
}

impl CallLevel {
    /// Stable lower-case name (MQTT payloads, notifications, pages).
    pub fn as_str(self) -> &'static str {
        match self {
            CallLevel::Emergency => "emergency",
            CallLevel::Possible => "possible",
            CallLevel::Test => "test",
        }
    }
}

/// Who or what caused an event; recorded in every audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The device's physical button.
    Button,
    /// The web page.
    Web,
    /// An MQTT command.
    Mqtt,
    /// A timer inside the alarm (auto-silence, escalation, auto-clear, lamp-test end).
    Timer,
    /// The appliance itself (call pipeline, health supervision).
    System,
    /// State brought back after a restart.
    Restore,
    /// Another desk of the fleet (`who` names the person and the desk); only when the office
    /// chose that an acknowledgement there acknowledges here too.
    Fleet,
}

/// The alarm's state, derived from the active calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    /// No active call.
    Idle,
    /// At least one active call is not acknowledged.
    Alerting,
    /// Active calls exist and all are acknowledged; waiting for clear.
    Acknowledged,
}

/// Something that happened, fed to [`Alarm::handle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A recognised emergency call. Idempotent by `key` (chat id + message id).
    CallRaised { key: String, summary: CallSummary },
    /// New text for an active call; never re-alerts. The level (`is_test`, `is_possible`) is
    /// kept from the alarm's own record of the call.
    CallUpdated { key: String, summary: CallSummary },
    /// A possible call is a real emergency: sound the full alarm. `key: None` confirms every
    /// active possible call (a guard escalating from the console, MQTT or the button);
    /// `Some(key)` the one call a second source corroborates. `detail` says what confirmed it
    /// (recorded in the audit log), e.g. "Graph emergency call event from Kim".
    Confirm {
        key: Option<String>,
        source: Source,
        who: Option<String>,
        detail: Option<String>,
    },
    /// Acknowledge every active call.
    Acknowledge { source: Source, who: Option<String> },
    /// Close the event; only when everything is acknowledged.
    Clear { source: Source, who: Option<String> },
    /// Stop the siren; the strobe keeps flashing until acknowledged.
    Silence { source: Source, who: Option<String> },
    /// Time has passed; run the timers that are due.
    Tick,
    /// A component reports a fault (health supervision).
    TroubleRaised { component: String, detail: String },
    /// A component's fault has gone.
    TroubleCleared { component: String },
    /// Start (`on`) or stop a local lamp test.
    LampTest {
        on: bool,
        source: Source,
        who: Option<String>,
    },
}

/// What the adapter must do after an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Append this record to the audit log.
    Audit(AuditRecord),
    /// Nobody acknowledged these calls in time: notify the escalation contacts.
    Escalate {
        keys: Vec<String>,
        /// When the earliest of them was raised.
        since: chrono::DateTime<chrono::Utc>,
    },
    /// Something visible or persistent changed: refresh outputs and display, then store
    /// [`Alarm::snapshot`] (taken by the adapter once the outputs are out: it copies every
    /// remembered key).
    StateChanged { state: AlarmState },
    /// The event was refused and changed nothing; tell the person who asked.
    Refused(Refusal),
}

/// Why an event changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    #[error("call {key} was already raised")]
    DuplicateCall { key: String },
    #[error("call {key} is not active")]
    UnknownCall { key: String },
    #[error("there is no possible call to confirm")]
    NothingToConfirm,
    #[error("there is nothing to acknowledge")]
    NothingToAcknowledge,
    #[error("acknowledge first: calls {keys:?} are not acknowledged")]
    NotAcknowledged { keys: Vec<String> },
    #[error("there is nothing to clear")]
    NothingToClear,
    #[error("the siren is not sounding")]
    NothingToSilence,
    #[error("no trouble is active for {component}")]
    UnknownTrouble { component: String },
    #[error("a lamp test is not allowed while a call is active")]
    CallActive,
    #[error("no lamp test is running")]
    NoLampTest,
}
