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
//! The `[outputs]` section that says which lines these are is in [`super::config`].

use std::time::{Duration, Instant};

use embedded_hal::digital::OutputPin;
use tokio::sync::watch;

use crate::alarm::{Output, OutputState, MIN_FLASH_PERIOD_MS};
use crate::alarm_task::AlarmView;

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
