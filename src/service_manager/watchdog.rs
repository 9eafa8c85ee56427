//! The service watchdog: systemd restarts Beacon unless it hears `WATCHDOG=1` within
//! `WatchdogSec=`, and Beacon pings only while its pipeline turns — the Event Hub consumer
//! thread's poll loop has beaten recently ([`ConsumerStatus::last_beat`], set every turn,
//! even when idle) and the alarm task answers an [`Event::Tick`] within a deadline. A stuck
//! consumer or a dead or wedged alarm task therefore ends in a restart (the unacknowledged
//! alarm and the uncommitted records come back from the store and the hub).
//!
//! [`judge`] is the decision, pure (time passed in); [`run`] is the loop around it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alarm::Event;
use crate::alarm_task::AlarmHandle;
use crate::eventhub::consumer::ConsumerStatus;

use super::SystemdNotifier;

/// Upper bound on how long the alarm task may take to answer a tick.
const MAX_ALARM_ANSWER: Duration = Duration::from_secs(5);

/// How stale the signs of life may be, derived from the watchdog interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How often the loop checks (and, when all is well, pings).
    pub period: Duration,
    /// The consumer's last beat may be at most this old.
    pub consumer_stall: Duration,
    /// The alarm task must answer a tick within this.
    pub alarm_answer: Duration,
}

impl Limits {
    /// Checks four times per interval; the consumer may be silent for half of it; the alarm
    /// gets a quarter (at most `MAX_ALARM_ANSWER`). A stall is thus reported to systemd (by
    /// silence) within one interval and a half at worst.
    pub fn for_interval(interval: Duration) -> Limits {
        Limits {
            period: interval / 4,
            consumer_stall: interval / 2,
            alarm_answer: (interval / 4).min(MAX_ALARM_ANSWER),
        }
    }
}

/// What asking the alarm task for a tick gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmProbe {
    /// It handled the tick in time.
    Answered,
    /// No answer within the deadline.
    NoAnswer,
    /// The task has ended.
    Gone,
}

/// Whether to feed the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Turning,
    Stuck(Stall),
}

/// Why the pipeline counts as stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stall {
    #[error("the Event Hub consumer has not polled for {0:?}")]
    ConsumerSilent(Duration),
    #[error("the alarm task did not answer in time")]
    AlarmNoAnswer,
    #[error("the alarm task has ended")]
    AlarmGone,
}

/// The decision. `started` stands in for the consumer's first beat until there is one.
pub fn judge(
    now: Instant,
    started: Instant,
    consumer_beat: Option<Instant>,
    alarm: AlarmProbe,
    limits: &Limits,
) -> Verdict {
    let silent = now.saturating_duration_since(consumer_beat.unwrap_or(started));
    if silent > limits.consumer_stall {
        return Verdict::Stuck(Stall::ConsumerSilent(silent));
    }
    match alarm {
        AlarmProbe::Answered => Verdict::Turning,
        AlarmProbe::NoAnswer => Verdict::Stuck(Stall::AlarmNoAnswer),
        AlarmProbe::Gone => Verdict::Stuck(Stall::AlarmGone),
    }
}

/// Sends the alarm task a tick and waits at most `deadline` for it to be handled.
pub async fn probe_alarm(alarm: &AlarmHandle, deadline: Duration) -> AlarmProbe {
    // The view's sender lives in the alarm task: a closed channel means the task ended (and
    // `send` would then return at once, as if answered).
    if alarm.view().has_changed().is_err() {
        return AlarmProbe::Gone;
    }
    match tokio::time::timeout(deadline, alarm.send(Event::Tick)).await {
        Err(_) => AlarmProbe::NoAnswer,
        Ok(_) if alarm.view().has_changed().is_err() => AlarmProbe::Gone,
        Ok(_) => AlarmProbe::Answered,
    }
}

/// Checks every `limits.period` and pings while the pipeline turns. Says once in the log and
/// in `systemctl status` when it stops pinging, and when it resumes.
pub async fn run(
    notifier: SystemdNotifier,
    limits: Limits,
    consumer: Arc<ConsumerStatus>,
    alarm: AlarmHandle,
) {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(limits.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stuck = false;
    loop {
        ticks.tick().await;
        let probe = probe_alarm(&alarm, limits.alarm_answer).await;
        let now = Instant::now();
        // No consumer runs on an appliance not set up yet: nothing there can stall.
        let beat = if consumer.running.load(std::sync::atomic::Ordering::Relaxed) {
            consumer.last_beat()
        } else {
            Some(now)
        };
        match judge(now, started, beat, probe, &limits) {
            Verdict::Turning => {
                notifier.watchdog();
                if stuck {
                    stuck = false;
                    tracing::warn!("the pipeline turns again: feeding the watchdog");
                    notifier.status("running");
                }
            }
            Verdict::Stuck(stall) => {
                if !stuck {
                    stuck = true;
                    tracing::error!(%stall, "pipeline stuck: no longer feeding the watchdog (systemd restarts the service)");
                    notifier.status(&format!("stuck: {stall}"));
                }
            }
        }
    }
}

/// The running watchdog loop, if systemd asked for one.
pub struct Watchdog {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts [`run`] when `$WATCHDOG_USEC` applies to this process; otherwise nothing runs.
    pub fn spawn_from_env(
        notifier: &SystemdNotifier,
        consumer: Arc<ConsumerStatus>,
        alarm: &AlarmHandle,
    ) -> Watchdog {
        let task = super::watchdog_interval_from_env()
            .filter(|_| notifier.is_active())
            .map(|interval| {
                tracing::info!(?interval, "feeding the systemd watchdog");
                tokio::spawn(run(
                    notifier.clone(),
                    Limits::for_interval(interval),
                    consumer,
                    alarm.clone(),
                ))
            });
        Watchdog { task }
    }

    /// Ends the loop (and drops its alarm handle, so the alarm task can end).
    pub async fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            let _ = task.await;
        }
    }
}
