//! Alarm properties over random configs and random event sequences with random time advances
//! (including restarts through the persisted state): what a guard would notice if broken.

use std::collections::{BTreeMap, BTreeSet};

use beacon::alarm::{
    AcknowledgedStrobe, Alarm, AlarmConfig, AlarmState, AuditAction, CallSummary, DisplayMode,
    Effect, Event, Output, OutputPattern, PersistedState, Refusal, Source, MIN_FLASH_PERIOD_MS,
};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Raise { key: u8, is_test: bool },
    Update { key: u8, is_test: bool },
    Ack(Source),
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
        4 => (0u8..6, any::<bool>()).prop_map(|(key, is_test)| Op::Raise { key, is_test }),
        1 => (0u8..6, any::<bool>()).prop_map(|(key, is_test)| Op::Update { key, is_test }),
        2 => source().prop_map(Op::Ack),
        2 => source().prop_map(Op::Clear),
        1 => source().prop_map(Op::Silence),
        3 => Just(Op::Tick),
        1 => (0u8..3).prop_map(Op::TroubleUp),
        1 => (0u8..3).prop_map(Op::TroubleDown),
        1 => any::<bool>().prop_map(Op::Lamp),
        1 => Just(Op::Restart),
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
    )
        .prop_map(
            |((silence, clear, escalate), (real, test, trouble), (test_siren, ack_off, lamp))| {
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
                    ..AlarmConfig::default()
                }
            },
        )
}

/// Steps: an op and how many seconds pass before it (up to four minutes, so every timer of
/// 1–3 minutes both fires and is beaten by events).
fn steps() -> impl Strategy<Value = Vec<(Op, i64)>> {
    proptest::collection::vec((op(), 0i64..240), 1..80)
}

fn summary(key: u8, is_test: bool) -> CallSummary {
    CallSummary {
        caller_name: Some(format!("caller {key}")),
        location: Some(format!("room {key}")),
        dial_string: Some(if is_test { "933" } else { "911" }.into()),
        callback_number: None,
        is_test,
        ..CallSummary::default()
    }
}

fn event(op: &Op) -> Event {
    match op {
        Op::Raise { key, is_test } => Event::CallRaised {
            key: format!("k{key}"),
            summary: summary(*key, *is_test),
        },
        Op::Update { key, is_test } => Event::CallUpdated {
            key: format!("k{key}"),
            summary: CallSummary {
                location: Some("moved".into()),
                ..summary(*key, *is_test)
            },
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
    /// Escalations in the current alerting episode.
    escalations: u32,
    /// When the siren last (re)started and whether it was silenced since.
    siren_since: DateTime<Utc>,
    silenced: bool,
}

/// The unacknowledged active calls: key → (raised at, is test).
fn unacked(alarm: &Alarm) -> BTreeMap<String, (DateTime<Utc>, bool)> {
    alarm
        .active_calls()
        .into_iter()
        .filter(|c| c.acknowledged.is_none())
        .map(|c| (c.key.clone(), (c.raised_at, c.summary.is_test)))
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
        before: &BTreeMap<String, (DateTime<Utc>, bool)>,
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        let escalate_after = minutes_of(self.config.escalate_after_minutes);
        for effect in effects {
            match effect {
                Effect::Audit(r) => match r.action {
                    AuditAction::CallRaised => {
                        let key = r.keys.first().cloned().unwrap_or_default();
                        prop_assert!(self.raised.insert(key.clone()), "{key} raised twice");
                        let is_test = matches!(op, Op::Raise { is_test: true, .. });
                        if r.from != AlarmState::Alerting {
                            self.escalations = 0;
                            self.siren_since = now;
                            self.silenced = false;
                        } else if !is_test || self.config.test_sounds_siren {
                            self.siren_since = now;
                            self.silenced = false;
                        }
                    }
                    AuditAction::Silenced => self.silenced = true,
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
                    }
                    _ => {}
                },
                Effect::Escalate { keys, since } => {
                    let after = escalate_after.expect("escalation only when configured");
                    prop_assert!(now >= *since + after, "escalated early");
                    let expected: BTreeSet<&String> = before
                        .iter()
                        .filter(|(_, (_, is_test))| !is_test)
                        .map(|(k, _)| k)
                        .collect();
                    prop_assert_eq!(keys.iter().collect::<BTreeSet<_>>(), expected);
                    let earliest = before
                        .values()
                        .filter(|(_, is_test)| !is_test)
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
            // Whatever troubles exist, the alarm pattern shows.
            let real = open.values().any(|(_, is_test)| !is_test);
            let expected = if real {
                OutputPattern::Alarm
            } else {
                OutputPattern::Test
            };
            prop_assert_eq!(out.pattern, expected);
            let period = if real {
                self.config.real_flash_period_ms
            } else {
                self.config.test_flash_period_ms
            };
            prop_assert_eq!(out.strobe, Output::flashing(period), "strobe pattern");
            prop_assert!(
                matches!(out.strobe, Output::Flashing { .. }),
                "strobe {:?}",
                out.strobe
            );
            prop_assert!(matches!(view.mode, DisplayMode::Alarm | DisplayMode::Test));
            let any_real_active = alarm.active_calls().iter().any(|c| !c.summary.is_test);
            if !any_real_active {
                prop_assert_eq!(view.headline.as_str(), "THIS IS A TEST");
            }
            let wanted = open
                .values()
                .any(|(_, is_test)| !is_test || self.config.test_sounds_siren);
            let timed_out = minutes_of(self.config.siren_auto_silence_minutes)
                .is_some_and(|d| now >= self.siren_since + d);
            let sounding = wanted && !self.silenced && !timed_out;
            prop_assert_eq!(out.siren.is_on(), sounding, "siren");
            // Liveness of escalation: overdue and unacknowledged means it has fired.
            if let Some(after) = minutes_of(self.config.escalate_after_minutes) {
                let overdue = open
                    .values()
                    .any(|(at, is_test)| !is_test && *at + after <= now);
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
            escalations: 0,
            siren_since: start,
            silenced: false,
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
        calls in proptest::collection::vec((any::<bool>(), 0i64..600), 1..6),
        acked in 0usize..6,
        down_for in 0i64..86_400,
    ) {
        let start = DateTime::from_timestamp(1_735_689_600, 0).expect("valid time");
        let mut alarm = Alarm::new(config.clone());
        let mut now = start;
        for (i, (is_test, advance)) in calls.iter().enumerate() {
            let key = u8::try_from(i).expect("few calls");
            now += Duration::seconds(*advance);
            if i == acked {
                alarm.handle(Event::Acknowledge { source: Source::Web, who: None }, now);
            }
            alarm.handle(Event::CallRaised { key: format!("k{key}"), summary: summary(key, *is_test) }, now);
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
