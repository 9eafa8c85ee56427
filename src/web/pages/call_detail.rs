//! `/calls/{id}`: one call — caller name and UPN, dial string, call-back number, location and
//! (with coordinates) a Leaflet map, the floor plan of the caller's site with the caller's zone
//! marked (when one outlines it), the acknowledgements other desks of the fleet made of it, the
//! timeline, the chat's history, and the raw message and call record as formatted JSON (shown
//! as text).

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{time, Layout};
use crate::calls::{CallLog, CallRecord};
use crate::emergency::{self, Kind};
use crate::outputs::notify::plan::{map_link, CallContext};
use crate::web::floor_plan::marked::MarkedPlan;
use crate::web::floor_plan::FloorPlans;
use crate::web::records::{call_key, chat_lines, kind_name, timeline, ChatLine};
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::Role;
use crate::web::state::{Caller, Web};

/// Messages of the chat shown under the call.
const HISTORY: usize = 50;

/// Where the caller is, in words and links: shown whether or not the map's tiles load.
struct Whereabouts {
    /// `47.639600, -122.128300`, when known.
    coordinates: Option<String>,
    /// OpenStreetMap at the coordinates, else a search for the address (as in notifications).
    map_link: String,
    /// `geo:` URI (RFC 5870): a phone opens its own maps app, which may have the area offline.
    geo_link: Option<String>,
}

/// The map's data attributes.
struct MapData {
    lat: f64,
    lon: f64,
    tiles: String,
    attribution: String,
}

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    layout: Layout,
    caller: String,
    upn: String,
    dial: String,
    callback: String,
    location: String,
    kind: &'static str,
    reason: String,
    zone: String,
    received: String,
    /// Which sources reported the call, first first ("emergency call events, then chat
    /// notifications").
    reported_by: String,
    /// When the call ended, when Graph's call events said.
    ended: Option<String>,
    is_test: bool,
    /// The message text of a possible emergency (the guard reads it to decide).
    possible_message: Option<String>,
    map: Option<MapData>,
    whereabouts: Option<Whereabouts>,
    /// The plan of the caller's site with the caller's zone marked (`call_floor_plan.html`).
    floor_plan: Option<MarkedPlan>,
    /// "acknowledged on main-desk by sam at …", one per desk.
    other_desks: Vec<String>,
    /// (time, what)
    timeline: Vec<(String, String)>,
    history: Vec<ChatLine>,
    raw_message: String,
    raw_notification: String,
    raw_record: String,
}

/// Longest message text shown for a possible emergency (the whole message is in the raw JSON
/// below it).
const POSSIBLE_MESSAGE_CHARS: usize = 2000;

pub fn show(web: &Web, caller: &Caller, id: &str) -> Response {
    let session = match web.require(caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Some(record) = find(web, id) else {
        return respond::text(StatusCode::NOT_FOUND, "No such call.");
    };
    let call = &record.call;
    let location = &call.location;
    let mut location_text = location.text.clone().unwrap_or_else(|| "not given".into());
    if let Some(site) = &location.site {
        location_text.push_str(&format!("\n(site: {site})"));
    }
    let map = match (location.latitude, location.longitude) {
        (Some(lat), Some(lon)) => Some(MapData {
            lat,
            lon,
            tiles: web.config.tiles_url.clone(),
            attribution: web.config.tiles_attribution.clone(),
        }),
        _ => None,
    };
    let whereabouts = whereabouts(
        location.latitude.zip(location.longitude),
        location.text.as_deref(),
    );
    let page = CallPage {
        layout: Layout::new("Emergency call", "calls", &session),
        caller: call.caller.display_name.clone(),
        upn: call
            .caller
            .upn
            .clone()
            .unwrap_or_else(|| "not given".into()),
        dial: call.dial_string.clone().unwrap_or_else(|| "?".into()),
        callback: call
            .callback_number
            .clone()
            .unwrap_or_else(|| "not given".into()),
        location: location_text,
        kind: kind_name(&record),
        reason: record.reason.clone(),
        zone: record.zone.clone().unwrap_or_else(|| "—".into()),
        received: time(record.received_at),
        reported_by: match record.sources_in_words() {
            words if words.is_empty() => "—".into(),
            words => words,
        },
        ended: record.ended_at.map(time),
        is_test: call.is_test,
        possible_message: (record.kind == Kind::Possible)
            .then(|| emergency::excerpt(&call.raw, POSSIBLE_MESSAGE_CHARS))
            .flatten(),
        map,
        whereabouts,
        floor_plan: record
            .zone
            .as_deref()
            .and_then(|zone| FloorPlans::of(&web.context.store).marked(zone)),
        other_desks: web
            .context
            .peers
            .as_ref()
            .map(|peers| peers.acks_of(&record.key))
            .unwrap_or_default()
            .into_iter()
            .map(|ack| {
                format!(
                    "acknowledged on {} by {} at {}",
                    ack.desk,
                    ack.who.as_deref().unwrap_or("someone"),
                    time(ack.at)
                )
            })
            .collect(),
        timeline: timeline(&web.context.store, &record)
            .into_iter()
            .map(|e| (time(e.at), e.what))
            .collect(),
        history: chat_lines(&web.context.store, Some(&call.chat_id), HISTORY),
        raw_message: serde_json::to_string_pretty(&call.raw).unwrap_or_default(),
        raw_notification: match &record.notification {
            Some(n) => serde_json::to_string_pretty(n).unwrap_or_default(),
            None => {
                "(none: found by a resync after a gap, or recorded before notifications were kept)"
                    .into()
            }
        },
        raw_record: serde_json::to_string_pretty(&record_without_raw(&record)).unwrap_or_default(),
    };
    respond::page(&page)
}

/// The stored call of URL id `id`.
pub fn find(web: &Web, id: &str) -> Option<CallRecord> {
    let key = call_key(id)?;
    match CallLog::of(&web.context.store).get(&key) {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(key, %error, "console: the call's record cannot be read");
            None
        }
    }
}

/// The record with the message and the notification left out (they are shown above it).
fn record_without_raw(record: &CallRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("notification");
    }
    if let Some(call) = value.get_mut("call").and_then(|c| c.as_object_mut()) {
        call.remove("raw");
    }
    value
}

/// The coordinates and links for `coordinates` and `address`; `None` with neither.
fn whereabouts(coordinates: Option<(f64, f64)>, address: Option<&str>) -> Option<Whereabouts> {
    let (latitude, longitude) = coordinates.unzip();
    let context = CallContext {
        latitude,
        longitude,
        ..CallContext::default()
    };
    Some(Whereabouts {
        map_link: map_link(&context, address)?,
        coordinates: coordinates.map(|(lat, lon)| format!("{lat:.6}, {lon:.6}")),
        geo_link: coordinates.map(|(lat, lon)| format!("geo:{lat:.6},{lon:.6}")),
    })
}
