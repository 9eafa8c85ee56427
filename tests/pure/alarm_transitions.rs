//! Alarm state machine: the exhaustive state × event table, then timed scenarios (escalation,
//! auto-silence, auto-clear, lamp test, restore), the display summary and the `[alarm]` config.

use beacon::alarm::{
    AcknowledgedStrobe, Alarm, AlarmConfig, AlarmState, AuditAction, CallSummary, ConfigError,
    DisplayMode, Effect, Event, Output, OutputPattern, PersistedState, Refusal, Source,
};
use chrono::{DateTime, Utc};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600 + secs, 0).expect("valid test time")
}

fn summary(caller: &str, is_test: bool) -> CallSummary {
    CallSummary {
        caller_name: Some(caller.into()),
        location: Some("Building 2, floor 3".into()),
        dial_string: Some(if is_test { "933" } else { "911" }.into()),
        callback_number: Some("+15551230000".into()),
        is_test,
        ..CallSummary::default()
    }
}

fn raise(key: &str, is_test: bool) -> Event {
    Event::CallRaised {
        key: key.into(),
        summary: summary("Ann Caller", is_test),
    }
}

fn ack(who: &str) -> Event {
    Event::Acknowledge {
        source: Source::Web,
        who: Some(who.into()),
    }
}

fn clear() -> Event {
    Event::Clear {
        source: Source::Button,
        who: None,
    }
}

fn silence() -> Event {
    Event::Silence {
        source: Source::Mqtt,
        who: None,
    }
}

fn lamp(on: bool) -> Event {
    Event::LampTest {
        on,
        source: Source::Button,
        who: None,
    }
}

fn trouble(component: &str) -> Event {
    Event::TroubleRaised {
        component: component.into(),
        detail: "unreachable".into(),
    }
}

fn audits(effects: &[Effect]) -> Vec<AuditAction> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(r) => Some(r.action),
            _ => None,
        })
        .collect()
}

fn refusal(effects: &[Effect]) -> Option<&Refusal> {
    effects.iter().find_map(|e| match e {
        Effect::Refused(r) => Some(r),
        _ => None,
    })
}

fn escalations(effects: &[Effect]) -> Vec<Vec<String>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Escalate { keys, .. } => Some(keys.clone()),
            _ => None,
        })
        .collect()
}

/// Applies events one second apart from `t(0)`.
fn alarm_after(config: AlarmConfig, events: Vec<Event>) -> Alarm {
    let mut alarm = Alarm::new(config);
    for (i, event) in events.into_iter().enumerate() {
        let secs = i64::try_from(i).expect("few events");
        alarm.handle(event, t(secs));
    }
    alarm
}

// ----- the table ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Given {
    Idle,
    Alerting,
    AlertingTest,
    Silenced,
    Acknowledged,
    LampTest,
}

/// Every setup has first raised, acknowledged and cleared call "k0" (so it is a redelivery
/// target) and has an active trouble "hub".
fn given(g: Given) -> Alarm {
    let mut events = vec![raise("k0", false), ack("a"), clear(), trouble("hub")];
    events.extend(match g {
        Given::Idle => vec![],
        Given::Alerting => vec![raise("k1", false)],
        Given::AlertingTest => vec![raise("t1", true)],
        Given::Silenced => vec![raise("k1", false), silence()],
        Given::Acknowledged => vec![raise("k1", false), ack("b")],
        Given::LampTest => vec![lamp(true)],
    });
    alarm_after(AlarmConfig::default(), events)
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    RaiseReal,
    RaiseTest,
    RaiseDup,
    UpdateK1,
    Ack,
    Clear,
    Silence,
    Tick,
    TroubleNew,
    TroubleClearHub,
    LampOn,
    LampOff,
}

fn event(e: Ev) -> Event {
    match e {
        Ev::RaiseReal => raise("k2", false),
        Ev::RaiseTest => raise("t2", true),
        Ev::RaiseDup => raise("k0", false),
        Ev::UpdateK1 => Event::CallUpdated {
            key: "k1".into(),
            summary: summary("Ann Caller (Reception)", false),
        },
        Ev::Ack => ack("guard"),
        Ev::Clear => clear(),
        Ev::Silence => silence(),
        Ev::Tick => Event::Tick,
        Ev::TroubleNew => trouble("mqtt"),
        Ev::TroubleClearHub => Event::TroubleCleared {
            component: "hub".into(),
        },
        Ev::LampOn => lamp(true),
        Ev::LampOff => lamp(false),
    }
}

use AlarmState::{Acknowledged as Ackd, Alerting as Alrt, Idle as Idl};
use AuditAction as A;
use OutputPattern as P;

struct Row {
    given: Given,
    event: Ev,
    state: AlarmState,
    audits: &'static [AuditAction],
    refused: bool,
    pattern: OutputPattern,
    siren: bool,
}

const fn row(
    given: Given,
    event: Ev,
    state: AlarmState,
    audits: &'static [AuditAction],
    refused: bool,
    pattern: OutputPattern,
    siren: bool,
) -> Row {
    Row {
        given,
        event,
        state,
        audits,
        refused,
        pattern,
        siren,
    }
}

const NONE: &[AuditAction] = &[];
const RAISED: &[AuditAction] = &[A::CallRaised];
const LAMP_THEN_RAISED: &[AuditAction] = &[A::LampTestEnded, A::CallRaised];
const T_UP: &[AuditAction] = &[A::TroubleRaised];
const T_DOWN: &[AuditAction] = &[A::TroubleCleared];
const REF: bool = true;
const OK: bool = false;
const ON: bool = true;
const OFF: bool = false;

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Idle
    row(Given::Idle, Ev::RaiseReal, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::Idle, Ev::RaiseTest, Alrt, RAISED, OK, P::Test, OFF),
    row(Given::Idle, Ev::RaiseDup, Idl, NONE, REF, P::Idle, OFF),
    row(Given::Idle, Ev::UpdateK1, Idl, NONE, REF, P::Idle, OFF),
    row(Given::Idle, Ev::Ack, Idl, NONE, REF, P::Idle, OFF),
    row(Given::Idle, Ev::Clear, Idl, NONE, REF, P::Idle, OFF),
    row(Given::Idle, Ev::Silence, Idl, NONE, REF, P::Idle, OFF),
    row(Given::Idle, Ev::Tick, Idl, NONE, OK, P::Idle, OFF),
    row(Given::Idle, Ev::TroubleNew, Idl, T_UP, OK, P::Idle, OFF),
    row(Given::Idle, Ev::TroubleClearHub, Idl, T_DOWN, OK, P::Idle, OFF),
    row(Given::Idle, Ev::LampOn, Idl, &[A::LampTestStarted], OK, P::LampTest, ON),
    row(Given::Idle, Ev::LampOff, Idl, NONE, REF, P::Idle, OFF),
    // Alerting on a real call
    row(Given::Alerting, Ev::RaiseReal, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::Alerting, Ev::RaiseTest, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::Alerting, Ev::RaiseDup, Alrt, NONE, REF, P::Alarm, ON),
    row(Given::Alerting, Ev::UpdateK1, Alrt, &[A::CallUpdated], OK, P::Alarm, ON),
    row(Given::Alerting, Ev::Ack, Ackd, &[A::Acknowledged], OK, P::Acknowledged, OFF),
    row(Given::Alerting, Ev::Clear, Alrt, NONE, REF, P::Alarm, ON),
    row(Given::Alerting, Ev::Silence, Alrt, &[A::Silenced], OK, P::Alarm, OFF),
    row(Given::Alerting, Ev::Tick, Alrt, NONE, OK, P::Alarm, ON),
    row(Given::Alerting, Ev::TroubleNew, Alrt, T_UP, OK, P::Alarm, ON),
    row(Given::Alerting, Ev::TroubleClearHub, Alrt, T_DOWN, OK, P::Alarm, ON),
    row(Given::Alerting, Ev::LampOn, Alrt, NONE, REF, P::Alarm, ON),
    row(Given::Alerting, Ev::LampOff, Alrt, NONE, REF, P::Alarm, ON),
    // Alerting on a test call only
    row(Given::AlertingTest, Ev::RaiseReal, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::AlertingTest, Ev::RaiseTest, Alrt, RAISED, OK, P::Test, OFF),
    row(Given::AlertingTest, Ev::RaiseDup, Alrt, NONE, REF, P::Test, OFF),
    row(Given::AlertingTest, Ev::UpdateK1, Alrt, NONE, REF, P::Test, OFF),
    row(Given::AlertingTest, Ev::Ack, Ackd, &[A::Acknowledged], OK, P::Acknowledged, OFF),
    row(Given::AlertingTest, Ev::Clear, Alrt, NONE, REF, P::Test, OFF),
    row(Given::AlertingTest, Ev::Silence, Alrt, NONE, REF, P::Test, OFF),
    row(Given::AlertingTest, Ev::Tick, Alrt, NONE, OK, P::Test, OFF),
    row(Given::AlertingTest, Ev::TroubleNew, Alrt, T_UP, OK, P::Test, OFF),
    row(Given::AlertingTest, Ev::TroubleClearHub, Alrt, T_DOWN, OK, P::Test, OFF),
    row(Given::AlertingTest, Ev::LampOn, Alrt, NONE, REF, P::Test, OFF),
    row(Given::AlertingTest, Ev::LampOff, Alrt, NONE, REF, P::Test, OFF),
    // Alerting, siren silenced
    row(Given::Silenced, Ev::RaiseReal, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::Silenced, Ev::RaiseTest, Alrt, RAISED, OK, P::Alarm, OFF),
    row(Given::Silenced, Ev::RaiseDup, Alrt, NONE, REF, P::Alarm, OFF),
    row(Given::Silenced, Ev::UpdateK1, Alrt, &[A::CallUpdated], OK, P::Alarm, OFF),
    row(Given::Silenced, Ev::Ack, Ackd, &[A::Acknowledged], OK, P::Acknowledged, OFF),
    row(Given::Silenced, Ev::Clear, Alrt, NONE, REF, P::Alarm, OFF),
    row(Given::Silenced, Ev::Silence, Alrt, NONE, REF, P::Alarm, OFF),
    row(Given::Silenced, Ev::Tick, Alrt, NONE, OK, P::Alarm, OFF),
    row(Given::Silenced, Ev::TroubleNew, Alrt, T_UP, OK, P::Alarm, OFF),
    row(Given::Silenced, Ev::TroubleClearHub, Alrt, T_DOWN, OK, P::Alarm, OFF),
    row(Given::Silenced, Ev::LampOn, Alrt, NONE, REF, P::Alarm, OFF),
    row(Given::Silenced, Ev::LampOff, Alrt, NONE, REF, P::Alarm, OFF),
    // Acknowledged
    row(Given::Acknowledged, Ev::RaiseReal, Alrt, RAISED, OK, P::Alarm, ON),
    row(Given::Acknowledged, Ev::RaiseTest, Alrt, RAISED, OK, P::Test, OFF),
    row(Given::Acknowledged, Ev::RaiseDup, Ackd, NONE, REF, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::UpdateK1, Ackd, &[A::CallUpdated], OK, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::Ack, Ackd, NONE, REF, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::Clear, Idl, &[A::Cleared], OK, P::Idle, OFF),
    row(Given::Acknowledged, Ev::Silence, Ackd, NONE, REF, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::Tick, Ackd, NONE, OK, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::TroubleNew, Ackd, T_UP, OK, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::TroubleClearHub, Ackd, T_DOWN, OK, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::LampOn, Ackd, NONE, REF, P::Acknowledged, OFF),
    row(Given::Acknowledged, Ev::LampOff, Ackd, NONE, REF, P::Acknowledged, OFF),
    // Idle with a lamp test running
    row(Given::LampTest, Ev::RaiseReal, Alrt, LAMP_THEN_RAISED, OK, P::Alarm, ON),
    row(Given::LampTest, Ev::RaiseTest, Alrt, LAMP_THEN_RAISED, OK, P::Test, OFF),
    row(Given::LampTest, Ev::RaiseDup, Idl, NONE, REF, P::LampTest, ON),
    row(Given::LampTest, Ev::UpdateK1, Idl, NONE, REF, P::LampTest, ON),
    row(Given::LampTest, Ev::Ack, Idl, NONE, REF, P::LampTest, ON),
    row(Given::LampTest, Ev::Clear, Idl, NONE, REF, P::LampTest, ON),
    row(Given::LampTest, Ev::Silence, Idl, NONE, REF, P::LampTest, ON),
    row(Given::LampTest, Ev::Tick, Idl, NONE, OK, P::LampTest, ON),
    row(Given::LampTest, Ev::TroubleNew, Idl, T_UP, OK, P::LampTest, ON),
    row(Given::LampTest, Ev::TroubleClearHub, Idl, T_DOWN, OK, P::LampTest, ON),
    row(Given::LampTest, Ev::LampOn, Idl, NONE, OK, P::LampTest, ON),
    row(Given::LampTest, Ev::LampOff, Idl, &[A::LampTestEnded], OK, P::Idle, OFF),
];

#[test]
fn transition_table_covers_every_state_and_event() {
    assert_eq!(TABLE.len(), 6 * 12, "one row per state × event");
    for r in TABLE {
        let mut alarm = given(r.given);
        // Just after the setup (at most six events, one a second): no timer is due yet.
        let now = t(6);
        let effects = alarm.handle(event(r.event), now);
        let ctx = format!("{:?} + {:?}", r.given, r.event);
        assert_eq!(alarm.state(), r.state, "state after {ctx}");
        assert_eq!(audits(&effects), r.audits, "audit after {ctx}");
        assert_eq!(
            refusal(&effects).is_some(),
            r.refused,
            "refusal after {ctx}: {effects:?}"
        );
        let out = alarm.outputs(now);
        assert_eq!(out.pattern, r.pattern, "pattern after {ctx}");
        assert_eq!(out.siren.is_on(), r.siren, "siren after {ctx}");
        let state_changed = effects
            .iter()
            .any(|e| matches!(e, Effect::StateChanged { .. }));
        assert_eq!(
            state_changed,
            !r.refused && (!r.audits.is_empty() || matches!(r.event, Ev::LampOn)),
            "StateChanged after {ctx}"
        );
        if r.refused {
            assert_eq!(effects.len(), 1, "a refusal changes nothing: {ctx}");
        }
        // The trouble output follows the troubles, whatever the alarm does.
        let troubles_left = !matches!(r.event, Ev::TroubleClearHub);
        assert_eq!(
            out.trouble.is_on(),
            troubles_left || out.pattern == P::LampTest,
            "trouble output after {ctx}"
        );
    }
}

// ----- acknowledge, clear, redelivery --------------------------------------------------------

#[test]
fn clear_is_refused_until_acknowledged_and_names_the_calls() {
    let mut alarm = alarm_after(
        AlarmConfig::default(),
        vec![raise("k1", false), raise("k2", true)],
    );
    let effects = alarm.handle(clear(), t(10));
    assert_eq!(
        refusal(&effects),
        Some(&Refusal::NotAcknowledged {
            keys: vec!["k1".into(), "k2".into()]
        })
    );
    assert_eq!(alarm.state(), AlarmState::Alerting);
    assert!(alarm.outputs(t(10)).strobe.is_on());
}

#[test]
fn acknowledge_records_who_and_acks_every_call() {
    let mut alarm = alarm_after(
        AlarmConfig::default(),
        vec![raise("k1", false), raise("k2", false)],
    );
    let effects = alarm.handle(ack("jo"), t(20));
    let record = effects
        .iter()
        .find_map(|e| match e {
            Effect::Audit(r) => Some(r.clone()),
            _ => None,
        })
        .expect("an audit record");
    assert_eq!(record.action, AuditAction::Acknowledged);
    assert_eq!(record.source, Source::Web);
    assert_eq!(record.who.as_deref(), Some("jo"));
    assert_eq!(
        (record.from, record.to),
        (AlarmState::Alerting, AlarmState::Acknowledged)
    );
    assert_eq!(record.keys, vec!["k1".to_string(), "k2".to_string()]);
    assert!(alarm
        .active_calls()
        .iter()
        .all(|c| c.acknowledged.is_some()));
}

#[test]
fn redelivered_call_never_re_alerts_after_ack_or_clear() {
    let mut alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false), ack("a")]);
    let effects = alarm.handle(raise("k1", false), t(10));
    assert_eq!(
        refusal(&effects),
        Some(&Refusal::DuplicateCall { key: "k1".into() })
    );
    assert_eq!(alarm.state(), AlarmState::Acknowledged);
    assert!(!alarm.outputs(t(10)).siren.is_on());

    alarm.handle(clear(), t(11));
    alarm.handle(raise("k1", false), t(12));
    assert_eq!(alarm.state(), AlarmState::Idle);
    assert_eq!(alarm.outputs(t(12)).strobe, Output::Off);
}

#[test]
fn call_update_changes_text_but_never_re_alerts() {
    let mut alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false), ack("a")]);
    let updated = summary("Ann Caller", false);
    let updated = CallSummary {
        location: Some("Lobby".into()),
        ..updated
    };
    alarm.handle(
        Event::CallUpdated {
            key: "k1".into(),
            summary: updated,
        },
        t(10),
    );
    assert_eq!(alarm.state(), AlarmState::Acknowledged);
    let view = alarm.display(t(10));
    assert_eq!(view.calls[0].summary.location.as_deref(), Some("Lobby"));
}

#[test]
fn new_call_while_acknowledged_alerts_again_and_resounds() {
    let mut alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false), ack("a")]);
    assert!(!alarm.outputs(t(5)).siren.is_on());
    alarm.handle(raise("k2", false), t(6));
    assert_eq!(alarm.state(), AlarmState::Alerting);
    let out = alarm.outputs(t(6));
    assert!(out.siren.is_on());
    assert_eq!(out.strobe, Output::flashing(500));
}

#[test]
fn acknowledgement_darkens_the_strobe_unless_configured_steady() {
    let alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false), ack("a")]);
    assert_eq!(alarm.outputs(t(5)).strobe, Output::Off);
    let config = AlarmConfig {
        acknowledged_strobe: AcknowledgedStrobe::Steady,
        ..AlarmConfig::default()
    };
    let alarm = alarm_after(config, vec![raise("k1", false), ack("a")]);
    assert_eq!(alarm.outputs(t(5)).strobe, Output::Steady);
}

// ----- escalation --------------------------------------------------------------------------

#[test]
fn escalates_once_when_nobody_acknowledges_in_time() {
    let mut alarm = Alarm::new(AlarmConfig::default()); // 2 minutes
    alarm.handle(raise("k1", false), t(0));
    assert_eq!(alarm.next_deadline(), Some(t(120)));
    assert!(escalations(&alarm.handle(Event::Tick, t(119))).is_empty());
    let effects = alarm.handle(Event::Tick, t(120));
    assert_eq!(escalations(&effects), vec![vec!["k1".to_string()]]);
    assert!(audits(&effects).contains(&AuditAction::Escalated));
    // A second call in the same episode does not escalate again.
    alarm.handle(raise("k2", false), t(130));
    for s in (130..2000).step_by(30) {
        assert!(escalations(&alarm.handle(Event::Tick, t(s))).is_empty());
    }
}

#[test]
fn acknowledged_in_time_never_escalates() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("k1", false), t(0));
    alarm.handle(ack("a"), t(119));
    assert_eq!(alarm.next_deadline(), None);
    assert!(escalations(&alarm.handle(Event::Tick, t(10_000))).is_empty());
}

#[test]
fn late_ack_without_a_tick_still_escalates_first() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("k1", false), t(0));
    let effects = alarm.handle(ack("a"), t(121));
    assert_eq!(escalations(&effects).len(), 1);
    assert_eq!(
        audits(&effects),
        vec![AuditAction::Escalated, AuditAction::Acknowledged]
    );
}

#[test]
fn new_episode_after_ack_can_escalate_again() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("k1", false), t(0));
    assert_eq!(escalations(&alarm.handle(Event::Tick, t(120))).len(), 1);
    alarm.handle(ack("a"), t(130));
    alarm.handle(raise("k2", false), t(200));
    assert_eq!(alarm.next_deadline(), Some(t(320)));
    assert_eq!(
        escalations(&alarm.handle(Event::Tick, t(320))),
        vec![vec!["k2".to_string()]]
    );
}

#[test]
fn test_calls_never_escalate_and_escalation_can_be_disabled() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("t1", true), t(0));
    assert!(escalations(&alarm.handle(Event::Tick, t(3600))).is_empty());

    let config = AlarmConfig {
        escalate_after_minutes: Some(0),
        ..AlarmConfig::default()
    };
    let mut alarm = Alarm::new(config);
    alarm.handle(raise("k1", false), t(0));
    assert_eq!(alarm.next_deadline(), None);
    assert!(escalations(&alarm.handle(Event::Tick, t(3600))).is_empty());
}

// ----- auto-silence and auto-clear ----------------------------------------------------------

#[test]
fn auto_silence_stops_the_siren_but_not_the_strobe() {
    let config = AlarmConfig {
        siren_auto_silence_minutes: Some(3),
        escalate_after_minutes: None,
        ..AlarmConfig::default()
    };
    let mut alarm = Alarm::new(config);
    alarm.handle(raise("k1", false), t(0));
    assert_eq!(alarm.next_deadline(), Some(t(180)));
    assert!(alarm.outputs(t(179)).siren.is_on());
    // Outputs follow the clock even before the tick arrives.
    assert!(!alarm.outputs(t(180)).siren.is_on());
    let effects = alarm.handle(Event::Tick, t(180));
    assert_eq!(audits(&effects), vec![AuditAction::AutoSilenced]);
    let out = alarm.outputs(t(5000));
    assert_eq!(out.siren, Output::Off);
    assert_eq!(out.strobe, Output::flashing(500));
    assert_eq!(alarm.state(), AlarmState::Alerting);
    assert!(alarm.display(t(5000)).siren_silenced);
    // A new call resounds and restarts the auto-silence timer.
    alarm.handle(raise("k2", false), t(6000));
    assert!(alarm.outputs(t(6000)).siren.is_on());
    assert_eq!(alarm.next_deadline(), Some(t(6180)));
}

#[test]
fn auto_clear_after_acknowledgement_only() {
    let config = AlarmConfig {
        auto_clear_minutes: Some(10),
        ..AlarmConfig::default()
    };
    let mut alarm = Alarm::new(config);
    alarm.handle(raise("k1", false), t(0));
    alarm.handle(Event::Tick, t(3600));
    assert_eq!(
        alarm.state(),
        AlarmState::Alerting,
        "never auto-cleared unacknowledged"
    );
    alarm.handle(ack("a"), t(3700));
    assert_eq!(alarm.next_deadline(), Some(t(4300)));
    let effects = alarm.handle(Event::Tick, t(4300));
    assert_eq!(audits(&effects), vec![AuditAction::AutoCleared]);
    assert_eq!(alarm.state(), AlarmState::Idle);
    assert_eq!(alarm.outputs(t(4300)).strobe, Output::Off);
}

// ----- lamp test ---------------------------------------------------------------------------

#[test]
fn lamp_test_turns_everything_on_for_its_seconds() {
    let mut alarm = Alarm::new(AlarmConfig::default()); // 5 s
    alarm.handle(lamp(true), t(0));
    let out = alarm.outputs(t(1));
    assert_eq!(
        (out.strobe, out.siren, out.trouble),
        (Output::Steady, Output::Steady, Output::Steady)
    );
    assert_eq!(alarm.next_deadline(), Some(t(5)));
    assert_eq!(alarm.outputs(t(5)).pattern, OutputPattern::Idle);
    let effects = alarm.handle(Event::Tick, t(5));
    assert_eq!(audits(&effects), vec![AuditAction::LampTestEnded]);
    assert_eq!(alarm.next_deadline(), None);
}

// ----- trouble overlay and display ----------------------------------------------------------

#[test]
fn trouble_overlay_never_hides_the_alarm() {
    let mut alarm = alarm_after(
        AlarmConfig::default(),
        vec![trouble("hub"), trouble("token")],
    );
    let view = alarm.display(t(5));
    assert_eq!(
        (view.mode, view.headline.as_str()),
        (DisplayMode::Trouble, "TROUBLE")
    );
    assert_eq!(view.troubles.len(), 2);
    assert_eq!(alarm.outputs(t(5)).trouble, Output::flashing(2000));
    assert_eq!(alarm.outputs(t(5)).strobe, Output::Off);

    alarm.handle(raise("k1", false), t(10));
    let out = alarm.outputs(t(10));
    assert_eq!(out.strobe, Output::flashing(500));
    assert!(out.siren.is_on());
    assert!(out.trouble.is_on());
    let view = alarm.display(t(10));
    assert_eq!(
        (view.mode, view.headline.as_str()),
        (DisplayMode::Alarm, "EMERGENCY CALL")
    );
    assert_eq!(view.troubles.len(), 2, "troubles still listed");
}

#[test]
fn test_call_says_this_is_a_test_and_a_real_call_takes_precedence() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("t1", true), t(0));
    let view = alarm.display(t(30));
    assert_eq!(
        (view.mode, view.headline.as_str()),
        (DisplayMode::Test, "THIS IS A TEST")
    );
    assert_eq!(view.elapsed_secs, Some(30));
    let out = alarm.outputs(t(30));
    assert_eq!(
        (out.pattern, out.strobe, out.siren),
        (OutputPattern::Test, Output::flashing(1000), Output::Off)
    );

    alarm.handle(raise("k1", false), t(40));
    let view = alarm.display(t(40));
    assert_eq!(
        (view.mode, view.headline.as_str()),
        (DisplayMode::Alarm, "EMERGENCY CALL")
    );
    assert_eq!(view.calls[0].key, "k1", "the real call is listed first");
    let out = alarm.outputs(t(40));
    assert_eq!(
        (out.pattern, out.strobe),
        (OutputPattern::Alarm, Output::flashing(500))
    );
    assert!(out.siren.is_on());
}

#[test]
fn test_call_sounds_the_siren_only_when_configured() {
    let config = AlarmConfig {
        test_sounds_siren: true,
        ..AlarmConfig::default()
    };
    let alarm = alarm_after(config, vec![raise("t1", true)]);
    assert!(alarm.outputs(t(1)).siren.is_on());
}

// ----- persistence -------------------------------------------------------------------------

fn json_roundtrip(state: &PersistedState) -> PersistedState {
    let text = serde_json::to_string(state).expect("serialises");
    serde_json::from_str(&text).expect("deserialises")
}

#[test]
fn restore_brings_back_an_unacknowledged_call_alarming() {
    let alarm = alarm_after(
        AlarmConfig::default(),
        vec![trouble("hub"), raise("k1", false)],
    );
    let stored = json_roundtrip(&alarm.snapshot());
    let (mut restored, effects) = Alarm::restore(AlarmConfig::default(), stored, t(30));
    assert_eq!(restored.state(), AlarmState::Alerting);
    let out = restored.outputs(t(30));
    assert_eq!(out.strobe, Output::flashing(500));
    assert!(out.siren.is_on());
    match effects.first() {
        Some(Effect::Audit(r)) => {
            assert_eq!(
                (r.action, r.source),
                (AuditAction::Restored, Source::Restore)
            );
            assert_eq!(r.keys, vec!["k1".to_string()]);
        }
        other => panic!("expected a restore audit first, got {other:?}"),
    }
    // The escalation timer kept counting from the original raise.
    assert_eq!(restored.next_deadline(), Some(t(121)));
    // And the key is remembered: redelivery after the restart does not alert again.
    restored.handle(ack("a"), t(40));
    restored.handle(raise("k1", false), t(41));
    assert_eq!(restored.state(), AlarmState::Acknowledged);
}

#[test]
fn restore_runs_overdue_timers_and_of_idle_stays_idle() {
    let alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false)]);
    let (restored, effects) = Alarm::restore(AlarmConfig::default(), alarm.snapshot(), t(3600));
    assert_eq!(escalations(&effects), vec![vec!["k1".to_string()]]);
    assert_eq!(restored.state(), AlarmState::Alerting);

    let idle = alarm_after(
        AlarmConfig::default(),
        vec![raise("k1", false), ack("a"), clear()],
    );
    let (restored, effects) = Alarm::restore(AlarmConfig::default(), idle.snapshot(), t(10));
    assert_eq!(restored.state(), AlarmState::Idle);
    assert_eq!(audits(&effects), vec![AuditAction::Restored]);
}

#[test]
fn restore_repairs_a_state_without_episode() {
    let alarm = alarm_after(AlarmConfig::default(), vec![raise("k1", false)]);
    let mut stored = alarm.snapshot();
    stored.episode = None;
    let (restored, _) = Alarm::restore(AlarmConfig::default(), stored, t(10));
    assert_eq!(restored.state(), AlarmState::Alerting);
    assert!(restored.outputs(t(10)).siren.is_on());
    assert_eq!(restored.next_deadline(), Some(t(120)));
}

// ----- config ------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct File {
    alarm: AlarmConfig,
}

#[test]
fn config_toml_from_the_docs_parses_and_validates() {
    let text = r#"
        [alarm]
        siren_auto_silence_minutes = 5
        auto_clear_minutes = 30
        escalate_after_minutes = 2
        real_flash_period_ms = 500
        test_flash_period_ms = 1000
        trouble_flash_period_ms = 2000
        test_sounds_siren = false
        acknowledged_strobe = "steady"
        lamp_test_seconds = 5
    "#;
    let file: File = toml::from_str(text).expect("parses");
    assert_eq!(file.alarm.siren_auto_silence_minutes, Some(5));
    assert_eq!(file.alarm.auto_clear_minutes, Some(30));
    assert_eq!(file.alarm.validate(), Ok(()));

    let empty: File = toml::from_str("[alarm]\n").expect("parses");
    assert_eq!(empty.alarm, AlarmConfig::default());
    assert_eq!(empty.alarm.escalate_after_minutes, Some(2));
}

#[test]
fn config_rejects_unknown_fields() {
    let err = toml::from_str::<File>("[alarm]\nescalate_minutes = 3\n")
        .err()
        .expect("unknown field is an error");
    assert!(err.to_string().contains("escalate_minutes"), "{err}");
}

#[test]
fn too_fast_flash_is_reported_and_clamped() {
    let config = AlarmConfig {
        real_flash_period_ms: 100,
        trouble_flash_period_ms: 0,
        ..AlarmConfig::default()
    };
    let errors = config.validate().expect_err("too fast").0;
    assert_eq!(
        errors,
        vec![
            ConfigError::FlashTooFast {
                field: "real_flash_period_ms",
                ms: 100
            },
            ConfigError::FlashTooFast {
                field: "trouble_flash_period_ms",
                ms: 0
            },
        ]
    );
    assert!(errors[0].to_string().contains("3 Hz"));
    let alarm = alarm_after(config, vec![trouble("hub"), raise("k1", false)]);
    let out = alarm.outputs(t(5));
    assert_eq!(out.strobe, Output::Flashing { period_ms: 333 });
    assert_eq!(out.trouble, Output::Flashing { period_ms: 333 });
}

#[test]
fn config_reports_every_bad_value() {
    let config = AlarmConfig {
        escalate_after_minutes: Some(5000),
        lamp_test_seconds: 0,
        ..AlarmConfig::default()
    };
    let errors = config.validate().expect_err("invalid");
    let text = errors.to_string();
    assert!(
        text.contains("alarm.escalate_after_minutes = 5000"),
        "{text}"
    );
    assert!(text.contains("lamp_test_seconds"), "{text}");
    assert_eq!(errors.0.len(), 2);
    // The lamp test still ends: 0 s is treated as 1 s.
    let mut alarm = Alarm::new(config);
    alarm.handle(lamp(true), t(0));
    assert_eq!(alarm.next_deadline(), Some(t(1)));
}

#[test]
fn timer_deadlines_are_never_in_the_past() {
    let mut alarm = Alarm::new(AlarmConfig {
        siren_auto_silence_minutes: Some(1),
        auto_clear_minutes: Some(1),
        ..AlarmConfig::default()
    });
    alarm.handle(raise("k1", false), t(0));
    let mut now = t(0);
    while let Some(deadline) = alarm.next_deadline() {
        assert!(deadline > now);
        now = deadline;
        alarm.handle(Event::Tick, now);
        if alarm.state() == AlarmState::Alerting && now >= t(120) {
            alarm.handle(ack("a"), now);
        }
    }
    assert_eq!(alarm.state(), AlarmState::Idle);
    assert_eq!(
        now,
        t(180),
        "silence at 60, escalate at 120, ack at 120, clear at 180"
    );
}
