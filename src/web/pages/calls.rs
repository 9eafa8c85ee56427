//! `/calls`: the Emergency Calls table (newest first, paged, filtered by date, test/real and
//! zone) and `/calls.csv`, the same rows as CSV (cells that a spreadsheet would run as a
//! formula are prefixed with `'`).

use askama::Template;
use warp::http::header;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{time, Layout};
use crate::calls::CallRecord;
use crate::web::records::{self, all_calls, call_id, kind_name, page_of, CallFilter, PAGE_SIZE};
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::Role;
use crate::web::state::{Caller, Web};

/// One row of the table.
struct Row {
    id: String,
    received: String,
    caller: String,
    dial: String,
    location: String,
    kind: &'static str,
    zone: String,
    local: bool,
}

impl Row {
    fn of(record: &CallRecord) -> Row {
        Row {
            id: call_id(&record.key),
            received: time(record.received_at),
            caller: record.call.caller.display_name.clone(),
            dial: record.call.dial_string.clone().unwrap_or_default(),
            location: record.call.location.text.clone().unwrap_or_default(),
            kind: kind_name(record),
            zone: record.zone.clone().unwrap_or_default(),
            local: record.alarmed_locally,
        }
    }
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsPage {
    layout: Layout,
    rows: Vec<Row>,
    from: String,
    to: String,
    kind: String,
    zone: String,
    zones: Vec<String>,
    /// The filter as a query string (without the page), for paging and export links.
    query: String,
    problem: Option<String>,
    /// `1 call`, `2 calls`.
    total_calls: String,
    page: usize,
    pages: usize,
}

/// The table.
pub fn show(web: &Web, caller: &Caller, filter: CallFilter) -> Response {
    let session = match web.require(caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let problem = filter.problem();
    let filter = if problem.is_some() {
        CallFilter::default()
    } else {
        filter
    };
    let calls = all_calls(&web.context.store);
    let zones = records::zones(&calls);
    let (rows, total) = page_of(calls, &filter);
    let page = CallsPage {
        layout: Layout::new("Emergency calls", "calls", &session),
        rows: rows.iter().map(Row::of).collect(),
        from: filter.from.clone().unwrap_or_default(),
        to: filter.to.clone().unwrap_or_default(),
        kind: filter.kind.clone().unwrap_or_default(),
        zone: filter.zone.clone().unwrap_or_default(),
        zones,
        query: query(&filter),
        problem,
        total_calls: crate::wording::count(total as u64, "call", "calls"),
        page: filter.page(),
        pages: total.div_ceil(PAGE_SIZE).max(1),
    };
    let status = if page.problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond::page_with_status(&page, status)
}

/// The filtered calls (all pages) as CSV.
pub fn csv(web: &Web, caller: &Caller, filter: CallFilter) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Page) {
        return refused;
    }
    if let Some(problem) = filter.problem() {
        return respond::text(StatusCode::BAD_REQUEST, &problem);
    }
    let mut out = String::from("received_at,kind,caller,upn,dial_string,callback_number,location,latitude,longitude,zone,alarmed_locally,key\r\n");
    for record in all_calls(&web.context.store)
        .iter()
        .filter(|c| filter.admits(c))
    {
        let call = &record.call;
        let cells = [
            record.received_at.to_rfc3339(),
            kind_name(record).to_string(),
            call.caller.display_name.clone(),
            call.caller.upn.clone().unwrap_or_default(),
            call.dial_string.clone().unwrap_or_default(),
            call.callback_number.clone().unwrap_or_default(),
            call.location.text.clone().unwrap_or_default(),
            call.location
                .latitude
                .map(|v| v.to_string())
                .unwrap_or_default(),
            call.location
                .longitude
                .map(|v| v.to_string())
                .unwrap_or_default(),
            record.zone.clone().unwrap_or_default(),
            record.alarmed_locally.to_string(),
            record.key.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    let response = warp::reply::with_header(out, header::CONTENT_TYPE, "text/csv; charset=utf-8");
    warp::reply::with_header(
        response,
        header::CONTENT_DISPOSITION,
        "attachment; filename=\"beacon-calls.csv\"",
    )
    .into_response()
}

/// One CSV cell: quoted, quotes doubled, formula-looking text defused.
pub fn csv_cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// `from=…&to=…&kind=…&zone=…` (percent-encoded).
fn query(filter: &CallFilter) -> String {
    [
        ("from", &filter.from),
        ("to", &filter.to),
        ("kind", &filter.kind),
        ("zone", &filter.zone),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={}", percent(value.as_deref().unwrap_or(""))))
    .collect::<Vec<_>>()
    .join("&")
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(
            csv_cell("Jordan \"JR\" Rivera"),
            "\"Jordan \"\"JR\"\" Rivera\""
        );
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1 425"), "\"'+1 425\"");
    }

    #[test]
    fn the_query_keeps_the_filter_encoded() {
        let filter = CallFilter {
            zone: Some("HQ & lab".into()),
            ..CallFilter::default()
        };
        assert_eq!(query(&filter), "from=&to=&kind=&zone=HQ%20%26%20lab");
    }
}
