//! `/`: the dashboard — the active alarm with its Acknowledge button, the lamps, the system
//! status and the display mirror. `/live` is the part the page reloads when the server-sent
//! events say something changed; `/display.png` is the mirror; `/acknowledge` acknowledges
//! every active call in the logged-in user's name; `/confirm` makes every active possible
//! emergency the full alarm in the logged-in user's name (a guard read the message in Teams).

use std::sync::Arc;

use askama::Template;
use chrono::Utc;
use warp::http::header;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{csrf_ok, time, Form, Layout};
use crate::alarm::{AlarmState, CallLevel, Event, Source};
use crate::web::records::call_id;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};
use crate::web::status::{self, StatusLine};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    /// The rendered (escaped) `live.html`.
    live: String,
    demo: bool,
}

/// One active call as the dashboard lists it.
struct ActiveCallRow {
    id: String,
    caller: String,
    location: String,
    dial: String,
    callback: Option<String>,
    raised: String,
    is_test: bool,
    /// A possible emergency: the guard must read the message in Teams.
    is_possible: bool,
    /// The message text of a possible call.
    message: Option<String>,
    acknowledged: bool,
    acknowledged_by: Option<String>,
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePart {
    state: &'static str,
    headline: String,
    /// The most urgent call is a possible emergency (the card's colour and wording).
    possible: bool,
    alerting: bool,
    /// A possible call is active (acknowledged or not): offer to confirm it.
    confirmable: bool,
    calls: Vec<ActiveCallRow>,
    csrf: String,
    strobe: bool,
    siren: bool,
    trouble: bool,
    status: Vec<StatusLine>,
}

/// The whole dashboard.
pub fn show(web: &Web, caller: &Caller) -> Response {
    let session = match web.require(caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let live = match live_part(web, &session).render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "console: the live part could not be rendered");
            String::new()
        }
    };
    respond::page(&DashboardPage {
        layout: Layout::new("Dashboard", "dashboard", &session),
        live,
        demo: web.demo_call.is_some(),
    })
}

/// The part that follows the alarm (reloaded by the page on every event).
pub fn live(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Guard, Audience::Page) {
        Ok(session) => respond::page(&live_part(web, &session)),
        Err(refused) => refused,
    }
}

fn live_part(web: &Web, session: &Session) -> LivePart {
    let view = web.context.alarm.view().borrow().clone();
    let status = status::read(&web.context, Utc::now());
    let calls = view
        .display
        .calls
        .iter()
        .map(|c| ActiveCallRow {
            id: call_id(&c.key),
            caller: c
                .summary
                .caller_name
                .clone()
                .unwrap_or_else(|| "Unknown caller".into()),
            location: c
                .summary
                .location
                .clone()
                .unwrap_or_else(|| "Location not given".into()),
            dial: c.summary.dial_string.clone().unwrap_or_else(|| "?".into()),
            callback: c.summary.callback_number.clone(),
            raised: time(c.raised_at),
            is_test: c.summary.is_test,
            is_possible: c.summary.level() == CallLevel::Possible,
            message: c.summary.message.clone(),
            acknowledged: c.acknowledged,
            acknowledged_by: c.acknowledged_by.clone(),
        })
        .collect::<Vec<ActiveCallRow>>();
    let most_urgent = view.display.calls.iter().map(|c| c.summary.level()).min();
    LivePart {
        state: match view.state {
            AlarmState::Idle => "idle",
            AlarmState::Alerting => "alerting",
            AlarmState::Acknowledged => "acknowledged",
        },
        headline: view.display.headline.clone(),
        possible: most_urgent == Some(CallLevel::Possible),
        alerting: view.state == AlarmState::Alerting,
        confirmable: calls.iter().any(|c| c.is_possible),
        calls,
        csrf: session.csrf.clone(),
        strobe: status.strobe,
        siren: status.siren,
        trouble: status.trouble,
        status: status.lines,
    }
}

/// Acknowledges every active call as the logged-in user.
pub async fn acknowledge(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    tracing::info!(user = session.user, "console: acknowledge");
    web.context
        .alarm
        .send(Event::Acknowledge {
            source: Source::Web,
            who: Some(session.user.clone()),
        })
        .await;
    respond::redirect("/")
}

/// Makes every active possible emergency the full alarm, as the logged-in user.
pub async fn confirm(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    tracing::warn!(user = session.user, "console: possible emergency confirmed");
    web.context
        .alarm
        .send(Event::Confirm {
            key: None,
            source: Source::Web,
            who: Some(session.user.clone()),
            detail: Some("confirmed on the console".into()),
        })
        .await;
    respond::redirect("/")
}

/// `beacon demo`: plays a demonstration call.
pub async fn demo_call(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    match &web.demo_call {
        Some(play) => {
            let _ = play.try_send(());
            respond::redirect("/")
        }
        None => respond::text(
            StatusCode::NOT_FOUND,
            "Only `beacon demo` plays demonstration calls.",
        ),
    }
}

/// The display as PNG.
pub fn display_png(web: &Web, caller: &Caller) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Page) {
        return refused;
    }
    let png = web.context.display_png.borrow().clone();
    if png.is_empty() {
        return respond::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The display has not been drawn yet.",
        );
    }
    warp::reply::with_header(png, header::CONTENT_TYPE, "image/png").into_response()
}
