//! GPIO lines on Linux through the character device, uAPI v2 (`gpiocdev`), as embedded-hal
//! pins. A line that cannot be opened (no chip, no such line, busy) is an [`OpenError`], which
//! the caller turns into a trouble ([`OpenError::trouble`]); nothing here panics.
//!
//! Polarity is handled by the drivers, not the kernel: the pins here speak physical levels.
//! An output is requested at its de-energised level, so a relay never clicks on at start-up.

use gpiocdev::line::{Bias, Value};
use gpiocdev::request::Builder;

use crate::alarm::Event;
use crate::outputs::button::{Button, Debouncer};
use crate::outputs::config::{ButtonConfig, LineId, LineSpec, Wiring};
use crate::outputs::relays::{Relay, Relays};

pub use gpiocdev_embedded_hal::{InputPin as GpioInput, OutputPin as GpioOutput};

/// The consumer label the kernel shows for our lines (`gpioinfo`).
const CONSUMER: &str = "beacon";

/// A line could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: cannot open {line}: {reason}")]
pub struct OpenError {
    /// `strobe`, `siren`, `trouble` or `button`.
    pub what: &'static str,
    pub line: LineId,
    pub reason: String,
}

impl OpenError {
    /// The trouble to raise for it.
    pub fn trouble(&self) -> Event {
        Event::TroubleRaised {
            component: format!("gpio {}", self.what),
            detail: self.to_string(),
        }
    }
}

/// The OLED's bus could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("display: cannot open {bus}: {reason}")]
pub struct DisplayOpenError {
    pub bus: String,
    pub reason: String,
}

impl DisplayOpenError {
    /// The trouble to raise for it.
    pub fn trouble(&self) -> Event {
        Event::TroubleRaised {
            component: "display".into(),
            detail: self.to_string(),
        }
    }
}

/// Opens the SSD1306 on its I2C bus (linux-embedded-hal's `I2cdev`, embedded-hal 1.0).
pub fn open_display(
    config: &crate::outputs::config::DisplayConfig,
) -> Result<crate::outputs::display::Ssd1306<linux_embedded_hal::I2cdev>, DisplayOpenError> {
    let bus = linux_embedded_hal::I2cdev::new(&config.i2c_bus).map_err(|e| DisplayOpenError {
        bus: config.i2c_bus.clone(),
        reason: e.to_string(),
    })?;
    Ok(crate::outputs::display::Ssd1306::new(bus, config.address))
}

fn request(
    what: &'static str,
    spec: &LineSpec,
    direction: impl FnOnce(&mut Builder) -> &mut Builder,
) -> Result<gpiocdev::Request, OpenError> {
    let error = |reason: String| OpenError {
        what,
        line: spec.id.clone(),
        reason,
    };
    let mut builder = gpiocdev::Request::builder();
    match &spec.id {
        LineId::Offset { chip, offset } => builder.on_chip(chip.as_path()).with_line(*offset),
        LineId::Name(name) => {
            let found = gpiocdev::find_named_line(name)
                .ok_or_else(|| error("no GPIO line has this name".into()))?;
            builder.with_found_line(&found)
        }
    };
    direction(builder.with_consumer(CONSUMER))
        .request()
        .map_err(|e| error(e.to_string()))
}

/// Opens an output line at its de-energised level, and registers how to de-energise it from
/// a panic ([`super::failsafe`]).
pub fn open_output(what: &'static str, spec: &LineSpec) -> Result<GpioOutput, OpenError> {
    let off = Value::from(spec.active_low);
    let req = request(what, spec, |b| b.as_output(off))?;
    register_failsafe(what, &req, spec.active_low);
    GpioOutput::try_from(req).map_err(|e| OpenError {
        what,
        line: spec.id.clone(),
        reason: e.to_string(),
    })
}

/// Registers a duplicate of the line request's descriptor with the fail-safe: one
/// SET_LINE_VALUES ioctl on it drives the line to its de-energised level from any thread,
/// while the driver task keeps owning the request.
fn register_failsafe(what: &'static str, req: &gpiocdev::Request, active_low: bool) {
    use std::os::fd::AsFd;
    let file = match req.as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            tracing::warn!(what, error = %e, "no fail-safe for this output (cannot duplicate its descriptor)");
            return;
        }
    };
    // The kernel sees physical levels (no active-low flag on the request): off is high on an
    // active-low board.
    let off = gpiocdev_uapi::v2::LineValues {
        bits: u64::from(active_low),
        mask: 1,
    };
    super::failsafe::register(what, move || {
        gpiocdev_uapi::v2::set_line_values(&file, &off).map_err(|e| e.to_string())
    });
}

/// Opens an input line, with the internal pull-up if asked.
pub fn open_input(
    what: &'static str,
    spec: &LineSpec,
    pull_up: bool,
) -> Result<GpioInput, OpenError> {
    let bias = pull_up.then_some(Bias::PullUp);
    let req = request(what, spec, |b| b.as_input().with_bias(bias))?;
    GpioInput::try_from(req).map_err(|e| OpenError {
        what,
        line: spec.id.clone(),
        reason: e.to_string(),
    })
}

/// Opens every wired relay line. A line that fails is left out (not driven) and its error
/// returned, so the others still work and the caller can raise a trouble for it.
pub fn open_relays(wiring: &Wiring) -> (Relays<GpioOutput>, Vec<OpenError>) {
    let mut errors = Vec::new();
    let mut open = |what, spec: &Option<LineSpec>| {
        let spec = spec.as_ref()?;
        match open_output(what, spec) {
            Ok(pin) => Some(Relay::new(pin, spec.active_low)),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    };
    let relays = Relays::new(
        open("strobe", &wiring.strobe),
        open("siren", &wiring.siren),
        open("trouble", &wiring.trouble),
    );
    (relays, errors)
}

/// Opens the button, if one is wired.
pub fn open_button(
    wiring: &Wiring,
    config: &ButtonConfig,
) -> Result<Option<Button<GpioInput>>, OpenError> {
    let Some(spec) = &wiring.button else {
        return Ok(None);
    };
    let pin = open_input("button", spec, config.pull_up)?;
    Ok(Some(Button::new(
        pin,
        spec.active_low,
        Debouncer::from_config(config),
    )))
}
