//! The "possible" alert level: a call the classifier was not sure about has its own strobe
//! pattern and a short siren burst, is acknowledged like any call, and becomes the full alarm
//! when a guard confirms it or a second report corroborates it — also across a restart and
//! from a store written before the level existed.

use beacon::alarm::{
    Alarm, AlarmConfig, AlarmState, AuditAction, AuditRecord, CallSummary, DisplayMode, Effect,
    Event, Output, OutputPattern, PersistedState, Refusal, Source, POSSIBLE_HEADLINE,
};
use chrono::{DateTime, Utc};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600 + secs, 0).expect("valid test time")
}

fn real(caller: &str) -> CallSummary {
    CallSummary {
        caller_name: Some(caller.into()),
        location: Some("Building 2".into()),
        dial_string: Some("911".into()),
        ..CallSummary::default()
    }
}

fn possible(caller: &str) -> CallSummary {
    CallSummary {
        caller_name: Some(caller.into()),
        is_possible: true,
        message: Some("Emergency in the lab? Please come".into()),
        ..CallSummary::default()
    }
}

fn raise(key: &str, summary: CallSummary) -> Event {
    Event::CallRaised {
        key: key.into(),
        summary,
    }
}

fn ack() -> Event {
    Event::Acknowledge {
        source: Source::Button,
        who: None,
    }
}

fn clear() -> Event {
    Event::Clear {
        source: Source::Web,
        who: Some("kim".into()),
    }
}

/// A guard escalating every possible call from the console.
fn confirm_by(who: &str) -> Event {
    Event::Confirm {
        key: None,
        source: Source::Web,
        who: Some(who.into()),
        detail: None,
    }
}

fn audits(effects: &[Effect]) -> Vec<&AuditRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn actions(effects: &[Effect]) -> Vec<AuditAction> {
    audits(effects).iter().map(|r| r.action).collect()
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

#[test]
fn possible_call_has_its_own_strobe_and_only_a_siren_burst() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    let effects = alarm.handle(raise("p1", possible("Kim")), t(0));
    assert_eq!(actions(&effects), [AuditAction::CallRaised]);
    assert_eq!(alarm.state(), AlarmState::Alerting);
    let out = alarm.outputs(t(1));
    assert_eq!(out.pattern, OutputPattern::Possible);
    assert_eq!(out.strobe, Output::flashing(1500));
    assert_eq!(out.siren, Output::Steady, "the burst sounds at first");
    // The burst ends by itself after 3 s: the adapter is told to tick then.
    assert_eq!(alarm.next_deadline(), Some(t(3)));
    alarm.handle(Event::Tick, t(3));
    let out = alarm.outputs(t(3));
    assert_eq!(out.siren, Output::Off, "never the continuous siren");
    assert_eq!(
        out.pattern,
        OutputPattern::Possible,
        "the strobe keeps going"
    );
    assert_eq!(alarm.state(), AlarmState::Alerting);
    // The screen says what it is, with the message to judge.
    let view = alarm.display(t(3));
    assert_eq!(view.mode, DisplayMode::Possible);
    assert_eq!(view.headline, POSSIBLE_HEADLINE);
    assert_eq!(
        view.calls[0].summary.message.as_deref(),
        Some("Emergency in the lab? Please come")
    );
    // The burst is configurable, 0 = none.
    let quiet = AlarmConfig {
        possible_siren_seconds: 0,
        ..AlarmConfig::default()
    };
    let mut alarm = Alarm::new(quiet);
    alarm.handle(raise("p1", possible("Kim")), t(0));
    assert_eq!(alarm.outputs(t(0)).siren, Output::Off);
    assert_eq!(alarm.outputs(t(0)).pattern, OutputPattern::Possible);
}

#[test]
fn a_real_call_outranks_a_possible_one_and_a_test_does_not() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    let drill = CallSummary {
        is_test: true,
        ..real("Drill")
    };
    alarm.handle(raise("t1", drill), t(1));
    assert_eq!(alarm.outputs(t(1)).pattern, OutputPattern::Possible);
    alarm.handle(raise("k1", real("Ann")), t(2));
    assert_eq!(alarm.outputs(t(10)).pattern, OutputPattern::Alarm);
    assert!(alarm.outputs(t(10)).siren.is_on());
    let view = alarm.display(t(10));
    assert_eq!(view.mode, DisplayMode::Alarm);
    let order: Vec<&str> = view.calls.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(order, ["k1", "p1", "t1"], "real, possible, test");
}

#[test]
fn possible_call_is_acknowledged_silenced_and_cleared_like_any_call() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    let silenced = alarm.handle(
        Event::Silence {
            source: Source::Mqtt,
            who: None,
        },
        t(1),
    );
    assert_eq!(actions(&silenced), [AuditAction::Silenced]);
    assert_eq!(alarm.outputs(t(1)).siren, Output::Off);
    assert_eq!(alarm.outputs(t(1)).pattern, OutputPattern::Possible);
    alarm.handle(ack(), t(2));
    assert_eq!(alarm.state(), AlarmState::Acknowledged);
    assert_eq!(alarm.outputs(t(2)).pattern, OutputPattern::Acknowledged);
    alarm.handle(clear(), t(3));
    assert_eq!(alarm.state(), AlarmState::Idle);
    // Redelivered as possible again: a duplicate, as always.
    let again = alarm.handle(raise("p1", possible("Kim")), t(4));
    assert!(matches!(
        refusal(&again),
        Some(Refusal::DuplicateCall { .. })
    ));
    assert_eq!(alarm.state(), AlarmState::Idle);
}

#[test]
fn a_guard_confirms_a_possible_call_into_the_full_alarm() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    alarm.handle(ack(), t(10));
    let effects = alarm.handle(confirm_by("Front desk"), t(20));
    let records = audits(&effects);
    assert_eq!(records.len(), 1);
    let record = records[0];
    assert_eq!(record.action, AuditAction::Confirmed);
    assert_eq!(
        (record.source, record.who.as_deref()),
        (Source::Web, Some("Front desk"))
    );
    assert_eq!(record.keys, ["p1"]);
    assert_eq!(
        (record.from, record.to),
        (AlarmState::Acknowledged, AlarmState::Alerting)
    );
    // The full alarm, siren continuous, waiting for a new acknowledgement.
    let out = alarm.outputs(t(100));
    assert_eq!(out.pattern, OutputPattern::Alarm);
    assert_eq!(out.strobe, Output::flashing(500));
    assert_eq!(out.siren, Output::Steady);
    assert_eq!(alarm.display(t(100)).mode, DisplayMode::Alarm);
    assert!(!alarm.display(t(100)).calls[0].summary.is_possible);
    // Escalation counts from the confirmation (it had been acknowledged).
    assert_eq!(alarm.next_deadline(), Some(t(140)));
    let late = alarm.handle(Event::Tick, t(140));
    assert_eq!(escalations(&late), [vec!["p1".to_string()]]);
    // Once real, it cannot be confirmed again.
    let twice = alarm.handle(confirm_by("Front desk"), t(150));
    assert_eq!(refusal(&twice), Some(&Refusal::NothingToConfirm));
}

#[test]
fn confirm_is_refused_without_a_possible_call() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    let idle = alarm.handle(confirm_by("kim"), t(0));
    assert_eq!(refusal(&idle), Some(&Refusal::NothingToConfirm));
    alarm.handle(raise("k1", real("Ann")), t(1));
    let only_real = alarm.handle(confirm_by("kim"), t(2));
    assert_eq!(refusal(&only_real), Some(&Refusal::NothingToConfirm));
    let unknown = alarm.handle(
        Event::Confirm {
            key: Some("nope".into()),
            source: Source::System,
            who: None,
            detail: Some("Graph emergency call event".into()),
        },
        t(3),
    );
    assert!(matches!(
        refusal(&unknown),
        Some(Refusal::UnknownCall { .. })
    ));
}

#[test]
fn a_second_source_confirms_one_call_by_key_and_says_what() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    alarm.handle(raise("p2", possible("Lee")), t(1));
    let effects = alarm.handle(
        Event::Confirm {
            key: Some("p2".into()),
            source: Source::System,
            who: None,
            detail: Some("Graph emergency call event 42".into()),
        },
        t(5),
    );
    let record = audits(&effects)[0];
    assert_eq!(record.keys, ["p2"]);
    assert_eq!(
        record.detail.as_deref(),
        Some("Graph emergency call event 42")
    );
    let levels: Vec<(String, bool)> = alarm
        .active_calls()
        .iter()
        .map(|c| (c.key.clone(), c.summary.is_possible))
        .collect();
    assert_eq!(levels, [("p1".into(), true), ("p2".into(), false)]);
    assert_eq!(alarm.outputs(t(5)).pattern, OutputPattern::Alarm);
}

#[test]
fn a_later_real_report_of_the_same_key_upgrades_instead_of_being_a_duplicate() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    let effects = alarm.handle(raise("p1", real("Kim Lee")), t(30));
    assert_eq!(refusal(&effects), None);
    let record = audits(&effects)[0];
    assert_eq!(
        (record.action, record.source),
        (AuditAction::Confirmed, Source::System)
    );
    assert!(record
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("corroborated")));
    assert_eq!(alarm.outputs(t(30)).pattern, OutputPattern::Alarm);
    assert!(alarm.outputs(t(30)).siren.is_on());
    // The report's text replaces the possible one's.
    let call = &alarm.active_calls()[0];
    assert_eq!(call.summary.caller_name.as_deref(), Some("Kim Lee"));
    assert_eq!(call.summary.dial_string.as_deref(), Some("911"));
    // Only once: a third report is a duplicate; a test report never upgrades.
    let third = alarm.handle(raise("p1", real("Kim Lee")), t(31));
    assert!(matches!(
        refusal(&third),
        Some(Refusal::DuplicateCall { .. })
    ));
    alarm.handle(raise("p2", possible("Lee")), t(32));
    let drill = CallSummary {
        is_test: true,
        ..real("Lee")
    };
    let test = alarm.handle(raise("p2", drill), t(33));
    assert!(matches!(
        refusal(&test),
        Some(Refusal::DuplicateCall { .. })
    ));
}

#[test]
fn a_real_report_after_a_possible_call_was_cleared_raises_it_again_once() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    alarm.handle(ack(), t(1));
    alarm.handle(clear(), t(2));
    let effects = alarm.handle(raise("p1", real("Kim")), t(60));
    assert_eq!(refusal(&effects), None);
    assert_eq!(actions(&effects), [AuditAction::CallRaised]);
    assert!(
        audits(&effects)[0].detail.is_some(),
        "says why it alerts again"
    );
    assert_eq!(alarm.outputs(t(60)).pattern, OutputPattern::Alarm);
    alarm.handle(ack(), t(61));
    alarm.handle(clear(), t(62));
    let again = alarm.handle(raise("p1", real("Kim")), t(63));
    assert!(matches!(
        refusal(&again),
        Some(Refusal::DuplicateCall { .. })
    ));
}

#[test]
fn an_unacknowledged_possible_call_escalates_its_notifications() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    let effects = alarm.handle(Event::Tick, t(120));
    assert_eq!(escalations(&effects), [vec!["p1".to_string()]]);
    // Escalating notifications is not the full alarm.
    assert_eq!(alarm.outputs(t(120)).pattern, OutputPattern::Possible);
    assert_eq!(alarm.outputs(t(120)).siren, Output::Off);
    // Corroborated later: the full alarm, but escalation stays once per episode.
    let confirmed = alarm.handle(
        Event::Confirm {
            key: Some("p1".into()),
            source: Source::System,
            who: None,
            detail: Some("Graph emergency call event".into()),
        },
        t(130),
    );
    assert_eq!(actions(&confirmed), [AuditAction::Confirmed]);
    assert_eq!(alarm.outputs(t(130)).pattern, OutputPattern::Alarm);
    assert!(escalations(&alarm.handle(Event::Tick, t(600))).is_empty());
}

#[test]
fn an_update_never_changes_the_level() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    alarm.handle(
        Event::CallUpdated {
            key: "p1".into(),
            summary: real("Kim (edited)"),
        },
        t(1),
    );
    assert!(alarm.active_calls()[0].summary.is_possible);
    assert_eq!(alarm.outputs(t(10)).pattern, OutputPattern::Possible);
    alarm.handle(confirm_by("kim"), t(11));
    alarm.handle(
        Event::CallUpdated {
            key: "p1".into(),
            summary: possible("Kim (edited again)"),
        },
        t(12),
    );
    assert!(!alarm.active_calls()[0].summary.is_possible);
    assert_eq!(alarm.outputs(t(12)).pattern, OutputPattern::Alarm);
}

fn json_roundtrip(state: &PersistedState) -> PersistedState {
    let text = serde_json::to_string(state).expect("serialises");
    serde_json::from_str(&text).expect("deserialises")
}

#[test]
fn restore_keeps_the_possible_level_and_its_upgrade() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    alarm.handle(raise("p1", possible("Kim")), t(0));
    alarm.handle(raise("p0", possible("Lee")), t(1));
    alarm.handle(ack(), t(2));
    alarm.handle(clear(), t(3));
    alarm.handle(raise("p1b", possible("Kim")), t(4));
    let (mut restored, _) = Alarm::restore(
        AlarmConfig::default(),
        json_roundtrip(&alarm.snapshot()),
        t(10),
    );
    assert_eq!(restored.outputs(t(10)).pattern, OutputPattern::Possible);
    assert_eq!(restored.outputs(t(10)).siren, Output::Off, "no burst again");
    // A cleared possible key is still upgradable after the restart, a possible redelivery not.
    let dup = restored.handle(raise("p0", possible("Lee")), t(11));
    assert!(matches!(refusal(&dup), Some(Refusal::DuplicateCall { .. })));
    let upgraded = restored.handle(raise("p0", real("Lee")), t(12));
    assert_eq!(actions(&upgraded), [AuditAction::CallRaised]);
    assert_eq!(restored.outputs(t(12)).pattern, OutputPattern::Alarm);
}

#[test]
fn a_store_written_before_the_possible_level_still_restores_and_deduplicates() {
    // The state as the previous version wrote it: no is_possible, message, waiting_since,
    // possible_siren_until or possible flag.
    let old = serde_json::json!({
        "version": 1,
        "calls": [{
            "key": "chat/1",
            "summary": {"caller_name": "Ann", "location": "Lobby", "dial_string": "911",
                        "callback_number": null, "is_test": false},
            "raised_at": "2025-01-01T00:00:00Z",
            "acknowledged": null
        }],
        "episode": {"alerting_since": "2025-01-01T00:00:00Z", "escalated": false,
                    "siren_since": "2025-01-01T00:00:00Z", "siren_silenced": false,
                    "acknowledged_at": null},
        "remembered": [{"key": "chat/0", "at": "2024-12-31T23:00:00Z"},
                       {"key": "chat/1", "at": "2025-01-01T00:00:00Z"}]
    });
    let stored: PersistedState = serde_json::from_value(old).expect("old store reads");
    let (mut alarm, _) = Alarm::restore(AlarmConfig::default(), stored, t(10));
    assert_eq!(alarm.state(), AlarmState::Alerting);
    assert_eq!(alarm.outputs(t(10)).pattern, OutputPattern::Alarm);
    for key in ["chat/0", "chat/1"] {
        let again = alarm.handle(raise(key, real("Ann")), t(11));
        assert!(
            matches!(refusal(&again), Some(Refusal::DuplicateCall { .. })),
            "{key} alerted twice"
        );
    }
}
