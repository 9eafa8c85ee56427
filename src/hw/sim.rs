//! In-memory pins whose state is shared: a clone observes (or, for an input, drives) the same
//! line. Tests read the lamps and press the button through them; so can the web page when the
//! appliance runs without GPIO. [`NoBus`] is the display bus with nothing on it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};

use crate::outputs::relays::{Relay, Relays};

/// A simulated pin refused the operation ([`SimOutput::fail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("simulated pin failure")]
pub struct SimError;

impl embedded_hal::digital::Error for SimError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// A simulated output line driving a lamp or relay of the given polarity.
#[derive(Debug, Clone, Default)]
pub struct SimOutput {
    high: Arc<AtomicBool>,
    writes: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    /// When the lamp last went from off to on (the write that energised it).
    switched_on: Arc<Mutex<Option<Instant>>>,
    active_low: bool,
}

impl SimOutput {
    /// A line whose relay is energised when the pin is low if `active_low`; it starts
    /// de-energised.
    pub fn new(active_low: bool) -> Self {
        Self {
            high: Arc::new(AtomicBool::new(active_low)),
            active_low,
            ..Self::default()
        }
    }

    /// The pin level.
    pub fn is_high(&self) -> bool {
        self.high.load(Ordering::SeqCst)
    }

    /// Whether the lamp or relay is on (polarity applied).
    pub fn is_on(&self) -> bool {
        self.is_high() != self.active_low
    }

    /// When the lamp last went from off to on: the moment of the driver's write, for latency
    /// figures that do not depend on how often someone looks.
    pub fn switched_on_at(&self) -> Option<Instant> {
        self.switched_on.lock().ok().and_then(|at| *at)
    }

    /// How many times the pin was written.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Makes every following write fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn set(&mut self, high: bool) -> Result<(), SimError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SimError);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        let was_on = self.is_on();
        self.high.store(high, Ordering::SeqCst);
        if self.is_on() && !was_on {
            if let Ok(mut at) = self.switched_on.lock() {
                *at = Some(Instant::now());
            }
        }
        Ok(())
    }
}

impl ErrorType for SimOutput {
    type Error = SimError;
}

impl OutputPin for SimOutput {
    fn set_low(&mut self) -> Result<(), SimError> {
        self.set(false)
    }

    fn set_high(&mut self) -> Result<(), SimError> {
        self.set(true)
    }
}

/// A simulated button input.
#[derive(Debug, Clone, Default)]
pub struct SimInput {
    high: Arc<AtomicBool>,
    active_low: bool,
}

impl SimInput {
    /// A button that pulls the line low when pressed if `active_low`; it starts released.
    pub fn new(active_low: bool) -> Self {
        Self {
            high: Arc::new(AtomicBool::new(active_low)),
            active_low,
        }
    }

    /// Holds the button down.
    pub fn press(&self) {
        self.high.store(!self.active_low, Ordering::SeqCst);
    }

    /// Lets the button go.
    pub fn release(&self) {
        self.high.store(self.active_low, Ordering::SeqCst);
    }
}

impl ErrorType for SimInput {
    type Error = SimError;
}

impl InputPin for SimInput {
    fn is_high(&mut self) -> Result<bool, SimError> {
        Ok(self.high.load(Ordering::SeqCst))
    }

    fn is_low(&mut self) -> Result<bool, SimError> {
        self.is_high().map(|high| !high)
    }
}

/// The simulated lamps: clones of the pins inside the [`Relays`] from [`relays`].
#[derive(Debug, Clone)]
pub struct SimLamps {
    pub strobe: SimOutput,
    pub siren: SimOutput,
    pub trouble: SimOutput,
}

/// Three simulated relays of one polarity, and handles to watch them.
pub fn relays(active_low: bool) -> (Relays<SimOutput>, SimLamps) {
    let lamps = SimLamps {
        strobe: SimOutput::new(active_low),
        siren: SimOutput::new(active_low),
        trouble: SimOutput::new(active_low),
    };
    let relay = |pin: &SimOutput| Some(Relay::new(pin.clone(), active_low));
    let relays = Relays::new(
        relay(&lamps.strobe),
        relay(&lamps.siren),
        relay(&lamps.trouble),
    );
    (relays, lamps)
}

/// An I2C bus with nothing on it: every transaction succeeds and goes nowhere. For an
/// appliance that mirrors its display to the web page only (`beacon demo`, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBus;

impl embedded_hal::i2c::ErrorType for NoBus {
    type Error = std::convert::Infallible;
}

impl embedded_hal::i2c::I2c for NoBus {
    fn transaction(
        &mut self,
        _address: u8,
        _operations: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_on_time_is_the_write_that_energised_the_lamp() {
        let mut line = SimOutput::new(true); // active-low: on when low
        let watcher = line.clone();
        assert_eq!(watcher.switched_on_at(), None);
        let before = Instant::now();
        line.set_low().unwrap();
        let on = watcher.switched_on_at().expect("switched on");
        assert!(on >= before);
        // Writing "on" again is no new switch; off and on again is.
        line.set_low().unwrap();
        assert_eq!(watcher.switched_on_at(), Some(on));
        line.set_high().unwrap();
        line.set_low().unwrap();
        assert!(watcher.switched_on_at() > Some(on));
    }
}
