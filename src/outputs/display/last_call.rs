//! The ready screen's "Last call" line: the newest call recorded in the store when the
//! appliance starts, then every call the alarm raises from then on.

use tokio::sync::{broadcast, watch};

use super::LastCall;
use crate::alarm::AuditAction;
use crate::alarm_task::{AlarmHandle, AlarmNotice};
use crate::calls::CallLog;
use crate::store::Store;

/// The newest call in the call log (by recognition time); unreadable records are logged and
/// skipped.
pub fn newest_recorded(store: &Store) -> Option<LastCall> {
    CallLog::of(store)
        .all("display")
        .into_iter()
        .filter(|record| !record.deleted)
        .max_by_key(|record| record.recognised_at)
        .map(|record| LastCall {
            at: record.recognised_at,
            caller: record.call.caller.display_name,
        })
}

/// The last call a notice raised, if it raised one.
pub fn raised_by(notice: &AlarmNotice) -> Option<LastCall> {
    if notice.record.action != AuditAction::CallRaised {
        return None;
    }
    notice.calls.last().map(|call| LastCall {
        at: call.raised_at,
        caller: call.summary.caller_name.clone().unwrap_or_default(),
    })
}

/// Follows the alarm's notices from the newest recorded call on; the task ends with the alarm.
pub fn follow(store: &Store, alarm: &AlarmHandle) -> watch::Receiver<Option<LastCall>> {
    let (tx, rx) = watch::channel(newest_recorded(store));
    let mut notices = alarm.notices();
    tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(notice) => {
                    if let Some(last) = raised_by(&notice) {
                        tx.send_replace(Some(last));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "display: missed alarm notices; the last call may be stale"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    rx
}
