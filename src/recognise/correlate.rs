//! One call, one incident, whichever source reports it first (pure; issue 16 item 2): the
//! chat notification of a call and its Graph emergency call event are one incident when they
//! name the same caller — Entra object id, or user principal name compared without case — and
//! are at most a window apart (default 3 minutes). The first raises the alarm; the second
//! is matched to the first's record by [`same_call`], enriches it and never alarms again.
//!
//! Not wired yet: recognition does not receive call events until the second source is.

use chrono::{DateTime, Duration, Utc};

/// The default window between the two reports of one call.
pub const DEFAULT_WINDOW: Duration = Duration::minutes(3);

/// Who called and when, as one source reports it.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Entra object id, when the source names it.
    pub caller_id: Option<&'a str>,
    /// User principal name, when the source names it.
    pub upn: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Whether two reports are of one call.
pub fn same_call(a: &Report<'_>, b: &Report<'_>, window: Duration) -> bool {
    let equal = |x: Option<&str>, y: Option<&str>, fold: bool| match (x, y) {
        (Some(x), Some(y)) if !x.trim().is_empty() => {
            if fold {
                x.trim().eq_ignore_ascii_case(y.trim())
            } else {
                x.trim() == y.trim()
            }
        }
        _ => false,
    };
    let same_caller = equal(a.caller_id, b.caller_id, false) || equal(a.upn, b.upn, true);
    same_caller && (a.at - b.at).abs() <= window
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(secs)
    }

    fn report(id: Option<&'static str>, upn: Option<&'static str>, secs: i64) -> Report<'static> {
        Report {
            caller_id: id,
            upn,
            at: at(secs),
        }
    }

    #[test]
    fn the_same_caller_within_the_window_is_one_call_in_either_order() {
        let chat = report(Some("oid-1"), None, 0);
        let event = report(Some("oid-1"), Some("j@contoso.com"), 180);
        assert!(same_call(&chat, &event, DEFAULT_WINDOW));
        assert!(same_call(&event, &chat, DEFAULT_WINDOW));
        assert!(!same_call(
            &chat,
            &report(Some("oid-1"), None, 181),
            DEFAULT_WINDOW
        ));
    }

    #[test]
    fn upns_match_without_case_object_ids_exactly_and_nothing_matches_nothing() {
        let a = report(None, Some("Jordan.Rivera@Contoso.com"), 0);
        assert!(same_call(
            &a,
            &report(None, Some("jordan.rivera@contoso.com"), 5),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(Some("OID"), None, 0),
            &report(Some("oid"), None, 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(None, None, 0),
            &report(None, None, 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(None, Some(" "), 0),
            &report(None, Some(" "), 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &a,
            &report(None, Some("sam@contoso.com"), 0),
            DEFAULT_WINDOW
        ));
    }
}
