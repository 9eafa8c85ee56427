//! The `[alarm]` configuration section: timers and output patterns, with validation.
//!
//! ```toml
//! [alarm]
//! # Stop the siren this many minutes after the last new call; the strobe keeps
//! # flashing until acknowledged. 0 or absent: the siren sounds until silenced or acknowledged.
//! siren_auto_silence_minutes = 5
//! # Clear the event this many minutes after it was acknowledged. 0 or absent: only a manual clear.
//! auto_clear_minutes = 30
//! # Escalate (notify) when a real call is not acknowledged within this many minutes.
//! # Default 2; 0 disables escalation.
//! escalate_after_minutes = 2
//! # Flash periods in milliseconds. Anything below 333 ms (faster than 3 Hz) is raised to
//! # 333 ms for photosensitive safety, and validate() reports it.
//! real_flash_period_ms = 500
//! test_flash_period_ms = 1000
//! possible_flash_period_ms = 1500
//! trouble_flash_period_ms = 2000
//! # Whether a test call also sounds the siren (default: strobe only).
//! test_sounds_siren = false
//! # A possible emergency sounds the siren this many seconds (a short burst, 0 to 60; 0: strobe
//! # only) instead of continuously, until acknowledged or confirmed.
//! possible_siren_seconds = 3
//! # Strobe after acknowledgement until clear: "steady" or "off".
//! acknowledged_strobe = "off"
//! # How long a lamp test (long button press) keeps every output on, 1 to 60 seconds.
//! lamp_test_seconds = 5
//! ```

use serde::{Deserialize, Serialize};

use super::outputs::MIN_FLASH_PERIOD_MS;

/// Longest timer accepted, in minutes (one day); a larger value is almost certainly a typo.
pub const MAX_TIMER_MINUTES: u32 = 24 * 60;
/// Longest lamp test accepted, in seconds.
pub const MAX_LAMP_TEST_SECONDS: u32 = 60;
/// Longest siren burst of a possible call, in seconds: longer is no longer a burst.
pub const MAX_POSSIBLE_SIREN_SECONDS: u32 = 60;

/// What the strobe does after acknowledgement, until the event is cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcknowledgedStrobe {
    /// On without flashing: the event is still open.
    Steady,
    /// Off; only the display shows the open event. The default: strobe and siren latch until
    /// acknowledged (anchors §10.4), and an acknowledgement ends them.
    #[default]
    Off,
}

/// The `[alarm]` section; see the module documentation for the TOML shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// Minutes after the last new call until the siren stops by itself; `None` or 0: never.
    pub siren_auto_silence_minutes: Option<u32>,
    /// Minutes after acknowledgement until the event clears by itself; `None` or 0: never.
    pub auto_clear_minutes: Option<u32>,
    /// Minutes without acknowledgement until escalation; `None` or 0: never.
    pub escalate_after_minutes: Option<u32>,
    /// Strobe flash period for a real call.
    pub real_flash_period_ms: u32,
    /// Strobe flash period for a test call.
    pub test_flash_period_ms: u32,
    /// Strobe flash period for a possible call.
    pub possible_flash_period_ms: u32,
    /// Trouble output flash period.
    pub trouble_flash_period_ms: u32,
    /// Whether a test call sounds the siren.
    pub test_sounds_siren: bool,
    /// Seconds of siren when a possible call is raised; 0: none.
    pub possible_siren_seconds: u32,
    /// Strobe after acknowledgement.
    pub acknowledged_strobe: AcknowledgedStrobe,
    /// Length of a lamp test.
    pub lamp_test_seconds: u32,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self {
            siren_auto_silence_minutes: None,
            auto_clear_minutes: None,
            escalate_after_minutes: Some(2),
            real_flash_period_ms: 500,
            test_flash_period_ms: 1000,
            possible_flash_period_ms: 1500,
            trouble_flash_period_ms: 2000,
            test_sounds_siren: false,
            possible_siren_seconds: 3,
            acknowledged_strobe: AcknowledgedStrobe::Off,
            lamp_test_seconds: 5,
        }
    }
}

/// One problem in the `[alarm]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "alarm.{field} = {ms} ms flashes faster than 3 Hz; it is raised to {min} ms \
         for photosensitive safety",
        min = MIN_FLASH_PERIOD_MS
    )]
    FlashTooFast { field: &'static str, ms: u32 },
    #[error("alarm.{field} = {value} is more than {max} {unit}")]
    TooLarge {
        field: &'static str,
        value: u32,
        max: u32,
        unit: &'static str,
    },
    #[error("alarm.lamp_test_seconds must be at least 1")]
    LampTestZero,
}

/// Every problem found by [`AlarmConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl AlarmConfig {
    /// Checks every field and reports all problems at once. The alarm also runs with an
    /// invalid config (flash periods are clamped, the lamp test kept within 1..=60 s), so a
    /// caller may choose to log these and go on.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        for (field, ms) in [
            ("real_flash_period_ms", self.real_flash_period_ms),
            ("test_flash_period_ms", self.test_flash_period_ms),
            ("possible_flash_period_ms", self.possible_flash_period_ms),
            ("trouble_flash_period_ms", self.trouble_flash_period_ms),
        ] {
            if ms < MIN_FLASH_PERIOD_MS {
                errors.push(ConfigError::FlashTooFast { field, ms });
            }
        }
        for (field, minutes) in [
            (
                "siren_auto_silence_minutes",
                self.siren_auto_silence_minutes,
            ),
            ("auto_clear_minutes", self.auto_clear_minutes),
            ("escalate_after_minutes", self.escalate_after_minutes),
        ] {
            if let Some(value) = minutes.filter(|m| *m > MAX_TIMER_MINUTES) {
                errors.push(ConfigError::TooLarge {
                    field,
                    value,
                    max: MAX_TIMER_MINUTES,
                    unit: "minutes",
                });
            }
        }
        if self.possible_siren_seconds > MAX_POSSIBLE_SIREN_SECONDS {
            errors.push(ConfigError::TooLarge {
                field: "possible_siren_seconds",
                value: self.possible_siren_seconds,
                max: MAX_POSSIBLE_SIREN_SECONDS,
                unit: "seconds",
            });
        }
        if self.lamp_test_seconds == 0 {
            errors.push(ConfigError::LampTestZero);
        } else if self.lamp_test_seconds > MAX_LAMP_TEST_SECONDS {
            errors.push(ConfigError::TooLarge {
                field: "lamp_test_seconds",
                value: self.lamp_test_seconds,
                max: MAX_LAMP_TEST_SECONDS,
                unit: "seconds",
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    pub(crate) fn siren_auto_silence(&self) -> Option<chrono::Duration> {
        minutes(self.siren_auto_silence_minutes)
    }

    pub(crate) fn auto_clear(&self) -> Option<chrono::Duration> {
        minutes(self.auto_clear_minutes)
    }

    pub(crate) fn escalate_after(&self) -> Option<chrono::Duration> {
        minutes(self.escalate_after_minutes)
    }

    /// The siren burst of a possible call; `None` when configured 0.
    pub(crate) fn possible_siren(&self) -> Option<chrono::Duration> {
        let secs = self.possible_siren_seconds.min(MAX_POSSIBLE_SIREN_SECONDS);
        (secs > 0).then(|| chrono::Duration::seconds(i64::from(secs)))
    }

    pub(crate) fn lamp_test(&self) -> chrono::Duration {
        let secs = self.lamp_test_seconds.clamp(1, MAX_LAMP_TEST_SECONDS);
        chrono::Duration::seconds(i64::from(secs))
    }
}

/// `None` and 0 both mean "never"; larger values are capped at [`MAX_TIMER_MINUTES`].
fn minutes(value: Option<u32>) -> Option<chrono::Duration> {
    value
        .filter(|m| *m > 0)
        .map(|m| chrono::Duration::minutes(i64::from(m.min(MAX_TIMER_MINUTES))))
}
