//! Restart support: [`resume`] hands the inbox entries still pending from before a restart to
//! the next stage (recognition, [`crate::recognise`]), which removes each when it is done.

use tokio::sync::mpsc;

use super::InboxEntry;
use crate::store::{Store, StoreError};

/// Hands every inbox entry still pending (from before a restart) to `handoff`.
/// Returns how many.
pub async fn resume(
    store: &Store,
    handoff: &mpsc::Sender<InboxEntry>,
) -> Result<usize, StoreError> {
    let mut pending = 0;
    for (_, entry) in super::inbox(store).iter() {
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
