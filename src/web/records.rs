//! Reading what the console shows from the store: call records (filtered, newest first,
//! paged), one call's timeline (received, recognised, alarm transitions, deliveries), the
//! chat history of a chat and the service account's recent messages. Everything here came
//! from chat messages or peers and is untrusted text: templates escape it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alarm::AuditRecord;
use crate::calls::{CallLog, CallRecord};
use crate::emergency::Kind;
use crate::store::Store;

/// Calls per page of the table.
pub const PAGE_SIZE: usize = 50;

/// The table's filter (query string of `/calls`, `/calls.csv` and `/api/calls`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallFilter {
    /// First day shown (UTC), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day shown (UTC), inclusive.
    pub to: Option<String>,
    /// `test`, `real` or empty for both.
    pub kind: Option<String>,
    /// Zone name; empty for all.
    pub zone: Option<String>,
    /// 1-based page.
    pub page: Option<usize>,
}

impl CallFilter {
    /// The first bad field, in words, or `None`.
    pub fn problem(&self) -> Option<String> {
        for (name, value) in [("from", &self.from), ("to", &self.to)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                if NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
                    return Some(format!("'{name}' must be a date like 2025-03-01"));
                }
            }
        }
        match self.kind.as_deref() {
            None | Some("") | Some("test") | Some("real") => None,
            Some(_) => Some("'kind' must be test, real or empty".into()),
        }
    }

    fn date(value: &Option<String>) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(value.as_deref()?, "%Y-%m-%d").ok()
    }

    /// Whether `record` passes.
    pub fn admits(&self, record: &CallRecord) -> bool {
        let day = record.received_at.date_naive();
        if Self::date(&self.from).is_some_and(|from| day < from) {
            return false;
        }
        if Self::date(&self.to).is_some_and(|to| day > to) {
            return false;
        }
        let test = record.kind == Kind::Test || record.call.is_test;
        match self.kind.as_deref() {
            Some("test") if !test => return false,
            Some("real") if test => return false,
            _ => {}
        }
        match self.zone.as_deref().filter(|z| !z.is_empty()) {
            Some(zone) => record.zone.as_deref() == Some(zone),
            None => true,
        }
    }

    /// The page asked for (1 when absent or 0).
    pub fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }
}

/// The URL id of a call key (`chat-id/message-id` holds `:`, `@` and `/`).
pub fn call_id(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The call key of a URL id.
pub fn call_key(id: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Every readable call record, newest first. Unreadable ones are logged (by key) and skipped.
pub fn all_calls(store: &Store) -> Vec<CallRecord> {
    CallLog::of(store).all("console")
}

/// One page of the filtered calls, and how many pass the filter.
pub fn page_of(calls: Vec<CallRecord>, filter: &CallFilter) -> (Vec<CallRecord>, usize) {
    let passing: Vec<CallRecord> = calls.into_iter().filter(|c| filter.admits(c)).collect();
    let total = passing.len();
    let start = (filter.page() - 1) * PAGE_SIZE;
    (
        passing.into_iter().skip(start).take(PAGE_SIZE).collect(),
        total,
    )
}

/// The zones that occur in `calls`, for the filter's list.
pub fn zones(calls: &[CallRecord]) -> Vec<String> {
    let mut zones: Vec<String> = calls.iter().filter_map(|c| c.zone.clone()).collect();
    zones.sort();
    zones.dedup();
    zones
}

/// One line of a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub what: String,
}

/// A call's timeline, oldest first: received, recognised, every alarm transition that names
/// it (audit), every delivery of the outbox for it.
pub fn timeline(store: &Store, record: &CallRecord) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = record
        .sources
        .iter()
        .map(|sighting| TimelineEntry {
            at: sighting.at,
            what: format!("Reported by {}", sighting.path.words()),
        })
        .collect();
    if entries.is_empty() {
        entries.push(TimelineEntry {
            at: record.received_at,
            what: "Notification received".into(),
        });
    }
    if let Some(at) = record.ended_at {
        entries.push(TimelineEntry {
            at,
            what: "Call ended (Graph emergency call event)".into(),
        });
    }
    entries.extend([TimelineEntry {
        at: record.recognised_at,
        what: format!(
            "Recognised: {} ({}){}",
            kind_name(record),
            record.reason,
            if record.alarmed_locally {
                ", alarm raised here"
            } else {
                ", not alarmed here (other zone)"
            }
        ),
    }]);
    if let Some(at) = record.updated_at {
        entries.push(TimelineEntry {
            at,
            what: format!(
                "Updated ({} merged: edits, or another source's report)",
                crate::wording::count(record.updates, "update", "updates")
            ),
        });
    }
    for (_, value) in store.audit.iter() {
        let Ok(Ok(audit)) = value.map(serde_json::from_value::<AuditRecord>) else {
            continue;
        };
        if !audit.keys.iter().any(|k| k == &record.key) {
            continue;
        }
        let who = audit
            .who
            .as_deref()
            .map(|w| format!(" by {w}"))
            .unwrap_or_default();
        entries.push(TimelineEntry {
            at: audit.at,
            what: format!(
                "{}{who} (from {})",
                words(&audit.action),
                words(&audit.source)
            ),
        });
    }
    for (_, value) in store.outbox.iter() {
        let Ok(delivery) = value else { continue };
        if delivery.get("call_key").and_then(Value::as_str) != Some(record.key.as_str()) {
            continue;
        }
        entries.extend(delivery_entries(&delivery));
    }
    entries.sort_by_key(|e| e.at);
    entries
}

/// The outbox record's lines: queued, and delivered or given up (with the last error).
fn delivery_entries(delivery: &Value) -> Vec<TimelineEntry> {
    let field = |name: &str| delivery.get(name).and_then(Value::as_str).unwrap_or("?");
    let time = |name: &str| {
        delivery
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let what = format!(
        "{} via {} to {}",
        field("kind"),
        field("channel"),
        field("recipient")
    );
    let attempts = delivery
        .get("attempts")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut entries = Vec::new();
    if let Some(at) = time("created_at") {
        entries.push(TimelineEntry {
            at,
            what: format!("Queued: {what}"),
        });
    }
    let status = field("status");
    let error = delivery
        .get("last_error")
        .and_then(Value::as_str)
        .map(|e| format!(" — last error: {e}"))
        .unwrap_or_default();
    match (status, time("delivered_at")) {
        ("delivered", Some(at)) => entries.push(TimelineEntry {
            at,
            what: format!("Delivered: {what} (attempt {attempts})"),
        }),
        (status, _) => {
            if let Some(at) = time("created_at") {
                entries.push(TimelineEntry {
                    at,
                    what: format!(
                        "Delivery {status}: {what} after {}{error}",
                        crate::wording::count(attempts, "attempt", "attempts")
                    ),
                });
            }
        }
    }
    entries
}

/// "emergency", "test", "possible emergency".
pub fn kind_name(record: &CallRecord) -> &'static str {
    match record.kind {
        Kind::Emergency => "emergency",
        Kind::Test => "test",
        Kind::Possible => "possible emergency",
        Kind::NotEmergency => "not an emergency",
    }
}

/// A snake_case serde name as words ("call_raised" → "call raised").
pub fn words<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

/// A stored chat message, as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLine {
    pub key: String,
    pub chat_id: String,
    /// When it was sent, in the appliance's zone (Graph's text when it does not parse).
    pub at: String,
    pub from: String,
    /// The body as text (HTML tags removed; still untrusted).
    pub text: String,
    pub importance: String,
}

/// Stored messages, newest first; only those of `chat_id` when given; at most `limit`.
pub fn chat_lines(store: &Store, chat_id: Option<&str>, limit: usize) -> Vec<ChatLine> {
    let prefix = chat_id.map(|c| format!("{c}/"));
    let mut lines: Vec<ChatLine> = store
        .messages
        .iter()
        .filter(|(key, _)| prefix.as_deref().is_none_or(|p| key.starts_with(p)))
        .filter_map(|(key, value)| value.ok().map(|v| chat_line(&key, &v)))
        .collect();
    lines.sort_by(|a, b| b.at.cmp(&a.at));
    lines.truncate(limit);
    // Sorted on Graph's UTC timestamps; shown in the appliance's zone.
    for line in &mut lines {
        if let Ok(at) = DateTime::parse_from_rfc3339(&line.at) {
            line.at = crate::local_time::shown(at.with_timezone(&Utc));
        }
    }
    lines
}

fn chat_line(key: &str, message: &Value) -> ChatLine {
    let text_at = |path: &[&str]| {
        let mut v = message;
        for p in path {
            v = v.get(p).unwrap_or(&Value::Null);
        }
        v.as_str().unwrap_or("").to_string()
    };
    let from = [
        text_at(&["from", "user", "displayName"]),
        text_at(&["from", "application", "displayName"]),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_else(|| "(system)".into());
    let body = text_at(&["body", "content"]);
    let text = if text_at(&["body", "contentType"]) == "html" {
        crate::emergency::html::html_to_text(&body).text
    } else {
        body
    };
    ChatLine {
        key: key.to_string(),
        chat_id: key
            .rsplit_once('/')
            .map(|(c, _)| c.to_string())
            .unwrap_or_default(),
        at: text_at(&["createdDateTime"]),
        from,
        text,
        importance: text_at(&["importance"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip_and_hold_no_slash() {
        let key = "19:abc@thread.v2/1741000123456";
        let id = call_id(key);
        assert!(!id.contains('/'));
        assert_eq!(call_key(&id).as_deref(), Some(key));
        assert_eq!(call_key("%%%"), None);
    }

    #[test]
    fn bad_filter_values_are_named() {
        let filter = CallFilter {
            from: Some("yesterday".into()),
            ..CallFilter::default()
        };
        assert!(filter.problem().is_some_and(|p| p.contains("from")));
        let filter = CallFilter {
            kind: Some("fake".into()),
            ..CallFilter::default()
        };
        assert!(filter.problem().is_some_and(|p| p.contains("kind")));
        assert_eq!(CallFilter::default().problem(), None);
    }

    #[test]
    fn a_delivered_outbox_record_gives_queued_and_delivered_lines() {
        let delivery = serde_json::json!({
            "call_key": "c/m", "channel": "email", "recipient": "desk@example.org",
            "kind": "alarm", "status": "delivered", "attempts": 2,
            "created_at": "2025-03-01T10:15:24Z", "delivered_at": "2025-03-01T10:15:30Z",
            "last_error": null
        });
        let lines: Vec<String> = delivery_entries(&delivery)
            .into_iter()
            .map(|e| e.what)
            .collect();
        assert_eq!(
            lines,
            vec![
                "Queued: alarm via email to desk@example.org",
                "Delivered: alarm via email to desk@example.org (attempt 2)"
            ]
        );
    }
}
