//! Resync after a gap (graph-teams.md B.9, G.6): Graph sends no "missed" events for Teams chat
//! messages, and the evaluation quota stops notifications silently. After the appliance was
//! down, a subscription was recreated or the hub was unreachable, the service account's chats
//! with activity since the gap are listed (`GET /me/chats`, newest activity first) and their
//! messages since then fetched (`GET /chats/{id}/messages`). Each goes through the same
//! de-duplication and inbox as a notification, so a message already handled is not handed on
//! again; a call found this way is late, and its record says so.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::client::{GraphClient, GraphError};
use super::notification::ChangeType;
use crate::ingest::{dedupe, InboxEntry, Notification};
use crate::store::Store;

const WATERMARK_KEY: &str = "graph/resync-watermark";
/// Chats and messages looked at, at most (a bound on a runaway resync).
const MAX_CHATS: usize = 200;
const MAX_MESSAGES_PER_CHAT: usize = 200;

/// What a resync found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResyncReport {
    pub chats_checked: usize,
    pub messages_seen: usize,
    pub handed_off: usize,
}

/// Since when to look: the stored watermark, or `fallback` on a first start.
pub fn since(store: &Store, fallback: DateTime<Utc>) -> DateTime<Utc> {
    store
        .settings
        .get(WATERMARK_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(fallback)
}

/// Remembers that everything up to `at` has been looked at.
pub fn set_watermark(store: &Store, at: DateTime<Utc>) {
    if let Err(e) = store.settings.insert(WATERMARK_KEY, &serde_json::json!(at)) {
        tracing::error!(error = %e, "cannot store the resync watermark");
    }
}

/// Finds messages since `since` and hands the new ones on.
pub async fn resync(
    graph: &GraphClient,
    store: &Store,
    handoff: &mpsc::Sender<InboxEntry>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<ResyncReport, GraphError> {
    let mut report = ResyncReport::default();
    let stamp = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    let chats = graph
        .get_all(
            "/me/chats?$expand=lastMessagePreview&$orderby=lastMessagePreview/createdDateTime%20desc&$top=50",
            MAX_CHATS,
        )
        .await?;
    for chat in chats {
        let last = chat
            .pointer("/lastMessagePreview/createdDateTime")
            .and_then(Value::as_str)
            .and_then(parse_time);
        // Sorted by last activity: everything after this chat is older still.
        if last.is_some_and(|t| t < since) {
            break;
        }
        let Some(chat_id) = chat.get("id").and_then(Value::as_str) else {
            continue;
        };
        report.chats_checked += 1;
        let path = format!(
            "/chats/{chat_id}/messages?$top=50&$orderby=lastModifiedDateTime%20desc&$filter=lastModifiedDateTime%20gt%20{stamp}"
        );
        for message in graph.get_all(&path, MAX_MESSAGES_PER_CHAT).await? {
            report.messages_seen += 1;
            let Some(message_id) = message
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let created = message
                .get("createdDateTime")
                .and_then(Value::as_str)
                .map(str::to_string);
            let modified = message
                .get("lastModifiedDateTime")
                .and_then(Value::as_str)
                .map(str::to_string);
            let edited = modified.is_some() && modified != created;
            let mut keys = vec![(
                dedupe::message_key(chat_id, &message_id, ChangeType::Created, None, ""),
                ChangeType::Created,
            )];
            if edited {
                keys.push((
                    dedupe::message_key(
                        chat_id,
                        &message_id,
                        ChangeType::Updated,
                        modified.as_deref(),
                        "",
                    ),
                    ChangeType::Updated,
                ));
            }
            for (key, change_type) in keys {
                let entry = InboxEntry {
                    key: key.clone(),
                    received_at: now,
                    position: "resync".into(),
                    notification: Notification::Message {
                        subscription_id: "resync".into(),
                        chat_id: chat_id.to_string(),
                        message_id: message_id.clone(),
                        change_type,
                        message: Some(message.clone()),
                    },
                    // Found by listing the chat, not notified: there is no notification.
                    raw: None,
                };
                let new = store
                    .admit(&key, now, &entry)
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
    tracing::info!(?report, %since, "resync done");
    Ok(report)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// How long the hub may be unreachable before its return triggers a resync.
pub const HUB_GAP: std::time::Duration = std::time::Duration::from_secs(120);
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const WATERMARK_EVERY: chrono::Duration = chrono::Duration::minutes(5);

/// What the gap tracker saw (pure: observations and time in, decisions out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapDecision {
    /// Nothing to do.
    Nothing,
    /// The subscription was replaced: resync from the watermark.
    SubscriptionReplaced,
    /// The hub is back after a gap: resync from shortly before it went away.
    HubBack { since: DateTime<Utc> },
    /// All is well: move the watermark to this time.
    Watermark(DateTime<Utc>),
}

/// Follows the subscription id and the hub connection and says when a gap has to be closed.
#[derive(Debug, Clone, Default)]
pub struct GapTracker {
    known_id: Option<String>,
    down_since: Option<DateTime<Utc>>,
    last_mark: Option<DateTime<Utc>>,
}

impl GapTracker {
    pub fn new(subscription_id: Option<String>, now: DateTime<Utc>) -> GapTracker {
        GapTracker {
            known_id: subscription_id,
            down_since: None,
            last_mark: Some(now),
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
        if self.last_mark.is_none_or(|at| now - at >= WATERMARK_EVERY) {
            self.last_mark = Some(now);
            return GapDecision::Watermark(now - chrono::Duration::minutes(1));
        }
        GapDecision::Nothing
    }
}

/// Runs a resync at start and after every gap ([`GapTracker`]): the subscription was replaced
/// (ours was removed or expired), or the hub was unreachable for longer than [`HUB_GAP`].
/// While all is well it keeps the watermark fresh, so the resync after a crash looks back only
/// that far. Holds the hand-off channel weakly, so shutdown is not held up.
pub async fn run_triggers(
    graph: GraphClient,
    store: Store,
    handoff: mpsc::WeakSender<InboxEntry>,
    mut subscription: tokio::sync::watch::Receiver<super::subscription::SubscriptionStatus>,
    hub: std::sync::Arc<crate::eventhub::consumer::ConsumerStatus>,
) {
    use std::sync::atomic::Ordering;
    let run = |since: DateTime<Utc>| {
        let (graph, store, handoff) = (graph.clone(), store.clone(), handoff.clone());
        async move {
            let Some(handoff) = handoff.upgrade() else {
                return;
            };
            let now = Utc::now();
            let since = since.max(now - chrono::Duration::days(7));
            if let Err(e) = resync(&graph, &store, &handoff, since, now).await {
                tracing::error!(error = %e, "resync failed; it runs again after the next gap");
            }
        }
    };
    let fallback = || Utc::now() - chrono::Duration::hours(24);
    run(since(&store, fallback())).await;
    let mut tracker = GapTracker::new(subscription.borrow().subscription_id.clone(), Utc::now());
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if handoff.upgrade().is_none() {
            return;
        }
        let id = subscription.borrow_and_update().subscription_id.clone();
        match tracker.observe(
            Utc::now(),
            id.as_deref(),
            hub.connected.load(Ordering::Relaxed),
        ) {
            GapDecision::Nothing => {}
            GapDecision::SubscriptionReplaced => {
                tracing::warn!("the subscription was replaced: resyncing");
                run(since(&store, fallback())).await;
            }
            GapDecision::HubBack { since } => {
                tracing::warn!(%since, "the Event Hub was unreachable: resyncing");
                run(since).await;
            }
            GapDecision::Watermark(at) => set_watermark(&store, at),
        }
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
        let mut g = GapTracker::new(Some("a".into()), t(0));
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
        let mut g = GapTracker::new(None, t(0));
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

    #[test]
    fn the_watermark_moves_only_while_connected() {
        let mut g = GapTracker::new(None, t(0));
        assert_eq!(g.observe(t(300), None, false), GapDecision::Nothing);
        assert_eq!(g.observe(t(600), None, false), GapDecision::Nothing);
        assert!(matches!(
            g.observe(t(900), None, true),
            GapDecision::HubBack { .. }
        ));
        assert_eq!(
            g.observe(t(905), None, true),
            GapDecision::Watermark(t(845))
        );
        assert_eq!(g.observe(t(910), None, true), GapDecision::Nothing);
    }
}
