//! The JSON Beacon publishes (pure): alarm state, active call, last call, troubles, one event
//! per transition and command results. These shapes are an interface — a security office may
//! wire door releases or lights to them — so fields are only ever added, never renamed or
//! removed, and a field that is unknown is `null`, not missing. The README's MQTT section
//! documents each one.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alarm::{
    ActiveCall, AlarmState, AuditAction, CallLevel, CallSummary, CallView, DisplayMode, Source,
};
use crate::alarm_task::{AlarmNotice, AlarmView};
use crate::calls::CallRecord;
use crate::health::PathHealth;

/// `…/alarm` (retained).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmPayload {
    /// `idle`, `alerting` (a call is not acknowledged) or `acknowledged`.
    pub state: AlarmState,
    /// What the display is about: `ready`, `alarm`, `possible`, `test`, `lamp_test` or
    /// `trouble`.
    pub mode: DisplayMode,
    pub headline: String,
    /// A real emergency call (not possible, not test) is active, acknowledged or not.
    pub emergency: bool,
    /// A possible emergency is active, acknowledged or not, and no real one: someone must
    /// read the message in Teams.
    pub possible: bool,
    /// Only test calls are active.
    pub test: bool,
    /// A call is active and not acknowledged.
    pub alerting: bool,
    /// Calls are active and all are acknowledged.
    pub acknowledged: bool,
    /// Number of active calls.
    pub calls: usize,
    /// The outputs right now.
    pub strobe: bool,
    pub siren: bool,
    /// An unacknowledged call wants the siren but it was silenced.
    pub siren_silenced: bool,
    pub lamp_test: bool,
    /// Any trouble is active (details on `…/trouble`).
    pub trouble: bool,
}

/// One call as published (in `…/call`, `…/last_call` and events). Kari's Law content: the
/// call-back number and the location as conveyed to the PSAP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallPayload {
    /// `chat-id/message-id`, the key in the appliance's call log.
    pub key: String,
    pub caller: Option<String>,
    pub location: Option<String>,
    pub callback_number: Option<String>,
    pub dial_string: Option<String>,
    pub test: bool,
    /// `emergency`, `possible` or `test`.
    pub level: CallLevel,
    /// A possible emergency: the message text to judge (`null` for other calls).
    pub message: Option<String>,
    pub raised_at: DateTime<Utc>,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
}

/// `…/call` (retained): the most urgent active call, or `active: false`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveCallPayload {
    pub active: bool,
    /// Number of active calls.
    pub count: usize,
    /// The most urgent one: unacknowledged before acknowledged, real before possible before
    /// test, newest first.
    pub call: Option<CallPayload>,
}

/// `…/last_call` (retained): the last call raised, kept after it is cleared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCallPayload {
    #[serde(flatten)]
    pub call: CallPayload,
    /// Seconds from the Teams message being posted to Beacon recognising it; `null` until the
    /// call record is written.
    pub latency_seconds: Option<f64>,
    /// WGS84 degrees, when the message carried coordinates.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Which sources reported the call so far, first first: `chat_notification`, `chat_poll`,
    /// `call_event` (empty until the call record is written).
    pub sources: Vec<&'static str>,
}

/// `…/paths` (retained): each path a call comes by, as the health supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathsPayload {
    pub paths: Vec<PathPayload>,
}

/// One path's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathPayload {
    /// `chat_notification`, `chat_poll` or `call_event`.
    pub path: &'static str,
    /// Calls this path reported (first or later).
    pub calls: u64,
    /// When it last reported one; `null` before the first.
    pub last_call: Option<DateTime<Utc>>,
    /// Calls another path reported and this one did not within the window (only paths held
    /// to every call: chat notifications, call events while their subscription is live).
    pub missed: u64,
}

/// `…/paths` for the supervisor's figures.
pub fn paths(figures: &[PathHealth]) -> PathsPayload {
    PathsPayload {
        paths: figures
            .iter()
            .map(|p| PathPayload {
                path: p.path.name(),
                calls: p.events,
                last_call: p.last_event,
                missed: p.missed,
            })
            .collect(),
    }
}

/// `…/trouble` (retained).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TroublePayload {
    pub active: bool,
    pub troubles: Vec<TroubleEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TroubleEntry {
    /// `hub`, `mqtt`, `display`, `strobe` …
    pub component: String,
    pub detail: String,
    pub since: DateTime<Utc>,
}

/// `…/event` (not retained): one per alarm transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPayload {
    /// The same as `action`: the key Home Assistant's MQTT `event` entity reads.
    pub event_type: AuditAction,
    pub device: String,
    /// `call_raised`, `call_updated`, `confirmed` (a possible call became the full alarm),
    /// `acknowledged`, `silenced`, `auto_silenced`,
    /// `escalated`, `cleared`, `auto_cleared`, `trouble_raised`, `trouble_cleared`,
    /// `lamp_test_started`, `lamp_test_ended` or `restored`.
    pub action: AuditAction,
    pub at: DateTime<Utc>,
    /// `button`, `web`, `mqtt`, `timer`, `system` or `restore`.
    pub source: Source,
    pub who: Option<String>,
    pub from: AlarmState,
    pub to: AlarmState,
    pub keys: Vec<String>,
    pub detail: Option<String>,
    /// The calls concerned, as they were at the transition.
    pub calls: Vec<CallPayload>,
}

/// `…/command/result` (not retained).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandResult {
    /// The topic's command name (cut to 32 characters).
    pub command: String,
    /// `done`, `refused` (valid, but the alarm had nothing to do) or `rejected` (invalid,
    /// unknown or disabled).
    pub status: CommandStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandStatus {
    Done,
    Refused,
    Rejected,
}

/// The alarm state of `view`.
pub fn alarm(view: &AlarmView) -> AlarmPayload {
    let display = &view.display;
    let level = display.calls.iter().map(|c| c.summary.level()).min();
    AlarmPayload {
        state: view.state,
        mode: display.mode,
        headline: display.headline.clone(),
        emergency: level == Some(CallLevel::Emergency),
        possible: level == Some(CallLevel::Possible),
        test: level == Some(CallLevel::Test),
        alerting: view.state == AlarmState::Alerting,
        acknowledged: view.state == AlarmState::Acknowledged,
        calls: display.calls.len(),
        strobe: view.outputs.strobe.is_on(),
        siren: view.outputs.siren.is_on(),
        siren_silenced: display.siren_silenced,
        lamp_test: display.mode == DisplayMode::LampTest,
        trouble: !display.troubles.is_empty(),
    }
}

/// The most urgent active call of `view`.
pub fn active_call(view: &AlarmView) -> ActiveCallPayload {
    let calls = &view.display.calls;
    ActiveCallPayload {
        active: !calls.is_empty(),
        count: calls.len(),
        call: calls.first().map(from_view),
    }
}

/// The troubles of `view`.
pub fn trouble(view: &AlarmView) -> TroublePayload {
    let troubles: Vec<TroubleEntry> = view
        .display
        .troubles
        .iter()
        .map(|t| TroubleEntry {
            component: t.component.clone(),
            detail: t.detail.clone(),
            since: t.since,
        })
        .collect();
    TroublePayload {
        active: !troubles.is_empty(),
        troubles,
    }
}

/// The event for `notice`.
pub fn event(device: &str, notice: &AlarmNotice) -> EventPayload {
    let record = &notice.record;
    EventPayload {
        event_type: record.action,
        device: device.to_string(),
        action: record.action,
        at: record.at,
        source: record.source,
        who: record.who.clone(),
        from: record.from,
        to: record.to,
        keys: record.keys.clone(),
        detail: record.detail.clone(),
        calls: notice.calls.iter().map(from_active).collect(),
    }
}

/// `…/last_call` for `call`, with the latency and coordinates of its record once written.
pub fn last_call(call: &ActiveCall, record: Option<&CallRecord>) -> LastCallPayload {
    let latency_seconds = record.map(|r| {
        let millis = (r.recognised_at - r.call.created).num_milliseconds().max(0);
        // Whole milliseconds as seconds; i64 → f64 is exact below 2^53 ms (285 000 years).
        millis as f64 / 1000.0
    });
    LastCallPayload {
        call: from_active(call),
        latency_seconds,
        latitude: record.and_then(|r| r.call.location.latitude),
        longitude: record.and_then(|r| r.call.location.longitude),
        sources: record.map_or_else(Vec::new, |r| {
            let mut sightings = r.sources.clone();
            sightings.sort_by_key(|s| s.at);
            sightings.iter().map(|s| s.path.name()).collect()
        }),
    }
}

/// The call of `notice` whose `…/last_call` should be published: the raised or updated call.
pub fn last_call_of(notice: &AlarmNotice) -> Option<&ActiveCall> {
    match notice.record.action {
        AuditAction::CallRaised | AuditAction::CallUpdated => notice.calls.last(),
        _ => None,
    }
}

/// JSON bytes of a payload.
pub fn to_json<T: Serialize>(payload: &T) -> Vec<u8> {
    // These types are plain structs with string keys: serialising cannot fail.
    serde_json::to_vec(payload).unwrap_or_else(|_| b"{}".to_vec())
}

/// The message text of a possible call; other calls publish `null`.
fn message_of(summary: &CallSummary) -> Option<String> {
    if summary.level() == CallLevel::Possible {
        summary.message.clone()
    } else {
        None
    }
}

fn from_view(call: &CallView) -> CallPayload {
    CallPayload {
        key: call.key.clone(),
        caller: call.summary.caller_name.clone(),
        location: call.summary.location.clone(),
        callback_number: call.summary.callback_number.clone(),
        dial_string: call.summary.dial_string.clone(),
        test: call.summary.is_test,
        level: call.summary.level(),
        message: message_of(&call.summary),
        raised_at: call.raised_at,
        acknowledged: call.acknowledged,
        acknowledged_by: call.acknowledged_by.clone(),
    }
}

fn from_active(call: &ActiveCall) -> CallPayload {
    CallPayload {
        key: call.key.clone(),
        caller: call.summary.caller_name.clone(),
        location: call.summary.location.clone(),
        callback_number: call.summary.callback_number.clone(),
        dial_string: call.summary.dial_string.clone(),
        test: call.summary.is_test,
        level: call.summary.level(),
        message: message_of(&call.summary),
        raised_at: call.raised_at,
        acknowledged: call.acknowledged.is_some(),
        acknowledged_by: call.acknowledged.as_ref().and_then(|a| a.who.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{Alarm, AlarmConfig, CallSummary, Event};
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    fn view(alarm: &Alarm, now: DateTime<Utc>) -> AlarmView {
        AlarmView {
            state: alarm.state(),
            outputs: alarm.outputs(now),
            display: alarm.display(now),
        }
    }

    fn summary(test: bool) -> CallSummary {
        CallSummary {
            caller_name: Some("Jordan Rivera".into()),
            location: Some("725 Example Street, Floor 4".into()),
            dial_string: Some(if test { "933" } else { "911" }.into()),
            callback_number: Some("+14255550100".into()),
            is_test: test,
            ..CallSummary::default()
        }
    }

    #[test]
    fn an_idle_alarm_is_all_off() {
        let alarm = Alarm::new(AlarmConfig::default());
        let v = view(&alarm, at(0));
        let json = serde_json::to_value(alarm_payload(&v)).unwrap_or_default();
        assert_eq!(json["state"], "idle");
        assert_eq!(json["mode"], "ready");
        assert_eq!(json["emergency"], false);
        assert_eq!(json["alerting"], false);
        assert_eq!(json["calls"], 0);
        let call = serde_json::to_value(active_call(&v)).unwrap_or_default();
        assert_eq!(
            call,
            serde_json::json!({"active": false, "count": 0, "call": null})
        );
        let trouble = serde_json::to_value(trouble(&v)).unwrap_or_default();
        assert_eq!(
            trouble,
            serde_json::json!({"active": false, "troubles": []})
        );
    }

    fn alarm_payload(v: &AlarmView) -> AlarmPayload {
        alarm(v)
    }

    #[test]
    fn a_real_call_is_an_emergency_with_kari_s_law_content() {
        let mut alarm = Alarm::new(AlarmConfig::default());
        alarm.handle(
            Event::CallRaised {
                key: "chat/1".into(),
                summary: summary(false),
            },
            at(0),
        );
        let v = view(&alarm, at(3));
        let state = alarm_payload(&v);
        assert!(state.emergency && state.alerting && state.strobe && state.siren);
        assert!(!state.test && !state.acknowledged);
        let call = serde_json::to_value(active_call(&v)).unwrap_or_default();
        assert_eq!(call["active"], true);
        assert_eq!(call["call"]["caller"], "Jordan Rivera");
        assert_eq!(call["call"]["callback_number"], "+14255550100");
        assert_eq!(call["call"]["location"], "725 Example Street, Floor 4");
        assert_eq!(call["call"]["dial_string"], "911");

        alarm.handle(
            Event::Acknowledge {
                source: Source::Mqtt,
                who: Some("kim".into()),
            },
            at(5),
        );
        let v = view(&alarm, at(6));
        let state = alarm_payload(&v);
        assert!(state.emergency && state.acknowledged && !state.alerting);
        assert_eq!(
            active_call(&v).call.and_then(|c| c.acknowledged_by),
            Some("kim".into())
        );
    }

    #[test]
    fn a_test_call_is_not_an_emergency() {
        let mut alarm = Alarm::new(AlarmConfig::default());
        alarm.handle(
            Event::CallRaised {
                key: "chat/t".into(),
                summary: summary(true),
            },
            at(0),
        );
        let state = alarm_payload(&view(&alarm, at(1)));
        assert!(state.test && state.alerting && !state.emergency);
        assert_eq!(state.headline, "THIS IS A TEST");
    }

    #[test]
    fn troubles_are_listed() {
        let mut alarm = Alarm::new(AlarmConfig::default());
        alarm.handle(
            Event::TroubleRaised {
                component: "mqtt".into(),
                detail: "broker unreachable".into(),
            },
            at(0),
        );
        let v = view(&alarm, at(1));
        assert!(alarm_payload(&v).trouble);
        let json = serde_json::to_value(trouble(&v)).unwrap_or_default();
        assert_eq!(json["active"], true);
        assert_eq!(json["troubles"][0]["component"], "mqtt");
        assert_eq!(json["troubles"][0]["detail"], "broker unreachable");
    }

    #[test]
    fn an_event_carries_the_transition_and_its_calls() {
        let notice = AlarmNotice {
            record: crate::alarm::AuditRecord {
                at: at(0),
                source: Source::System,
                who: None,
                action: AuditAction::CallRaised,
                from: AlarmState::Idle,
                to: AlarmState::Alerting,
                keys: vec!["chat/1".into()],
                detail: None,
            },
            calls: vec![ActiveCall {
                key: "chat/1".into(),
                summary: summary(false),
                raised_at: at(0),
                acknowledged: None,
                waiting_since: None,
            }],
        };
        let json = serde_json::to_value(event("desk-1", &notice)).unwrap_or_default();
        assert_eq!(json["device"], "desk-1");
        assert_eq!(json["action"], "call_raised");
        assert_eq!(json["source"], "system");
        assert_eq!(json["from"], "idle");
        assert_eq!(json["to"], "alerting");
        assert_eq!(json["calls"][0]["callback_number"], "+14255550100");
        assert_eq!(json["calls"][0]["location"], "725 Example Street, Floor 4");
        assert_eq!(json["detail"], serde_json::Value::Null);

        let raised = last_call_of(&notice).cloned();
        let last = raised.as_ref().map(|c| last_call(c, None));
        let json = serde_json::to_value(last).unwrap_or_default();
        assert_eq!(json["caller"], "Jordan Rivera");
        assert_eq!(json["latency_seconds"], serde_json::Value::Null);
        assert_eq!(json["latitude"], serde_json::Value::Null);
    }
}
