//! Output patterns: what the strobe, siren and trouble outputs should be doing right now.
//!
//! Drivers (GPIO relay, Algo REST, MQTT …) turn an [`OutputState`] into their own commands;
//! [`OutputPattern`] names the profile so a multi-colour strobe can pick red for a real call,
//! another colour for a test, and so on.

use serde::{Deserialize, Serialize};

/// Shortest flash period allowed: 333 ms, i.e. at most 3 flashes a second (photosensitive
/// safety). Every [`Output::flashing`] is clamped to it.
pub const MIN_FLASH_PERIOD_MS: u32 = 333;

/// One output's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Output {
    Off,
    Steady,
    /// On and off with this period (one on phase and one off phase), never below
    /// [`MIN_FLASH_PERIOD_MS`].
    Flashing {
        period_ms: u32,
    },
}

impl Output {
    /// A flashing output, its period raised to [`MIN_FLASH_PERIOD_MS`] if shorter.
    pub fn flashing(period_ms: u32) -> Self {
        Output::Flashing {
            period_ms: period_ms.max(MIN_FLASH_PERIOD_MS),
        }
    }

    /// Whether the output is doing anything.
    pub fn is_on(self) -> bool {
        self != Output::Off
    }
}

/// Which profile the strobe and siren follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputPattern {
    /// Nothing active.
    Idle,
    /// An unacknowledged real call.
    Alarm,
    /// An unacknowledged possible call, and no real one.
    Possible,
    /// Only unacknowledged test calls.
    Test,
    /// Every active call is acknowledged; waiting for clear.
    Acknowledged,
    /// A local lamp test.
    LampTest,
}

/// What every output should be doing at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutputState {
    pub pattern: OutputPattern,
    pub strobe: Output,
    pub siren: Output,
    /// The trouble LED/relay: flashing while any trouble is active, independent of the alarm.
    pub trouble: Output,
}
