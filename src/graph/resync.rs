//! Reading the service account's chats from Graph (graph-teams.md B.9, B.11, G.6): the chats
//! with activity since a time are listed (`GET /me/chats`, newest activity first, stopping at
//! the first older one) and their messages since then fetched (`GET /chats/{id}/messages`).
//! Each goes through the same de-duplication and inbox as a notification, so a message already
//! handled is not handed on again, and a notification that arrives after the message was found
//! here is a duplicate. The reconciliation poll ([`super::reconcile`]) runs this every 30 s and
//! after every gap (start, replaced subscription, hub down, `missed` lifecycle event).
//!
//! The watermark is the time of the last listing that succeeded: everything before it has been
//! read from Graph. Only a listing moves it — never a clean stop, never the hub being up.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::client::{GraphClient, GraphError};
use super::notification::ChangeType;
use crate::ingest::{dedupe, InboxEntry, Notification};
use crate::store::Store;

const WATERMARK_KEY: &str = "graph/resync-watermark";
/// Each listing looks back this much before the last one: Graph's lists are eventually
/// consistent, and a message may show up a little after its `createdDateTime`.
pub const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);
/// Chats asked for per page.
const CHATS_PER_PAGE: usize = 50;

/// The inbox position of an entry found by the reconciliation poll.
pub const POLL: &str = "poll";
/// The inbox position of an entry found by the resync after a gap.
pub const RESYNC: &str = "resync";

/// Whether an inbox entry at `position` was found by reading Graph (not notified).
pub fn found_by_reading(position: &str) -> bool {
    position == POLL || position == RESYNC
}
/// Chats and messages looked at, at most (a bound on a runaway resync).
const MAX_CHATS: usize = 200;
const MAX_MESSAGES_PER_CHAT: usize = 200;

/// What a resync found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResyncReport {
    pub chats_checked: usize,
    pub messages_seen: usize,
    pub handed_off: usize,
    /// Graph requests made.
    pub requests: usize,
}

/// Since when to look: the stored watermark less [`OVERLAP`], or `fallback` on a first start.
pub fn since(store: &Store, fallback: DateTime<Utc>) -> DateTime<Utc> {
    store
        .settings
        .get(WATERMARK_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v).ok())
        .map_or(fallback, |at| at - OVERLAP)
}

/// Remembers that everything up to `at` has been looked at.
pub fn set_watermark(store: &Store, at: DateTime<Utc>) {
    if let Err(e) = store.settings.insert(WATERMARK_KEY, &serde_json::json!(at)) {
        tracing::error!(error = %e, "cannot store the resync watermark");
    }
}

/// Finds messages since `since` and hands the new ones on, with `position` ([`POLL`] or
/// [`RESYNC`]) as their inbox position. Moves the watermark to `now` when done.
pub async fn resync(
    graph: &GraphClient,
    store: &Store,
    handoff: &mpsc::Sender<InboxEntry>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    position: &str,
) -> Result<ResyncReport, GraphError> {
    let mut report = ResyncReport::default();
    let stamp = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    for chat_id in active_chats(graph, since, &mut report).await? {
        report.chats_checked += 1;
        let path = format!(
            "/chats/{chat_id}/messages?$top=50&$orderby=lastModifiedDateTime%20desc&$filter=lastModifiedDateTime%20gt%20{stamp}"
        );
        report.requests += 1;
        for message in graph.get_all(&path, MAX_MESSAGES_PER_CHAT).await? {
            report.messages_seen += 1;
            for entry in entries(&chat_id, &message, now, position) {
                let new = store
                    .admit(&entry.key, now, &entry)
                    .map_err(|e| GraphError::Body(e.to_string()))?;
                if new {
                    report.handed_off += 1;
                    let _ = handoff.send(entry).await;
                }
            }
        }
    }
    store.flush().map_err(|e| GraphError::Body(e.to_string()))?;
    set_watermark(store, now);
    tracing::debug!(?report, %since, position, "chats read");
    Ok(report)
}

/// The ids of the chats with a message since `since`, newest activity first: one page of
/// `/me/chats` when the account is quiet, the next only while every chat on a page is newer.
async fn active_chats(
    graph: &GraphClient,
    since: DateTime<Utc>,
    report: &mut ResyncReport,
) -> Result<Vec<String>, GraphError> {
    let mut found = Vec::new();
    let mut page = format!(
        "/me/chats?$expand=lastMessagePreview&$orderby=lastMessagePreview/createdDateTime%20desc&$top={CHATS_PER_PAGE}"
    );
    loop {
        report.requests += 1;
        let body = graph.get(&page).await?;
        let chats = body.get("value").and_then(Value::as_array);
        for chat in chats.into_iter().flatten() {
            let last = chat
                .pointer("/lastMessagePreview/createdDateTime")
                .and_then(Value::as_str)
                .and_then(parse_time);
            // Sorted by last activity: everything after this chat is older still.
            if last.is_some_and(|t| t < since) {
                return Ok(found);
            }
            if let Some(id) = chat.get("id").and_then(Value::as_str) {
                found.push(id.to_string());
            }
        }
        let next = body.get("@odata.nextLink").and_then(Value::as_str);
        match next.and_then(|link| graph.relative(link)) {
            Some(relative) if found.len() < MAX_CHATS => page = relative,
            _ => return Ok(found),
        }
    }
}

/// The inbox entries for one listed message: its creation and, when it was edited since, the
/// edit (keyed as the notifications of the same changes are, so either way round it is once).
fn entries(chat_id: &str, message: &Value, now: DateTime<Utc>, position: &str) -> Vec<InboxEntry> {
    let Some(message_id) = message.get("id").and_then(Value::as_str) else {
        return Vec::new();
    };
    let created = message.get("createdDateTime").and_then(Value::as_str);
    let modified = message.get("lastModifiedDateTime").and_then(Value::as_str);
    let mut keys = vec![(
        dedupe::message_key(chat_id, message_id, ChangeType::Created, None, ""),
        ChangeType::Created,
    )];
    if modified.is_some() && modified != created {
        keys.push((
            dedupe::message_key(chat_id, message_id, ChangeType::Updated, modified, ""),
            ChangeType::Updated,
        ));
    }
    keys.into_iter()
        .map(|(key, change_type)| InboxEntry {
            key,
            received_at: now,
            position: position.into(),
            notification: Notification::Message {
                subscription_id: position.into(),
                chat_id: chat_id.to_string(),
                message_id: message_id.to_string(),
                change_type,
                message: Some(message.clone()),
            },
            // Found by listing the chat, not notified: there is no notification.
            raw: None,
        })
        .collect()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// How long the hub may be unreachable before its return triggers a resync.
pub const HUB_GAP: std::time::Duration = std::time::Duration::from_secs(120);

/// What the gap tracker saw (pure: observations and time in, decisions out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapDecision {
    /// Nothing to do.
    Nothing,
    /// The subscription was replaced: resync from the watermark.
    SubscriptionReplaced,
    /// The hub is back after a gap: resync from shortly before it went away.
    HubBack { since: DateTime<Utc> },
}

/// Follows the subscription id and the hub connection and says when a gap has to be closed.
#[derive(Debug, Clone, Default)]
pub struct GapTracker {
    known_id: Option<String>,
    down_since: Option<DateTime<Utc>>,
}

impl GapTracker {
    pub fn new(subscription_id: Option<String>) -> GapTracker {
        GapTracker {
            known_id: subscription_id,
            down_since: None,
        }
    }

    /// One observation.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        subscription_id: Option<&str>,
        hub_connected: bool,
    ) -> GapDecision {
        if let Some(current) = subscription_id {
            let replaced = self
                .known_id
                .as_deref()
                .is_some_and(|known| known != current);
            self.known_id = Some(current.to_string());
            if replaced {
                return GapDecision::SubscriptionReplaced;
            }
        }
        match (hub_connected, self.down_since) {
            (false, None) => {
                self.down_since = Some(now);
                return GapDecision::Nothing;
            }
            (false, Some(_)) => return GapDecision::Nothing,
            (true, Some(since)) => {
                self.down_since = None;
                if (now - since).to_std().unwrap_or_default() >= HUB_GAP {
                    return GapDecision::HubBack {
                        since: since - chrono::Duration::minutes(1),
                    };
                }
            }
            (true, None) => {}
        }
        GapDecision::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
            + chrono::Duration::days(20_000)
            + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn a_replaced_subscription_triggers_once() {
        let mut g = GapTracker::new(Some("a".into()));
        assert_eq!(g.observe(t(5), Some("a"), true), GapDecision::Nothing);
        assert_eq!(
            g.observe(t(10), Some("b"), true),
            GapDecision::SubscriptionReplaced
        );
        assert_eq!(g.observe(t(15), Some("b"), true), GapDecision::Nothing);
        // Briefly unknown (reconcile in progress) is not a replacement.
        assert_eq!(g.observe(t(20), None, true), GapDecision::Nothing);
        assert_eq!(g.observe(t(25), Some("b"), true), GapDecision::Nothing);
    }

    #[test]
    fn only_a_long_hub_outage_triggers() {
        let mut g = GapTracker::new(None);
        assert_eq!(g.observe(t(5), None, false), GapDecision::Nothing);
        assert_eq!(
            g.observe(t(60), None, true),
            GapDecision::Nothing,
            "a minute is not a gap"
        );
        assert_eq!(g.observe(t(100), None, false), GapDecision::Nothing);
        assert_eq!(g.observe(t(200), None, false), GapDecision::Nothing);
        assert_eq!(
            g.observe(t(221), None, true),
            GapDecision::HubBack { since: t(40) }
        );
    }
}
