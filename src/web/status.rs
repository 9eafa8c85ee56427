//! The appliance's status in words and numbers, as the dashboard, `/api/health` and
//! `/metrics` show it: sign-in, subscription, hub connection, last notification, outbox,
//! alarm and lamps. Read from the status feeds; never a secret.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alarm::{AlarmState, Output};
use crate::graph::call_events::CallEventsStatus;
use crate::graph::reconcile::PollStatus;
use crate::graph::tokens::AuthStatus;
use crate::health::paths::PathHealth;
use crate::web::context::ConsoleContext;
use crate::wording::count;

/// One line of the status table.
#[derive(Debug, Clone, Serialize)]
pub struct StatusLine {
    pub name: &'static str,
    /// "ok", "warn", "fault" or "off" (the page's colour).
    pub level: &'static str,
    pub text: String,
}

/// Everything the status table and health endpoint show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub device_id: String,
    pub alarm: AlarmState,
    pub lines: Vec<StatusLine>,
    pub strobe: bool,
    pub siren: bool,
    pub trouble: bool,
    pub troubles: usize,
    pub outbox_pending: usize,
    pub calls: usize,
    pub last_notification: Option<DateTime<Utc>>,
    pub hub_connected: bool,
    /// Notifications waiting in the hub for this appliance, when known.
    pub hub_lag: Option<i64>,
    pub signed_in: bool,
    pub subscription_expires: Option<DateTime<Utc>>,
    /// Per path a call can come by: calls reported, the last one, calls missed.
    pub paths: Vec<PathHealth>,
    /// The reconciliation poll; `None` without the cloud feed.
    pub poll: Option<PollStatus>,
    /// The emergency-event subscriptions, per policy; `None` without the cloud feed.
    pub call_events: Option<CallEventsStatus>,
}

impl Status {
    /// Healthy: no trouble and every configured feed is up.
    pub fn healthy(&self) -> bool {
        self.troubles == 0 && !self.lines.iter().any(|l| l.level == "fault")
    }
}

/// Reads the status now.
pub fn read(context: &ConsoleContext, now: DateTime<Utc>) -> Status {
    let view = context.alarm.view().borrow().clone();
    let mut lines = Vec::new();
    let auth = context.status.auth.as_ref().map(|a| a.borrow().clone());
    let signed_in = matches!(auth, Some(AuthStatus::SignedIn { .. }));
    lines.push(match auth {
        None => line(
            "Microsoft sign-in",
            "off",
            "not configured (no tenant / client id)".into(),
        ),
        Some(AuthStatus::SignedOut) => line(
            "Microsoft sign-in",
            "fault",
            "the service account is not signed in".into(),
        ),
        Some(AuthStatus::SigningIn { prompt }) => line(
            "Microsoft sign-in",
            "warn",
            format!(
                "waiting: open {} and enter {}",
                prompt.verification_uri, prompt.user_code
            ),
        ),
        Some(AuthStatus::SignedIn {
            access_expires_at, ..
        }) => line(
            "Microsoft sign-in",
            "ok",
            format!(
                "signed in (token valid until {})",
                crate::local_time::current().format_time(access_expires_at)
            ),
        ),
        Some(AuthStatus::SignInRequired { sentence, .. }) => {
            line("Microsoft sign-in", "fault", sentence)
        }
        Some(AuthStatus::Retrying { sentence, .. }) => line("Microsoft sign-in", "warn", sentence),
    });
    let subscription = context
        .status
        .subscription
        .as_ref()
        .map(|s| s.borrow().clone());
    let subscription_expires = subscription.as_ref().and_then(|s| s.expires_at);
    lines.push(match &subscription {
        None => line(
            "Graph subscription",
            "off",
            "none until the service account is signed in".into(),
        ),
        Some(s) => match (&s.subscription_id, &s.problem, s.expires_at) {
            (_, Some(problem), _) => line("Graph subscription", "fault", problem.clone()),
            (Some(_), None, Some(expires)) => line(
                "Graph subscription",
                if expires - now < chrono::Duration::hours(1) {
                    "warn"
                } else {
                    "ok"
                },
                format!(
                    "active, expires {}",
                    crate::local_time::current().format_minutes(expires)
                ),
            ),
            _ => line("Graph subscription", "warn", "being created".into()),
        },
    });
    if let Some(warning) = subscription.as_ref().and_then(|s| s.quota_warning.clone()) {
        lines.push(line("Graph quota", "warn", warning));
    }
    let hub_connected = context.status.hub.connected.load(Ordering::Relaxed);
    let hub_error = context
        .status
        .hub
        .last_error
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let lag = context.status.hub.lag();
    lines.push(match (hub_connected, hub_error) {
        (true, _) => match lag {
            Some(0) => line("Event Hub", "ok", "connected, nothing waiting".into()),
            Some(lag) => line(
                "Event Hub",
                if lag > 100 { "warn" } else { "ok" },
                format!(
                    "connected, {} waiting (lag)",
                    count(lag.unsigned_abs(), "notification", "notifications")
                ),
            ),
            None => line("Event Hub", "ok", "connected".into()),
        },
        (false, Some(error)) => line("Event Hub", "fault", format!("not connected: {error}")),
        (false, None) => line("Event Hub", "off", "not connected".into()),
    });
    let counters = context.counters.snapshot();
    let last_ms = context.counters.last_record_ms.load(Ordering::Relaxed);
    let last_notification = (last_ms > 0)
        .then(|| DateTime::<Utc>::from_timestamp_millis(last_ms))
        .flatten();
    lines.push(line(
        "Last notification",
        "ok",
        match last_notification {
            Some(at) => format!(
                "{} ({}, {} rejected, {})",
                crate::local_time::shown(at),
                count(counters.records, "record", "records"),
                counters.rejected_records + counters.rejected_items,
                count(counters.duplicates, "duplicate", "duplicates")
            ),
            None => "none since start".into(),
        },
    ));
    let poll = context.status.poll.as_ref().map(|p| p.borrow().clone());
    if let Some(poll) = &poll {
        lines.push(poll_line(poll));
    }
    let call_events = context
        .status
        .call_events
        .as_ref()
        .map(|c| c.borrow().clone());
    for policy in call_events.iter().flat_map(|c| &c.policies) {
        lines.push(call_events_line(policy));
    }
    let paths = context.health.borrow().paths.clone();
    for path in &paths {
        lines.push(path_line(path));
    }
    let outbox_pending = context
        .store
        .outbox
        .iter()
        .filter(|(_, v)| {
            v.as_ref()
                .is_ok_and(|v| v.get("status").and_then(|s| s.as_str()) == Some("pending"))
        })
        .count();
    lines.push(line(
        "Outbox",
        if outbox_pending > 0 { "warn" } else { "ok" },
        format!(
            "{} waiting to be delivered",
            count(outbox_pending as u64, "message", "messages")
        ),
    ));
    let mqtt = context.status.mqtt.as_ref().map(|m| m.borrow().clone());
    lines.push(match mqtt {
        None => line("MQTT", "off", "not configured".into()),
        Some(m) if m.connected => line(
            "MQTT",
            "ok",
            format!(
                "connected to {} ({} rejected, {} dropped)",
                m.broker,
                count(m.commands_rejected, "command", "commands"),
                count(m.events_dropped, "event", "events")
            ),
        ),
        Some(m) => line(
            "MQTT",
            "fault",
            format!(
                "not connected to {}: {}",
                m.broker,
                m.last_error.as_deref().unwrap_or("connecting")
            ),
        ),
    });
    for trouble in &view.display.troubles {
        lines.push(line(
            "Trouble",
            "fault",
            format!("{}: {}", trouble.component, trouble.detail),
        ));
    }
    Status {
        device_id: context.device_id.clone(),
        alarm: view.state,
        strobe: view.outputs.strobe != Output::Off,
        siren: view.outputs.siren != Output::Off,
        trouble: view.outputs.trouble != Output::Off,
        troubles: view.display.troubles.len(),
        outbox_pending,
        calls: context.store.calls.len(),
        last_notification,
        hub_connected,
        hub_lag: lag,
        signed_in,
        subscription_expires,
        lines,
        paths,
        poll,
        call_events,
    }
}

/// One emergency calling policy's subscription, its refusal in words at once (the trouble
/// follows after the grace period).
fn call_events_line(policy: &crate::graph::call_events::PolicyStatus) -> StatusLine {
    let name = "Emergency call events";
    match (&policy.problem, &policy.expires_at) {
        (Some(problem), _) => line(name, "fault", format!("{}: {problem}", policy.policy)),
        (None, Some(expires)) => line(
            name,
            "ok",
            format!(
                "{}: subscribed until {}",
                policy.policy,
                crate::local_time::shown(*expires)
            ),
        ),
        (None, None) => line(name, "warn", format!("{}: subscribing", policy.policy)),
    }
}

fn poll_line(poll: &PollStatus) -> StatusLine {
    let name = "Chat poll";
    match (&poll.problem, poll.last_ok) {
        (Some(problem), _) => line(name, "fault", problem.clone()),
        (None, Some(at)) => line(
            name,
            "ok",
            format!(
                "every {} s, last read {} ({} messages found that push had not delivered)",
                poll.every_secs,
                at.format("%H:%M:%S UTC"),
                poll.found
            ),
        ),
        (None, None) if poll.every_secs == 0 => line(
            name,
            "off",
            "not running (needs sign-in, a subscription and the Event Hub)".into(),
        ),
        (None, None) => line(name, "warn", "first read under way".into()),
    }
}

fn path_line(path: &PathHealth) -> StatusLine {
    let name = match path.path {
        crate::calls::Path::ChatNotification => "Calls by chat notification",
        crate::calls::Path::ChatPoll => "Calls by chat poll",
        crate::calls::Path::CallEvent => "Calls by emergency call event",
    };
    let last = path.last_event.map_or_else(
        || "none yet".to_string(),
        |at| format!("last {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
    );
    line(
        name,
        if path.missed > 0 { "warn" } else { "ok" },
        format!("{} calls, {last}, {} missed", path.events, path.missed),
    )
}

fn line(name: &'static str, level: &'static str, text: String) -> StatusLine {
    StatusLine { name, level, text }
}
