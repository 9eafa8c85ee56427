//! At a start, the `call_raised` audit records a power cut took: the alarm's state file is
//! written (and fsynced) before the step's audit records go to the store, so a cut between the
//! two leaves a raise the alarm remembers — and restores, and never raises again — with no
//! record in the audit. This writes those records back, marked as written late
//! ([`crate::alarm::LOST_RAISE_DETAIL`]), before the start's own records; which raises lack
//! one is the pure [`crate::alarm::unrecorded_raises`].

use crate::alarm::{unrecorded_raises, AlarmState, AuditRecord, PersistedState, RememberedKey};
use crate::store::Store;

/// How far back the start looks in the audit at most (records). The alarm remembers at most
/// [`crate::alarm::REMEMBERED_KEYS`] raises, and the walk stops at the oldest one unmatched,
/// so this only bounds a start whose remembered raises predate the whole audit (a fresh store
/// after damage, with the old one kept aside).
const AUDIT_WALK_LIMIT: usize = 20_000;

/// Writes the missing raise records for `stored` (the state the alarm restores, in `state`);
/// returns how many. A store that cannot be read or written is logged: the alarm itself is
/// whole either way, only its audit trail is short.
pub(super) fn write_back(store: &Store, stored: &PersistedState, state: AlarmState) -> usize {
    let audit = store.audit.read_as::<AuditRecord>();
    let newest_first = audit
        .iter_rev()
        .take(AUDIT_WALK_LIMIT)
        .filter_map(|(_, record)| record.ok());
    let mut remembered = stored.remembered.clone();
    for call in &stored.calls {
        if !remembered.iter().any(|k| k.key == call.key) {
            remembered.push(RememberedKey {
                key: call.key.clone(),
                at: call.raised_at,
                possible: call.summary.is_possible,
            });
        }
    }
    let missing = unrecorded_raises(&remembered, newest_first, state);
    if missing.is_empty() {
        return 0;
    }
    match store.record_audits(&missing) {
        Ok(()) => {
            for record in &missing {
                tracing::warn!(keys = ?record.keys, at = %record.at,
                    "the audit record of this raise was lost (power cut); written now");
            }
            missing.len()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write back the lost raise records");
            0
        }
    }
}
