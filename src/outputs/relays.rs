//! The strobe, siren and trouble relays: an [`OutputState`] turned into pin levels.
//!
//! [`level`] is the pure core: whether an output is energised a given time after its pattern
//! started. [`Relays`] drives up to three [`embedded_hal::digital::OutputPin`]s (GPIO on the
//! appliance, [`crate::hw::sim`] pins in tests and on the web page), writes a pin only when its
//! level changes, and knows each line's polarity. [`run`] follows the alarm's view.
//!
//! Fail-safe: de-energised means off. [`Relays::safe`] drives every line to its inactive
//! level; call it at boot, and [`run`] calls it when the view channel closes or its task is
//! dropped (runtime shutdown, or a panic unwinding through the task).
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
use std::time::{Duration, Instant};

use embedded_hal::digital::OutputPin;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::button::ButtonConfig;
use crate::alarm::{Output, OutputState, MIN_FLASH_PERIOD_MS};
use crate::alarm_service::AlarmView;

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

/// Whether `output` is energised `elapsed` after its pattern started. A flashing output is
/// on for the first half of each period and off for the second; a period shorter than
/// [`MIN_FLASH_PERIOD_MS`] is raised to it.
pub fn level(output: Output, elapsed: Duration) -> bool {
    match output {
        Output::Off => false,
        Output::Steady => true,
        Output::Flashing { period_ms } => {
            let period = u128::from(period_ms.max(MIN_FLASH_PERIOD_MS));
            elapsed.as_millis() % period < period / 2
        }
    }
}

/// When a flashing `output` that started at `since` next changes level after `now`.
fn next_flip(output: Output, since: Instant, now: Instant) -> Option<Instant> {
    let Output::Flashing { period_ms } = output else {
        return None;
    };
    let period = u64::from(period_ms.max(MIN_FLASH_PERIOD_MS));
    let elapsed = u64::try_from(now.saturating_duration_since(since).as_millis()).ok()?;
    let start = elapsed - elapsed % period;
    let flip = if elapsed - start < period / 2 {
        start + period / 2
    } else {
        start + period
    };
    Some(since + Duration::from_millis(flip))
}

/// One relay line: a pin, its polarity, and what it is doing.
#[derive(Debug)]
pub struct Relay<P> {
    pin: P,
    active_low: bool,
    /// The level last written successfully; `None`: unknown (never written, or it failed).
    energised: Option<bool>,
    output: Output,
    since: Option<Instant>,
}

impl<P: OutputPin> Relay<P> {
    /// A relay on `pin`; nothing is written until [`Relays::safe`] or [`Relays::apply`].
    pub fn new(pin: P, active_low: bool) -> Self {
        Self {
            pin,
            active_low,
            energised: None,
            output: Output::Off,
            since: None,
        }
    }

    /// Whether the relay is energised, as last written; `None` if unknown.
    pub fn energised(&self) -> Option<bool> {
        self.energised
    }

    fn write(&mut self, on: bool) -> Result<(), P::Error> {
        let high = on != self.active_low;
        let result = if high {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        self.energised = result.is_ok().then_some(on);
        result
    }

    fn follow(&mut self, output: Output, now: Instant) -> Result<(), P::Error> {
        if output != self.output || self.since.is_none() {
            self.output = output;
            self.since = Some(now);
        }
        let elapsed = now.saturating_duration_since(self.since.unwrap_or(now));
        let on = level(output, elapsed);
        if self.energised == Some(on) {
            return Ok(());
        }
        self.write(on)
    }
}

/// Which relay line an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Line {
    Strobe,
    Siren,
    Trouble,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Line::Strobe => "strobe",
            Line::Siren => "siren",
            Line::Trouble => "trouble",
        })
    }
}

/// A pin refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line} relay: {source:?}")]
pub struct RelayError<E: std::fmt::Debug> {
    pub line: Line,
    pub source: E,
}

/// The strobe, siren and trouble relays; a line may be absent (not wired).
#[derive(Debug)]
pub struct Relays<P> {
    strobe: Option<Relay<P>>,
    siren: Option<Relay<P>>,
    trouble: Option<Relay<P>>,
}

impl<P: OutputPin> Relays<P> {
    pub fn new(
        strobe: Option<Relay<P>>,
        siren: Option<Relay<P>>,
        trouble: Option<Relay<P>>,
    ) -> Self {
        Self {
            strobe,
            siren,
            trouble,
        }
    }

    fn lines(&mut self) -> [(Line, Option<&mut Relay<P>>); 3] {
        [
            (Line::Strobe, self.strobe.as_mut()),
            (Line::Siren, self.siren.as_mut()),
            (Line::Trouble, self.trouble.as_mut()),
        ]
    }

    /// Runs `f` on every wired line; every line is tried, the first error is returned.
    fn each(
        &mut self,
        mut f: impl FnMut(Line, &mut Relay<P>) -> Result<(), P::Error>,
    ) -> Result<(), RelayError<P::Error>> {
        let mut first = None;
        for (line, relay) in self.lines() {
            if let Some(Err(source)) = relay.map(|r| f(line, r)) {
                first.get_or_insert(RelayError { line, source });
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Sets every line to what `state` asks for at `now`; a pin is written only when its level
    /// changes. A changed output (e.g. steady to flashing) starts its pattern at `now`.
    pub fn apply(&mut self, state: &OutputState, now: Instant) -> Result<(), RelayError<P::Error>> {
        self.each(|line, relay| {
            let output = match line {
                Line::Strobe => state.strobe,
                Line::Siren => state.siren,
                Line::Trouble => state.trouble,
            };
            relay.follow(output, now)
        })
    }

    /// De-energises every line (inactive level, respecting polarity), writing every pin even
    /// if it is believed to be off already.
    pub fn safe(&mut self) -> Result<(), RelayError<P::Error>> {
        self.each(|_, relay| {
            relay.output = Output::Off;
            relay.since = None;
            relay.write(false)
        })
    }

    /// When the next flash edge after `now` is due; `None` when nothing flashes.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.wired()
            .into_iter()
            .filter_map(|r| r.and_then(|r| next_flip(r.output, r.since?, now)))
            .min()
    }

    /// Whether each line is energised, as last written: `[strobe, siren, trouble]`.
    pub fn energised(&self) -> [Option<bool>; 3] {
        self.wired().map(|r| r.and_then(|r| r.energised))
    }

    fn wired(&self) -> [Option<&Relay<P>>; 3] {
        [&self.strobe, &self.siren, &self.trouble].map(Option::as_ref)
    }
}

/// Puts the relays in the safe state when dropped: at the end of [`run`], and when its task
/// is dropped or a panic unwinds through it.
struct SafeOnDrop<P: OutputPin>(Relays<P>);

impl<P: OutputPin> Drop for SafeOnDrop<P> {
    fn drop(&mut self) {
        if let Err(e) = self.0.safe() {
            tracing::error!(error = %e, "cannot de-energise the outputs");
        }
    }
}

/// Follows the alarm's view: applies its `outputs` whenever it changes and at every flash
/// edge; de-energises everything when the channel closes. A pin error is logged (once until
/// it changes) and the write retried at the next change or edge.
pub async fn run<P>(mut view: watch::Receiver<AlarmView>, relays: Relays<P>)
where
    P: OutputPin,
    P::Error: std::fmt::Debug,
{
    let mut relays = SafeOnDrop(relays);
    let mut last_error: Option<String> = None;
    loop {
        let outputs = view.borrow_and_update().outputs;
        let now = Instant::now();
        let result = relays.0.apply(&outputs, now);
        let error = result.err().map(|e| e.to_string());
        if error.is_some() && error != last_error {
            tracing::error!(error = error.as_deref().unwrap_or_default(), "output relay");
        }
        last_error = error;
        let edge = relays.0.next_change(now);
        let retry = last_error.as_ref().map(|_| now + Duration::from_secs(1));
        let wake = edge.into_iter().chain(retry).min();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = sleep => {}
        }
    }
}
