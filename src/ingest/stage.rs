//! The stage after ingest, until recognition is wired in: it records each handed-off
//! notification (rich messages into the `messages` tree), logs it without content, and marks
//! its inbox entry done. Also [`resume`], which hands pending inbox entries on again at start.

use tokio::sync::mpsc;

use super::{InboxEntry, Notification};
use crate::store::{Store, StoreError};

/// Hands every inbox entry still pending (from before a restart) to `handoff`.
/// Returns how many.
pub async fn resume(
    store: &Store,
    handoff: &mpsc::Sender<InboxEntry>,
) -> Result<usize, StoreError> {
    let mut pending = 0;
    for (_, entry) in store.inbox.iter() {
        match entry {
            Ok(entry) => {
                if handoff.send(entry).await.is_err() {
                    break;
                }
                pending += 1;
            }
            Err(e) => tracing::error!(error = %e, "unreadable inbox entry left in place"),
        }
    }
    Ok(pending)
}

/// Records one notification and marks it done.
pub fn record(store: &Store, entry: &InboxEntry) -> Result<(), StoreError> {
    match &entry.notification {
        Notification::Message {
            chat_id,
            message_id,
            change_type,
            message,
            ..
        } => {
            tracing::info!(
                chat_id,
                message_id,
                change = change_type.as_str(),
                rich = message.is_some(),
                position = entry.position,
                "chat message notification"
            );
            if let Some(message) = message {
                store
                    .messages
                    .insert(&format!("{chat_id}/{message_id}"), message)?;
            }
        }
        Notification::Lifecycle {
            subscription_id,
            event,
        } => {
            tracing::warn!(subscription_id, ?event, "subscription lifecycle event");
        }
    }
    store.inbox.remove(&entry.key)?;
    Ok(())
}

/// Runs until the channel closes.
pub async fn run(store: Store, mut handoff: mpsc::Receiver<InboxEntry>) {
    while let Some(entry) = handoff.recv().await {
        if let Err(e) = record(&store, &entry) {
            tracing::error!(error = %e, key = entry.key, "could not record a notification; it stays in the inbox");
        }
    }
}
