//! Which messages an alarm transition produces, for whom: pure, no IO, time passed in.
//!
//! * A raised call → `alarm` (`test` for a test call, `possible` for a possible emergency) to
//!   every recipient of that kind whose zones include the call's zone.
//! * A possible call confirmed (by a guard or a second source) → `alarm`, as if it had just been
//!   raised as an emergency.
//! * Acknowledged → `acknowledged`; cleared (by hand or timer) → `cleared`, to recipients who
//!   asked for them (PagerDuty by default: acknowledge and resolve its incident).
//! * Escalated (nobody acknowledged in time) → `escalation` to the `[[notify.escalation]]`
//!   list. The alarm never escalates test calls.
//! * Other transitions (updates, silence, troubles, lamp tests, restore) send nothing.
//!
//! A call whose zone is not known (its record was not found) goes to every recipient of the
//! kind, zone filters or not: a message too many beats a missed emergency.
//!
//! [`standing`] turns the calls active now into the transitions that made them (raised, and
//! acknowledged when they are), so a notifier that starts — or falls behind — after a call was
//! raised still sends its messages; the outbox keeps one message per call, channel, recipient
//! and kind, so what was queued before is not queued again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::config::{display_recipient, NotifyConfig};
use super::message_kind::MessageKind;
use super::templates::Templates;
use crate::alarm::{
    Acknowledgement, ActiveCall, AuditAction, AuditRecord, CallLevel, DisplayModel, Source,
};
use crate::alarm_task::AlarmNotice;
use crate::local_time::Zone;

/// What the store knows about a call beyond the alarm's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext {
    /// False when the call's record was not found: zone filters are then ignored.
    pub known: bool,
    pub zone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Which sources had reported the call when the notification was planned, in words
    /// ("emergency call events, then chat notifications"); empty when unknown.
    pub reported_by: String,
}

/// The facts of a message, for the channels that send structured data (webhook, PagerDuty,
/// Teams, Slack). Untrusted text from the chat message: whoever shows it escapes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    pub caller: Option<String>,
    pub callback_number: Option<String>,
    pub location: Option<String>,
    pub map_link: Option<String>,
    pub dial_string: Option<String>,
    pub zone: Option<String>,
    pub is_test: bool,
    /// A possible emergency: someone must read the message in Teams.
    #[serde(default)]
    pub is_possible: bool,
    /// The message text of a possible emergency.
    #[serde(default)]
    pub message: Option<String>,
    /// When the call was raised.
    pub raised_at: Option<DateTime<Utc>>,
    /// Who acknowledged or cleared, when that is the event.
    pub who: Option<String>,
    pub device: String,
    /// Which sources had reported the call ("emergency call events, then chat
    /// notifications"), when known.
    #[serde(default)]
    pub reported_by: Option<String>,
}

/// One message to put in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub call_key: Option<String>,
    pub channel: Channel,
    /// Address or number (e-mail, SMS); the label or channel name otherwise.
    pub recipient: String,
    pub kind: MessageKind,
    pub subject: String,
    pub body: String,
    pub details: Details,
}

/// Plans the messages of one transition. `calls` gives each call key's context; `offset` is
/// the local time zone the texts show.
pub fn plan(
    config: &NotifyConfig,
    templates: &Templates,
    device: &str,
    notice: &AlarmNotice,
    calls: &BTreeMap<String, CallContext>,
    zone: &Zone,
) -> Vec<Message> {
    let record = &notice.record;
    let kind_of = |call: &ActiveCall| match record.action {
        AuditAction::CallRaised => Some(match call.summary.level() {
            CallLevel::Emergency => MessageKind::Alarm,
            CallLevel::Possible => MessageKind::Possible,
            CallLevel::Test => MessageKind::Test,
        }),
        AuditAction::Confirmed => Some(MessageKind::Alarm),
        AuditAction::Escalated => Some(MessageKind::Escalation),
        AuditAction::Acknowledged => Some(MessageKind::Acknowledged),
        AuditAction::Cleared | AuditAction::AutoCleared => Some(MessageKind::Cleared),
        _ => None,
    };
    let mut messages = Vec::new();
    for call in &notice.calls {
        let Some(kind) = kind_of(call) else {
            continue;
        };
        let context = calls.get(&call.key).cloned().unwrap_or_default();
        let in_zone = |zones: &[String]| {
            zones.is_empty()
                || !context.known
                || context
                    .zone
                    .as_ref()
                    .is_none_or(|zone| zones.iter().any(|z| z.eq_ignore_ascii_case(zone)))
        };
        let targets: Vec<(Channel, Option<&str>)> = if kind == MessageKind::Escalation {
            config
                .escalation
                .iter()
                .filter(|r| in_zone(&r.zones))
                .map(|r| (r.channel, r.to.as_deref()))
                .collect()
        } else {
            config
                .recipients
                .iter()
                .filter(|r| r.kinds().contains(&kind) && in_zone(&r.zones))
                .map(|r| (r.channel, r.to.as_deref()))
                .collect()
        };
        if targets.is_empty() {
            continue;
        }
        let who = match kind {
            MessageKind::Acknowledged | MessageKind::Cleared => Some(
                record
                    .who
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", record.source).to_lowercase()),
            ),
            _ => None,
        };
        let details = details(call, &context, who, device);
        let vars = variables(kind, &details, zone);
        let (subject, body) = templates.render(kind, &vars);
        let mut seen = Vec::new();
        for (channel, to) in targets {
            let recipient = display_recipient(channel, to);
            if seen.contains(&(channel, recipient.clone())) {
                continue; // listed twice (two zones): one message
            }
            seen.push((channel, recipient.clone()));
            messages.push(Message {
                call_key: Some(call.key.clone()),
                channel,
                recipient,
                kind,
                subject: subject.clone(),
                body: body.clone(),
                details: details.clone(),
            });
        }
    }
    messages
}

/// The transitions behind the calls active in `display`, oldest call first: each call's
/// raise, then (for an acknowledged call) its acknowledgement. Marked [`Source::Restore`]:
/// they are replayed, not new.
pub fn standing(display: &DisplayModel, now: DateTime<Utc>) -> Vec<AlarmNotice> {
    let mut calls: Vec<_> = display.calls.iter().collect();
    calls.sort_by_key(|c| c.raised_at);
    let mut notices = Vec::new();
    for view in calls {
        let call = ActiveCall {
            key: view.key.clone(),
            summary: view.summary.clone(),
            raised_at: view.raised_at,
            acknowledged: view.acknowledged.then(|| Acknowledgement {
                at: now,
                source: Source::Restore,
                who: view.acknowledged_by.clone(),
            }),
            waiting_since: None,
        };
        let record = |action, at, who: Option<String>| AuditRecord {
            at,
            source: Source::Restore,
            who,
            action,
            from: display.state,
            to: display.state,
            keys: vec![view.key.clone()],
            detail: None,
        };
        notices.push(AlarmNotice {
            record: record(AuditAction::CallRaised, view.raised_at, None),
            calls: vec![call.clone()],
        });
        if view.acknowledged {
            notices.push(AlarmNotice {
                record: record(
                    AuditAction::Acknowledged,
                    now,
                    Some(
                        view.acknowledged_by
                            .clone()
                            .unwrap_or_else(|| "unknown".into()),
                    ),
                ),
                calls: vec![call],
            });
        }
    }
    notices
}

fn details(call: &ActiveCall, context: &CallContext, who: Option<String>, device: &str) -> Details {
    let summary = &call.summary;
    Details {
        caller: summary.caller_name.clone(),
        callback_number: summary.callback_number.clone(),
        location: summary.location.clone(),
        map_link: map_link(context, summary.location.as_deref()),
        dial_string: summary.dial_string.clone(),
        zone: context.zone.clone(),
        is_test: summary.is_test,
        is_possible: summary.level() == CallLevel::Possible,
        message: summary
            .message
            .clone()
            .filter(|_| summary.level() == CallLevel::Possible),
        raised_at: Some(call.raised_at),
        who,
        device: device.to_string(),
        reported_by: Some(context.reported_by.clone()).filter(|r| !r.is_empty()),
    }
}

/// OpenStreetMap at the coordinates when known, else a search for the location text.
pub fn map_link(context: &CallContext, location: Option<&str>) -> Option<String> {
    if let (Some(lat), Some(lon)) = (context.latitude, context.longitude) {
        return Some(format!(
            "https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=18/{lat:.6}/{lon:.6}"
        ));
    }
    let text = location?.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    reqwest::Url::parse_with_params("https://www.openstreetmap.org/search", &[("query", text)])
        .ok()
        .map(String::from)
}

/// The template variables of a message.
pub fn variables(
    kind: MessageKind,
    details: &Details,
    zone: &Zone,
) -> BTreeMap<&'static str, String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    BTreeMap::from([
        (
            "test_notice",
            if details.is_test {
                "THIS IS A TEST. ".to_string()
            } else {
                String::new()
            },
        ),
        (
            "possible_notice",
            if details.is_possible {
                "POSSIBLE EMERGENCY — CHECK TEAMS. ".to_string()
            } else {
                String::new()
            },
        ),
        ("message", text(&details.message)),
        ("event", kind.name().to_string()),
        ("caller", text(&details.caller)),
        ("callback", text(&details.callback_number)),
        (
            "location",
            text(&details.location)
                .lines()
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("map_link", text(&details.map_link)),
        ("dial_string", text(&details.dial_string)),
        ("zone", text(&details.zone)),
        (
            "time",
            details
                .raised_at
                .map(|t| zone.format(t))
                .unwrap_or_default(),
        ),
        ("who", text(&details.who)),
        ("device", details.device.clone()),
        ("reported_by", text(&details.reported_by)),
    ])
}
