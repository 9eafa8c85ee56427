//! `/api/events`: server-sent events for the dashboard. `alarm` on every alarm transition
//! (the audit record: action, who, states, keys), `view` when the lamps or display model
//! change, `display` when the display PNG is redrawn. The page reloads its live part on each.
//! A follower that falls behind the alarm's notices gets a `resync` event (and a log line):
//! the live part it then reloads is the whole current state, so nothing shown is lost.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use warp::filters::sse::Event;
use warp::reply::{Reply, Response};

use super::respond::Audience;
use super::session::Role;
use super::state::{Caller, Web};
use crate::alarm_task::AlarmNotice;

pub fn events(web: &Web, caller: &Caller) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    let stream = stream_of(web);
    warp::sse::reply(
        warp::sse::keep_alive()
            .interval(Duration::from_secs(15))
            .stream(stream),
    )
    .into_response()
}

/// The merged event stream (no alarm handle inside: only the notices' and watches' receivers).
fn stream_of(web: &Web) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let notices = BroadcastStream::new(web.context.alarm.notices()).map(|notice| match notice {
        Ok(notice) => alarm_event(&notice),
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            tracing::error!(
                missed,
                "console: an event stream fell behind the alarm; the page resyncs"
            );
            Event::default().event("resync").data(missed.to_string())
        }
    });
    let views = WatchStream::from_changes(web.context.alarm.view()).map(|view| {
        Event::default()
            .event("view")
            .data(format!("{:?}", view.state).to_lowercase())
    });
    let display = WatchStream::from_changes(web.context.display_png.clone())
        .map(|_| Event::default().event("display").data("redrawn"));
    let hello = stream::once(async { Event::default().event("hello").data("connected") });
    hello
        .chain(stream::select(notices, stream::select(views, display)))
        .map(Ok)
}

fn alarm_event(notice: &AlarmNotice) -> Event {
    let record = &notice.record;
    let data = serde_json::json!({
        "action": record.action,
        "source": record.source,
        "who": record.who,
        "from": record.from,
        "to": record.to,
        "keys": record.keys,
        "at": record.at,
    });
    Event::default().event("alarm").data(data.to_string())
}
