//! The JSON API: `/api/calls` (same filter as the table), `/api/calls/{id}`, `/api/health`.
//! Same login as the pages (the session cookie) or a machine's API token
//! (`Authorization: Bearer …`, see `api_tokens`); without either the answer is 401, never a
//! redirect.

use chrono::Utc;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::pages::call_detail;
use super::records::{all_calls, call_id, kind_name, page_of, timeline, CallFilter, TimelineEntry};
use super::respond;
use super::respond::Audience;
use super::session::Role;
use super::state::{Caller, Web};
use super::status;
use crate::calls::CallRecord;

/// A call in the API's lists.
#[derive(Serialize)]
struct CallItem<'a> {
    id: String,
    kind: &'static str,
    #[serde(flatten)]
    record: &'a CallRecord,
}

/// `GET /api/calls`.
pub fn calls(web: &Web, caller: &Caller, filter: CallFilter) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    if let Some(problem) = filter.problem() {
        return respond::json_status(
            &serde_json::json!({ "error": problem }),
            StatusCode::BAD_REQUEST,
        );
    }
    let (page, total) = page_of(all_calls(&web.context.store), &filter);
    let items: Vec<CallItem> = page
        .iter()
        .map(|record| CallItem {
            id: call_id(&record.key),
            kind: kind_name(record),
            record,
        })
        .collect();
    respond::json(&serde_json::json!({ "total": total, "page": filter.page(), "calls": items }))
}

/// `GET /api/calls/{id}`: the record and its timeline.
pub fn call(web: &Web, caller: &Caller, id: &str) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    match call_detail::find(web, id) {
        Some(record) => {
            let timeline: Vec<TimelineEntry> = timeline(&web.context.store, &record);
            respond::json(&serde_json::json!({
                "id": call_id(&record.key),
                "kind": kind_name(&record),
                "record": record,
                "timeline": timeline,
            }))
        }
        None => respond::json_status(
            &serde_json::json!({"error": "no such call"}),
            StatusCode::NOT_FOUND,
        ),
    }
}

/// `GET /api/health`: the status; 503 when not healthy (for monitoring).
pub fn health(web: &Web, caller: &Caller) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Api) {
        return refused;
    }
    let status = status::read(&web.context, Utc::now());
    let code = if status.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    respond::json_status(
        &serde_json::json!({ "healthy": status.healthy(), "status": status }),
        code,
    )
}
