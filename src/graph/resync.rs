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

/// Runs a resync at start and after every gap: the subscription was replaced (ours was
/// removed or expired), or the hub was unreachable for longer than [`HUB_GAP`]. While all is
/// well it keeps the watermark fresh, so the resync after a crash looks back only that far.
/// Holds the hand-off channel weakly, so shutdown is not held up.
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
    run(super::resync::since(
        &store,
        Utc::now() - chrono::Duration::hours(24),
    ))
    .await;
    let mut known_id = subscription.borrow().subscription_id.clone();
    let mut down_since: Option<DateTime<Utc>> = None;
    let mut last_mark = Utc::now();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if handoff.upgrade().is_none() {
            return;
        }
        let now = Utc::now();
        let current = subscription.borrow_and_update().subscription_id.clone();
        if current.is_some() && known_id.is_some() && current != known_id {
            tracing::warn!("the subscription was replaced: resyncing");
            run(super::resync::since(
                &store,
                now - chrono::Duration::hours(24),
            ))
            .await;
        }
        if current.is_some() {
            known_id = current;
        }
        let connected = hub.connected.load(Ordering::Relaxed);
        match (connected, down_since) {
            (false, None) => down_since = Some(now),
            (true, Some(since)) => {
                down_since = None;
                if (now - since).to_std().unwrap_or_default() >= HUB_GAP {
                    tracing::warn!(%since, "the Event Hub was unreachable: resyncing");
                    run(since - chrono::Duration::minutes(1)).await;
                }
            }
            _ => {}
        }
        if connected && down_since.is_none() && now - last_mark >= WATERMARK_EVERY {
            set_watermark(&store, now - chrono::Duration::minutes(1));
            last_mark = now;
        }
    }
}
