//! The `[outputs]` configuration section — which GPIO lines are the strobe, siren and trouble
//! relays and the acknowledge button, and where the display is — and its check into the
//! [`Wiring`] the relay and button drivers are opened with. Every problem is reported at once,
//! naming the key.
//!
//! The `[outputs]` configuration section:
//!
//! ```toml
//! [outputs]
//! # A preset fills in the strobe, siren and trouble lines (see board/README.md):
//! # "waveshare-rpi-relay" (GPIO26/20/21, active low) or "none" (the default).
//! board = "waveshare-rpi-relay"
//!
//! # A line given here replaces the preset's line completely. Either `offset` (on `chip`,
//! # default /dev/gpiochip0) or `name` (a GPIO line name such as "GPIO26", searched on every
//! # chip). `active_low = true`: the relay is energised when the pin is low.
//! [outputs.siren]
//! chip = "/dev/gpiochip0"
//! offset = 5
//! active_low = false
//!
//! # The acknowledge button; absent: no button. Short press acknowledges, a press held for
//! # `long_press_ms` starts a lamp test.
//! [outputs.button]
//! name = "GPIO17"
//! active_low = true       # default: pressed pulls the line to ground
//! pull_up = true          # default: the kernel enables the internal pull-up
//! debounce_ms = 30        # 1 to 500
//! long_press_ms = 3000    # 1000 to 30000
//! ```
//!
//! A line that is neither configured nor given by the preset is not wired and is skipped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The chip a line given by offset is on, unless the line says otherwise.
pub const DEFAULT_CHIP: &str = "/dev/gpiochip0";

/// Ready-made wiring for a relay board.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardPreset {
    /// No preset: only the lines configured explicitly.
    #[default]
    None,
    /// Waveshare RPi Relay Board: CH1 GPIO26 = strobe, CH2 GPIO20 = siren, CH3 GPIO21 =
    /// trouble, all active low.
    WaveshareRpiRelay,
}

impl BoardPreset {
    /// The preset's `[strobe, siren, trouble]` lines.
    fn lines(self) -> [Option<LineConfig>; 3] {
        let low = |name: &str| {
            Some(LineConfig {
                name: Some(name.to_string()),
                active_low: true,
                ..LineConfig::default()
            })
        };
        match self {
            BoardPreset::None => [None, None, None],
            BoardPreset::WaveshareRpiRelay => [low("GPIO26"), low("GPIO20"), low("GPIO21")],
        }
    }
}

/// One output line as configured: `offset` on `chip`, or `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LineConfig {
    /// GPIO character device, e.g. `/dev/gpiochip0`; only with `offset`.
    pub chip: Option<String>,
    /// Line offset on the chip (the BCM GPIO number on a Raspberry Pi's gpiochip0).
    pub offset: Option<u32>,
    /// Line name, e.g. `GPIO26`; searched on every chip.
    pub name: Option<String>,
    /// Energised when the pin is low.
    pub active_low: bool,
}

/// The `[outputs]` section; see the module documentation for the TOML shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    pub board: BoardPreset,
    pub strobe: Option<LineConfig>,
    pub siren: Option<LineConfig>,
    pub trouble: Option<LineConfig>,
    pub button: Option<ButtonConfig>,
    /// The SSD1306 OLED (`[outputs.display]`); absent: no panel (the web mirror still works).
    pub display: Option<DisplayConfig>,
}

/// `[outputs.display]`: where the OLED is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// The I2C bus device, e.g. `/dev/i2c-1` on a Raspberry Pi.
    pub i2c_bus: String,
    /// The panel's 7-bit address (0x3C = 60, or 0x3D = 61).
    pub address: u8,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            i2c_bus: "/dev/i2c-1".into(),
            address: 0x3C,
        }
    }
}

/// Where a line is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LineId {
    Offset { chip: PathBuf, offset: u32 },
    Name(String),
}

impl std::fmt::Display for LineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineId::Offset { chip, offset } => write!(f, "{} line {offset}", chip.display()),
            LineId::Name(name) => write!(f, "line \"{name}\""),
        }
    }
}

/// A validated line: where it is and its polarity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpec {
    pub id: LineId,
    pub active_low: bool,
}

/// The validated wiring; `None`: not wired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wiring {
    pub strobe: Option<LineSpec>,
    pub siren: Option<LineSpec>,
    pub trouble: Option<LineSpec>,
    pub button: Option<LineSpec>,
}

/// One problem in the `[outputs]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputsConfigError {
    #[error("outputs.{line}: give either `offset` or `name`, not both")]
    OffsetAndName { line: &'static str },
    #[error("outputs.{line}: needs `offset` (with `chip`) or `name`")]
    NoLine { line: &'static str },
    #[error(
        "outputs.{line}: `chip` is only used with `offset` (a `name` is searched on every chip)"
    )]
    ChipWithName { line: &'static str },
    #[error("outputs.{line}.chip = {chip:?} is not a device path such as /dev/gpiochip0")]
    BadChip { line: &'static str, chip: String },
    #[error("outputs.{line} and outputs.{other} are both on {id}")]
    SameLine {
        line: &'static str,
        other: &'static str,
        id: LineId,
    },
    #[error("outputs.button.{field} = {value} is outside {min}..={max} ms")]
    ButtonTiming {
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
}

/// Every problem found by [`OutputsConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputsConfigErrors(pub Vec<OutputsConfigError>);

impl std::fmt::Display for OutputsConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for OutputsConfigErrors {}

impl OutputsConfig {
    /// Resolves the preset and checks every line; reports all problems at once.
    pub fn validate(&self) -> Result<Wiring, OutputsConfigErrors> {
        let mut errors = Vec::new();
        let [strobe, siren, trouble] = self.board.lines();
        let mut spec = |line: &'static str, config: Option<&LineConfig>| {
            config.and_then(|c| line_spec(line, c).map_err(|e| errors.push(e)).ok())
        };
        let wiring = Wiring {
            strobe: spec("strobe", self.strobe.as_ref().or(strobe.as_ref())),
            siren: spec("siren", self.siren.as_ref().or(siren.as_ref())),
            trouble: spec("trouble", self.trouble.as_ref().or(trouble.as_ref())),
            button: spec("button", self.button.as_ref().map(|b| b.line()).as_ref()),
        };
        if let Some(button) = &self.button {
            errors.extend(button.timing_errors());
        }
        let named = [
            ("strobe", &wiring.strobe),
            ("siren", &wiring.siren),
            ("trouble", &wiring.trouble),
            ("button", &wiring.button),
        ];
        for (i, (line, a)) in named.iter().enumerate() {
            for (other, b) in &named[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    if a.id == b.id {
                        errors.push(OutputsConfigError::SameLine {
                            line,
                            other,
                            id: a.id.clone(),
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(wiring)
        } else {
            Err(OutputsConfigErrors(errors))
        }
    }
}

fn line_spec(line: &'static str, c: &LineConfig) -> Result<LineSpec, OutputsConfigError> {
    let name = c.name.as_deref().filter(|n| !n.trim().is_empty());
    let id = match (c.offset, name) {
        (Some(_), Some(_)) => return Err(OutputsConfigError::OffsetAndName { line }),
        (None, None) => return Err(OutputsConfigError::NoLine { line }),
        (None, Some(_)) if c.chip.is_some() => {
            return Err(OutputsConfigError::ChipWithName { line })
        }
        (None, Some(name)) => LineId::Name(name.to_string()),
        (Some(offset), None) => {
            let chip = c.chip.as_deref().unwrap_or(DEFAULT_CHIP);
            if !chip.starts_with("/dev/") || chip.len() <= "/dev/".len() {
                return Err(OutputsConfigError::BadChip {
                    line,
                    chip: chip.to_string(),
                });
            }
            LineId::Offset {
                chip: PathBuf::from(chip),
                offset,
            }
        }
    };
    Ok(LineSpec {
        id,
        active_low: c.active_low,
    })
}

/// The `[outputs.button]` section: the line (as for a relay) and the timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ButtonConfig {
    pub chip: Option<String>,
    pub offset: Option<u32>,
    pub name: Option<String>,
    /// Pressed pulls the line low (the usual wiring: button to ground, pull-up).
    pub active_low: bool,
    /// Ask the kernel for the internal pull-up.
    pub pull_up: bool,
    /// How long a level must be stable to count.
    pub debounce_ms: u32,
    /// How long a press must be held to start a lamp test.
    pub long_press_ms: u32,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self {
            chip: None,
            offset: None,
            name: None,
            active_low: true,
            pull_up: true,
            debounce_ms: 30,
            long_press_ms: 3000,
        }
    }
}

impl ButtonConfig {
    pub(crate) fn line(&self) -> LineConfig {
        LineConfig {
            chip: self.chip.clone(),
            offset: self.offset,
            name: self.name.clone(),
            active_low: self.active_low,
        }
    }

    fn timing_errors(&self) -> Vec<OutputsConfigError> {
        [
            ("debounce_ms", self.debounce_ms, 1, 500),
            ("long_press_ms", self.long_press_ms, 1000, 30_000),
        ]
        .into_iter()
        .filter(|(_, value, min, max)| !(min..=max).contains(&value))
        .map(
            |(field, value, min, max)| OutputsConfigError::ButtonTiming {
                field,
                value,
                min,
                max,
            },
        )
        .collect()
    }
}
