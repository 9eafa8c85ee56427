//! The acknowledge button: a pure debouncer and press classifier ([`Debouncer`], time passed
//! in), a poller over any [`embedded_hal::digital::InputPin`] ([`Button`]), and the task that
//! turns presses into alarm events ([`run`]).
//!
//! * A short press (released before `long_press_ms`) acknowledges, on release.
//! * A press held for `long_press_ms` acts at that moment, while still held, and the release
//!   that follows does nothing: while a possible emergency is active (acknowledged or not) it
//!   confirms it — the full alarm — and otherwise it starts a lamp test. A lamp test is refused
//!   while a call is active, so the hold has one meaning at a time, and it cannot be mistaken
//!   for the short press that acknowledges.
//! * A level must be stable for `debounce_ms` before it counts: shorter bounces and glitches
//!   are ignored, and a glitch inside a long press does not split it.
//! * A button already held when polling starts (or one wired with the wrong polarity, which
//!   reads as held forever) does nothing until it has been seen released.

use std::time::{Duration, Instant};

use embedded_hal::digital::InputPin;

use super::config::ButtonConfig;
use crate::alarm::{Event, Source};
use crate::alarm_task::AlarmHandle;

/// What a press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    /// Short press.
    Acknowledge,
    /// Long press.
    Hold,
}

impl ButtonAction {
    /// The alarm event for this action; `possible_active` says whether a possible call is
    /// active (then a hold confirms it instead of starting a lamp test).
    pub fn event(self, possible_active: bool) -> Event {
        match self {
            ButtonAction::Acknowledge => Event::Acknowledge {
                source: Source::Button,
                who: None,
            },
            ButtonAction::Hold if possible_active => Event::Confirm {
                key: None,
                source: Source::Button,
                who: None,
                detail: Some("the button was held".into()),
            },
            ButtonAction::Hold => Event::LampTest {
                on: true,
                source: Source::Button,
                who: None,
            },
        }
    }
}

/// Debounces a pressed/released signal and classifies presses. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce: Duration,
    long_press: Duration,
    /// The accepted level: `None` until the first level was stable, then pressed or not.
    stable: Option<bool>,
    /// A different level and when it was first seen.
    candidate: Option<(bool, Instant)>,
    /// Presses count only after the button was seen released.
    armed: bool,
    /// When the current press began, and whether it already started a lamp test.
    press: Option<(Instant, bool)>,
}

impl Debouncer {
    pub fn new(debounce: Duration, long_press: Duration) -> Self {
        Self {
            debounce,
            long_press,
            stable: None,
            candidate: None,
            armed: false,
            press: None,
        }
    }

    /// With the timing of `config`.
    pub fn from_config(config: &ButtonConfig) -> Self {
        Self::new(
            Duration::from_millis(config.debounce_ms.into()),
            Duration::from_millis(config.long_press_ms.into()),
        )
    }

    /// Feeds the raw state (`pressed`, polarity already applied) seen at `now`.
    pub fn update(&mut self, pressed: bool, now: Instant) -> Option<ButtonAction> {
        if self.stable == Some(pressed) {
            self.candidate = None;
        } else {
            let since = match self.candidate {
                Some((level, since)) if level == pressed => since,
                _ => {
                    self.candidate = Some((pressed, now));
                    now
                }
            };
            if now.saturating_duration_since(since) >= self.debounce {
                self.candidate = None;
                self.stable = Some(pressed);
                return self.changed(pressed, since);
            }
        }
        self.long_press_due(now)
    }

    fn changed(&mut self, pressed: bool, at: Instant) -> Option<ButtonAction> {
        if !pressed {
            self.armed = true;
            let (_, long) = self.press.take()?;
            return (!long).then_some(ButtonAction::Acknowledge);
        }
        if self.armed {
            self.press = Some((at, false));
        }
        self.long_press_due(at)
    }

    fn long_press_due(&mut self, now: Instant) -> Option<ButtonAction> {
        let (start, long) = self.press.as_mut()?;
        if *long || now.saturating_duration_since(*start) < self.long_press {
            return None;
        }
        *long = true;
        Some(ButtonAction::Hold)
    }
}

/// A button on an input pin, polled.
#[derive(Debug)]
pub struct Button<I> {
    pin: I,
    active_low: bool,
    debouncer: Debouncer,
}

impl<I: InputPin> Button<I> {
    pub fn new(pin: I, active_low: bool, debouncer: Debouncer) -> Self {
        Self {
            pin,
            active_low,
            debouncer,
        }
    }

    /// Reads the pin once and feeds the debouncer.
    pub fn poll(&mut self, now: Instant) -> Result<Option<ButtonAction>, I::Error> {
        let pressed = self.pin.is_low()? == self.active_low;
        Ok(self.debouncer.update(pressed, now))
    }
}

/// Polls `button` every `every` (10 ms is plenty) and sends its actions to the alarm. A read
/// error is logged once until it changes; polling goes on.
pub async fn run<I>(mut button: Button<I>, alarm: AlarmHandle, every: Duration)
where
    I: InputPin,
    I::Error: std::fmt::Debug,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error = None;
    loop {
        ticks.tick().await;
        match button.poll(Instant::now()) {
            Ok(action) => {
                last_error = None;
                if let Some(action) = action {
                    tracing::info!(?action, "button");
                    let possible_active = alarm
                        .view()
                        .borrow()
                        .display
                        .calls
                        .iter()
                        .any(|c| c.summary.is_possible);
                    alarm.send(action.event(possible_active)).await;
                }
            }
            Err(e) => {
                let e = format!("{e:?}");
                if last_error.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "cannot read the button");
                }
                last_error = Some(e);
            }
        }
    }
}
