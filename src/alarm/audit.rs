//! Audit records: one for every transition of the alarm, with time, source and who.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AlarmState, RememberedKey, Source};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    CallRaised,
    CallUpdated,
    /// A possible call became a real one (a guard escalated it, or a second source
    /// corroborated it); `who` and `detail` say by whom or what.
    Confirmed,
    Acknowledged,
    Silenced,
    AutoSilenced,
    Escalated,
    Cleared,
    AutoCleared,
    TroubleRaised,
    TroubleCleared,
    LampTestStarted,
    LampTestEnded,
    /// The alarm was rebuilt from persisted state after a restart.
    Restored,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub source: Source,
    /// The user who acted, when known (web login, MQTT client name …).
    pub who: Option<String>,
    pub action: AuditAction,
    /// State before and after.
    pub from: AlarmState,
    pub to: AlarmState,
    /// Call keys concerned (empty for troubles and lamp tests).
    pub keys: Vec<String>,
    /// Free text: trouble component and detail, why a lamp test ended …
    pub detail: Option<String>,
}

/// Why a raise record was written at a start rather than at the raise (its `detail`).
pub const LOST_RAISE_DETAIL: &str = "written at the next start: the record of this raise was lost \
     (a power cut before the store flushed it); the alarm's saved state remembers the raise";

/// The `call_raised` records the audit lacks for raises the alarm's saved state remembers, to
/// be written at a start (see [`LOST_RAISE_DETAIL`]).
///
/// `newest_first` is the audit's tail, newest record first; the walk stops once it is older
/// than every raise still unmatched. A remembered raise older than the oldest record walked
/// gets no record: the audit does not reach back that far (a fresh store after damage, or a
/// walk cut short by the caller), so its absence says nothing. An empty audit repairs nothing
/// for the same reason. `state` is the alarm's state at the start (the records' from and to:
/// the state at the raise itself is not known).
pub fn unrecorded_raises(
    remembered: &[RememberedKey],
    newest_first: impl IntoIterator<Item = AuditRecord>,
    state: AlarmState,
) -> Vec<AuditRecord> {
    let mut unmatched: Vec<&RememberedKey> = remembered.iter().collect();
    let mut oldest_walked = None;
    for record in newest_first {
        if unmatched.iter().all(|k| k.at > record.at) {
            // Older than every raise still unmatched: their records would be newer than this.
            oldest_walked = Some(record.at);
            break;
        }
        if record.action == AuditAction::CallRaised {
            unmatched.retain(|k| !record.keys.contains(&k.key));
        }
        oldest_walked = Some(record.at);
        if unmatched.is_empty() {
            break;
        }
    }
    let Some(oldest_walked) = oldest_walked else {
        return Vec::new();
    };
    let mut missing: Vec<AuditRecord> = unmatched
        .into_iter()
        .filter(|k| k.at >= oldest_walked)
        .map(|k| AuditRecord {
            at: k.at,
            source: Source::Restore,
            who: None,
            action: AuditAction::CallRaised,
            from: state,
            to: state,
            keys: vec![k.key.clone()],
            detail: Some(LOST_RAISE_DETAIL.to_owned()),
        })
        .collect();
    missing.sort_by_key(|r| r.at);
    missing
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + secs, 0).unwrap_or_default()
    }

    fn key(name: &str, secs: i64) -> RememberedKey {
        RememberedKey {
            key: name.to_owned(),
            at: at(secs),
            possible: false,
        }
    }

    fn record(action: AuditAction, keys: &[&str], secs: i64) -> AuditRecord {
        AuditRecord {
            at: at(secs),
            source: Source::System,
            who: None,
            action,
            from: AlarmState::Idle,
            to: AlarmState::Alerting,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            detail: None,
        }
    }

    fn keys_of(records: &[AuditRecord]) -> Vec<(String, DateTime<Utc>)> {
        records.iter().map(|r| (r.keys.join(","), r.at)).collect()
    }

    #[test]
    fn raises_newer_than_the_surviving_audit_get_their_records_at_their_own_time() {
        let remembered = [key("a", 10), key("b", 20), key("c", 30), key("d", 31)];
        // The cut took everything after b's raise (and the acknowledgement of a survived).
        let tail = [
            record(AuditAction::Acknowledged, &["a"], 25),
            record(AuditAction::CallRaised, &["b"], 20),
            record(AuditAction::CallRaised, &["a"], 10),
        ];
        let missing = unrecorded_raises(&remembered, tail, AlarmState::Alerting);
        assert_eq!(
            keys_of(&missing),
            [("c".to_owned(), at(30)), ("d".to_owned(), at(31))]
        );
        assert!(missing.iter().all(|r| r.action == AuditAction::CallRaised
            && r.source == Source::Restore
            && r.detail.as_deref() == Some(LOST_RAISE_DETAIL)));
    }

    #[test]
    fn a_raise_lost_between_surviving_records_is_found_too() {
        let remembered = [key("a", 10), key("b", 20), key("c", 30)];
        let tail = [
            record(AuditAction::CallRaised, &["c"], 30),
            record(AuditAction::CallRaised, &["a"], 10),
        ];
        let missing = unrecorded_raises(&remembered, tail, AlarmState::Alerting);
        assert_eq!(keys_of(&missing), [("b".to_owned(), at(20))]);
    }

    #[test]
    fn nothing_is_written_when_every_raise_has_its_record() {
        let remembered = [key("a", 10), key("b", 20)];
        let tail = [
            record(AuditAction::Cleared, &["a", "b"], 40),
            record(AuditAction::CallRaised, &["b"], 20),
            record(AuditAction::CallRaised, &["a"], 10),
        ];
        assert!(unrecorded_raises(&remembered, tail, AlarmState::Idle).is_empty());
    }

    #[test]
    fn raises_older_than_the_audit_reaches_are_left_alone() {
        // A fresh store after damage: its audit starts after the remembered raises.
        let remembered = [key("old", 10), key("new", 100)];
        let tail = [record(AuditAction::Restored, &["old"], 50)];
        let missing = unrecorded_raises(&remembered, tail, AlarmState::Alerting);
        assert_eq!(keys_of(&missing), [("new".to_owned(), at(100))]);
        assert!(unrecorded_raises(&remembered, [], AlarmState::Alerting).is_empty());
    }

    #[test]
    fn the_walk_stops_at_the_oldest_unmatched_raise() {
        let remembered = [key("b", 20)];
        let mut walked = 0;
        let tail = [
            record(AuditAction::CallRaised, &["b"], 20),
            record(AuditAction::CallRaised, &["a"], 10),
            record(AuditAction::CallRaised, &["z"], 5),
        ]
        .into_iter()
        .inspect(|_| walked += 1);
        assert!(unrecorded_raises(&remembered, tail, AlarmState::Idle).is_empty());
        assert_eq!(walked, 1);
    }
}
