//! Alarm properties over random configs and random event sequences with random time advances
//! (including restarts through the persisted state): what a guard would notice if broken.
//! Calls are real, test or possible; possible ones are confirmed by guards and by a later real
//! report of the same key.

use std::collections::{BTreeMap, BTreeSet};

use beacon::alarm::{
    AcknowledgedStrobe, ActiveCall, Alarm, AlarmConfig, AlarmState, AuditAction, CallLevel,
    CallSummary, DisplayMode, Effect, Event, Output, OutputPattern, PersistedState, Refusal,
    Source, MIN_FLASH_PERIOD_MS,
};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Raise { key: u8, level: CallLevel },
    Update { key: u8, level: CallLevel },
    Ack(Source),
    Confirm(Source),
    Clear(Source),
    Silence(Source),
    Tick,
    TroubleUp(u8),
    TroubleDown(u8),
    Lamp(bool),
    Restart,
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Button), Just(Source::Web), Just(Source::Mqtt)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, level()).prop_map(|(key, level)| Op::Raise { key, level }),
        1 => (0u8..6, level()).prop_map(|(key, level)| Op::Update { key, level }),
        2 => source().prop_map(Op::Ack),
        1 => source().prop_map(Op::Confirm),
        2 => source().prop_map(Op::Clear),
        1 => source().prop_map(Op::Silence),
        3 => Just(Op::Tick),
        1 => (0u8..3).prop_map(Op::TroubleUp),
        1 => (0u8..3).prop_map(Op::TroubleDown),
        1 => any::<bool>().prop_map(Op::Lamp),
        1 => Just(Op::Restart),
    ]
}

fn level() -> impl Strategy<Value = CallLevel> {
    prop_oneof![
        Just(CallLevel::Emergency),
        Just(CallLevel::Test),
        Just(CallLevel::Possible)
    ]
}

fn minutes() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(0u32..4)
}

fn config() -> impl Strategy<Value = AlarmConfig> {
    (
        (minutes(), minutes(), minutes()),
        (0u32..1200, 0u32..1200, 0u32..1200),
        (any::<bool>(), any::<bool>(), 0u32..8),
        (0u32..1200, 0u32..8),
    )
        .prop_map(
            |(
                (silence, clear, escalate),
                (real, test, trouble),
                (test_siren, ack_off, lamp),
                (possible, burst),
            )| {
                AlarmConfig {
                    siren_auto_silence_minutes: silence,
                    auto_clear_minutes: clear,
                    escalate_after_minutes: escalate,
                    real_flash_period_ms: real,
                    test_flash_period_ms: test,
                    trouble_flash_period_ms: trouble,
                    test_sounds_siren: test_siren,
                    acknowledged_strobe: if ack_off {
                        AcknowledgedStrobe::Off
                    } else {
                        AcknowledgedStrobe::Steady
                    },
                    lamp_test_seconds: lamp,
                    possible_flash_period_ms: possible,
                    possible_siren_seconds: burst,
                }
            },
        )
}

/// Steps: an op and how many seconds pass before it (up to four minutes, so every timer of
/// 1–3 minutes both fires and is beaten by events).
fn steps() -> impl Strategy<Value = Vec<(Op, i64)>> {
    proptest::collection::vec((op(), 0i64..240), 1..80)
}

fn summary(key: u8, level: CallLevel) -> CallSummary {
    let is_test = level == CallLevel::Test;
    CallSummary {
        caller_name: Some(format!("caller {key}")),
        location: Some(format!("room {key}")),
        dial_string: Some(if is_test { "933" } else { "911" }.into()),
        callback_number: None,
        is_test,
        is_possible: level == CallLevel::Possible,
        message: Some(format!("message {key}")),
    }
}

fn event(op: &Op) -> Event {
    match op {
        Op::Raise { key, level } => Event::CallRaised {
            key: format!("k{key}"),
            summary: summary(*key, *level),
        },
        Op::Update { key, level } => Event::CallUpdated {
            key: format!("k{key}"),
            summary: CallSummary {
                location: Some("moved".into()),
                ..summary(*key, *level)
            },
        },
        Op::Confirm(source) => Event::Confirm {
            key: None,
            source: *source,
            who: Some("guard".into()),
            detail: None,
        },
        Op::Ack(source) => Event::Acknowledge {
            source: *source,
            who: Some("guard".into()),
        },
        Op::Clear(source) => Event::Clear {
            source: *source,
            who: None,
        },
        Op::Silence(source) => Event::Silence {
            source: *source,
            who: None,
        },
        Op::Tick | Op::Restart => Event::Tick,
        Op::TroubleUp(c) => Event::TroubleRaised {
            component: format!("c{c}"),
            detail: "down".into(),
        },
        Op::TroubleDown(c) => Event::TroubleCleared {
            component: format!("c{c}"),
        },
        Op::Lamp(on) => Event::LampTest {
            on: *on,
            source: Source::Button,
            who: None,
        },
    }
}

fn minutes_of(value: Option<u32>) -> Option<Duration> {
    value
        .filter(|m| *m > 0)
        .map(|m| Duration::minutes(i64::from(m)))
}

/// What the test itself remembers about the run, from the effects alone.
struct Model {
    config: AlarmConfig,
    raised: BTreeSet<String>,
    /// Keys raised as possible and never confirmed: the only ones that may be upgraded.
    possible: BTreeSet<String>,
    /// Escalations in the current alerting episode.
    escalations: u32,
    /// When the siren last (re)started and whether it was silenced since.
    siren_since: DateTime<Utc>,
    silenced: bool,
    /// The siren burst of the last possible call sounds until then.
    burst_until: Option<DateTime<Utc>>,
}

/// The unacknowledged active calls: key → (waiting since, level).
fn unacked(alarm: &Alarm) -> BTreeMap<String, (DateTime<Utc>, CallLevel)> {
    alarm
        .active_calls()
        .into_iter()
        .filter(|c| c.acknowledged.is_none())
        .map(|c| {
            (
                c.key.clone(),
                (ActiveCall::waiting_since(c), c.summary.level()),
            )
        })
        .collect()
}

fn restart(alarm: &Alarm, config: &AlarmConfig, now: DateTime<Utc>) -> (Alarm, Vec<Effect>) {
    let text = serde_json::to_string(&alarm.snapshot()).expect("serialises");
    let stored: PersistedState = serde_json::from_str(&text).expect("deserialises");
    Alarm::restore(config.clone(), stored, now)
}

fn check_flash(out: Output) -> Result<(), TestCaseError> {
    if let Output::Flashing { period_ms } = out {
        prop_assert!(period_ms >= MIN_FLASH_PERIOD_MS, "flash {period_ms} ms");
    }
    Ok(())
}

impl Model {
    /// Checks one step's effects in order and updates the model.
    fn effects(
        &mut self,
        op: &Op,
        effects: &[Effect],
        before: &BTreeMap<String, (DateTime<Utc>, CallLevel)>,
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        let escalate_after = minutes_of(self.config.escalate_after_minutes);
        for effect in effects {
            match effect {
                Effect::Audit(r) => match r.action {
                    AuditAction::CallRaised => {
                        let key = r.keys.first().cloned().unwrap_or_default();
                        let Op::Raise { level, .. } = op else {
                            return Err(TestCaseError::fail("raised without a raise"));
                        };
                        if !self.raised.insert(key.clone()) {
                            // Only a possible key, cleared, upgraded by a real report.
                            prop_assert!(self.possible.remove(&key), "{key} raised twice");
                            prop_assert_eq!(*level, CallLevel::Emergency);
                        } else if *level == CallLevel::Possible {
                            self.possible.insert(key.clone());
                        }
                        let resounds = match level {
                            CallLevel::Emergency => true,
                            CallLevel::Possible => false,
                            CallLevel::Test => self.config.test_sounds_siren,
                        };
                        if r.from != AlarmState::Alerting {
                            self.escalations = 0;
                            self.siren_since = now;
                            self.silenced = false;
                            self.burst_until = None;
                        } else if resounds {
                            self.siren_since = now;
                            self.silenced = false;
                        }
                        if *level == CallLevel::Possible {
                            let burst = self.config.possible_siren_seconds.min(60);
                            self.burst_until =
                                (burst > 0).then(|| now + Duration::seconds(i64::from(burst)));
                        }
                    }
                    AuditAction::Confirmed => {
                        prop_assert!(!r.keys.is_empty());
                        for key in &r.keys {
                            prop_assert!(self.possible.remove(key), "{key} was not possible");
                        }
                        if r.from != AlarmState::Alerting {
                            self.escalations = 0;
                            self.burst_until = None;
                        }
                        self.siren_since = now;
                        self.silenced = false;
                        prop_assert_eq!(r.to, AlarmState::Alerting, "confirmed is alerting");
                    }
                    AuditAction::Silenced => {
                        self.silenced = true;
                        self.burst_until = None;
                    }
                    AuditAction::Acknowledged => self.burst_until = None,
                    AuditAction::AutoSilenced => {
                        let after = minutes_of(self.config.siren_auto_silence_minutes);
                        prop_assert!(after.is_some_and(|d| now >= self.siren_since + d));
                        self.silenced = true;
                    }
                    AuditAction::Escalated => {
                        self.escalations += 1;
                        prop_assert!(self.escalations <= 1, "escalated twice in one episode");
                    }
                    AuditAction::Cleared | AuditAction::AutoCleared => {
                        prop_assert_eq!(r.from, AlarmState::Acknowledged, "cleared without ack");
                        self.burst_until = None;
                    }
                    _ => {}
                },
                Effect::Escalate { keys, since } => {
                    let after = escalate_after.expect("escalation only when configured");
                    prop_assert!(now >= *since + after, "escalated early");
                    let expected: BTreeSet<&String> = before
                        .iter()
                        .filter(|(_, (_, level))| *level != CallLevel::Test)
                        .map(|(k, _)| k)
                        .collect();
                    prop_assert_eq!(keys.iter().collect::<BTreeSet<_>>(), expected);
                    let earliest = before
                        .values()
                        .filter(|(_, level)| *level != CallLevel::Test)
                        .map(|(at, _)| *at)
                        .min();
                    prop_assert_eq!(Some(*since), earliest);
                }
                Effect::Refused(Refusal::DuplicateCall { key }) => {
                    prop_assert!(self.raised.contains(key), "{key} refused but never raised");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks what a guard would see after the step.
    fn observe(&self, alarm: &Alarm, now: DateTime<Utc>) -> Result<(), TestCaseError> {
        let out = alarm.outputs(now);
        for o in [out.strobe, out.siren, out.trouble] {
            check_flash(o)?;
        }
        let open = unacked(alarm);
        let view = alarm.display(now);
        if alarm.state() == AlarmState::Alerting {
            // Whatever troubles exist, the alarm pattern shows: the most urgent level's.
            let most_urgent = open.values().map(|(_, level)| *level).min();
            let (expected, period) = match most_urgent {
                Some(CallLevel::Emergency) => {
                    (OutputPattern::Alarm, self.config.real_flash_period_ms)
                }
                Some(CallLevel::Possible) => (
                    OutputPattern::Possible,
                    self.config.possible_flash_period_ms,
                ),
                _ => (OutputPattern::Test, self.config.test_flash_period_ms),
            };
            prop_assert_eq!(out.pattern, expected);
            prop_assert_eq!(out.strobe, Output::flashing(period), "strobe pattern");
            prop_assert!(
                matches!(out.strobe, Output::Flashing { .. }),
                "strobe {:?}",
                out.strobe
            );
            prop_assert!(matches!(
                view.mode,
                DisplayMode::Alarm | DisplayMode::Possible | DisplayMode::Test
            ));
            let active = alarm.active_calls();
            let levels: BTreeSet<CallLevel> = active.iter().map(|c| c.summary.level()).collect();
            if !levels.contains(&CallLevel::Emergency) {
                let headline = if levels.contains(&CallLevel::Possible) {
                    "POSSIBLE EMERGENCY — CHECK TEAMS"
                } else {
                    "THIS IS A TEST"
                };
                prop_assert_eq!(view.headline.as_str(), headline);
            }
            let wanted = open.values().any(|(_, level)| match level {
                CallLevel::Emergency => true,
                CallLevel::Possible => false,
                CallLevel::Test => self.config.test_sounds_siren,
            });
            let timed_out = minutes_of(self.config.siren_auto_silence_minutes)
                .is_some_and(|d| now >= self.siren_since + d);
            let sounding = wanted && !self.silenced && !timed_out;
            let burst = self.burst_until.is_some_and(|until| until > now)
                && open
                    .values()
                    .any(|(_, level)| *level == CallLevel::Possible);
            prop_assert_eq!(out.siren.is_on(), sounding || burst, "siren");
            // Liveness of escalation: overdue and unacknowledged means it has fired.
            if let Some(after) = minutes_of(self.config.escalate_after_minutes) {
                let overdue = open
                    .values()
                    .any(|(at, level)| *level != CallLevel::Test && *at + after <= now);
                if overdue {
                    prop_assert_eq!(self.escalations, 1, "overdue without escalation");
                }
            }
        } else if out.pattern != OutputPattern::LampTest {
            prop_assert_eq!(out.siren, Output::Off);
        }
        if let Some(deadline) = alarm.next_deadline() {
            prop_assert!(deadline > now, "deadline {deadline} not after {now}");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_alarm_rules(config in config(), steps in steps()) {
        let start = DateTime::from_timestamp(1_735_689_600, 0).expect("valid time");
        let mut alarm = Alarm::new(config.clone());
        let mut model = Model {
            config: config.clone(),
            raised: BTreeSet::new(),
            possible: BTreeSet::new(),
            escalations: 0,
            siren_since: start,
            silenced: false,
            burst_until: None,
        };
        let mut now = start;
        for (op, advance) in &steps {
            now += Duration::seconds(*advance);
            let before_state = alarm.state();
            let before = unacked(&alarm);
            let fresh_key = match op {
                Op::Raise { key, .. } => !model.raised.contains(&format!("k{key}")),
                _ => false,
            };
            let effects = if let Op::Restart = op {
                let (restored, effects) = restart(&alarm, &config, now);
                alarm = restored;
                match effects.first() {
                    Some(Effect::Audit(r)) => {
                        prop_assert_eq!(r.action, AuditAction::Restored);
                        prop_assert_eq!(r.source, Source::Restore);
                    }
                    other => prop_assert!(false, "restore began with {:?}", other),
                }
                if before_state == AlarmState::Alerting {
                    prop_assert_eq!(alarm.state(), AlarmState::Alerting, "restored alerting");
                }
                effects
            } else {
                alarm.handle(event(op), now)
            };
            model.effects(op, &effects, &before, now)?;
            // An unacknowledged call never disappears, whatever happened.
            let active: BTreeSet<String> =
                alarm.active_calls().iter().map(|c| c.key.clone()).collect();
            for key in before.keys() {
                prop_assert!(active.contains(key), "{key} vanished without ack");
            }
            if fresh_key {
                prop_assert_eq!(alarm.state(), AlarmState::Alerting, "new call alerts");
            }
            model.observe(&alarm, now)?;
        }
    }

    #[test]
    fn restore_of_an_alerting_state_is_alerting(
        config in config(),
        calls in proptest::collection::vec((level(), 0i64..600), 1..6),
        acked in 0usize..6,
        down_for in 0i64..86_400,
    ) {
        let start = DateTime::from_timestamp(1_735_689_600, 0).expect("valid time");
        let mut alarm = Alarm::new(config.clone());
        let mut now = start;
        for (i, (level, advance)) in calls.iter().enumerate() {
            let key = u8::try_from(i).expect("few calls");
            now += Duration::seconds(*advance);
            if i == acked {
                alarm.handle(Event::Acknowledge { source: Source::Web, who: None }, now);
            }
            alarm.handle(Event::CallRaised { key: format!("k{key}"), summary: summary(key, *level) }, now);
        }
        prop_assert_eq!(alarm.state(), AlarmState::Alerting);
        let open = unacked(&alarm);
        let later = now + Duration::seconds(down_for);
        let (restored, _) = restart(&alarm, &config, later);
        prop_assert_eq!(restored.state(), AlarmState::Alerting);
        prop_assert_eq!(unacked(&restored), open);
        let out = restored.outputs(later);
        prop_assert!(matches!(out.strobe, Output::Flashing { .. }), "strobe {:?}", out.strobe);
        check_flash(out.strobe)?;
    }
}
