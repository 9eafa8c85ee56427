//! When a channel is a trouble (pure): failing since its last success for longer than
//! `trouble_after_seconds`, or refused permanently (a fix of the configuration is needed);
//! cleared by the next success.

use chrono::{DateTime, Duration, Utc};

/// What to tell the alarm after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Raise(String),
    Clear,
}

/// One channel's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelHealth {
    failing_since: Option<DateTime<Utc>>,
    last_error: String,
    raised: bool,
}

impl ChannelHealth {
    /// A delivery succeeded.
    pub fn succeeded(&mut self) -> Option<Change> {
        self.failing_since = None;
        std::mem::take(&mut self.raised).then_some(Change::Clear)
    }

    /// A delivery failed at `now` with `reason`.
    pub fn failed(
        &mut self,
        now: DateTime<Utc>,
        permanent: bool,
        reason: &str,
        trouble_after: Duration,
    ) -> Option<Change> {
        self.failing_since.get_or_insert(now);
        self.last_error = reason.to_string();
        if permanent {
            return self.raise(now);
        }
        self.overdue(now, trouble_after)
    }

    /// Raises the trouble when the channel has been failing for `trouble_after` at `now`
    /// (also between attempts), with the last error.
    pub fn overdue(&mut self, now: DateTime<Utc>, trouble_after: Duration) -> Option<Change> {
        let since = self.failing_since?;
        (now - since >= trouble_after)
            .then(|| self.raise(now))
            .flatten()
    }

    fn raise(&mut self, now: DateTime<Utc>) -> Option<Change> {
        if self.raised {
            return None;
        }
        self.raised = true;
        let minutes = self
            .failing_since
            .map_or(0, |since| (now - since).num_minutes());
        Some(Change::Raise(if minutes > 0 {
            format!("failing for {minutes} min: {}", self.last_error)
        } else {
            self.last_error.clone()
        }))
    }

    /// When the trouble is due if nothing succeeds before (for a timer), while not raised.
    pub fn due(&self, trouble_after: Duration) -> Option<DateTime<Utc>> {
        (!self.raised)
            .then_some(self.failing_since)
            .flatten()
            .map(|since| since + trouble_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_after_the_grace_time_once_and_cleared_by_a_success() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let after = Duration::seconds(60);
        let mut h = ChannelHealth::default();
        assert_eq!(h.failed(t0, false, "down", after), None);
        assert_eq!(h.due(after), Some(t0 + after));
        assert_eq!(
            h.failed(t0 + Duration::seconds(59), false, "down", after),
            None
        );
        assert_eq!(
            h.failed(t0 + Duration::seconds(120), false, "down", after),
            Some(Change::Raise("failing for 2 min: down".into()))
        );
        assert_eq!(
            h.failed(t0 + Duration::seconds(180), false, "down", after),
            None
        );
        assert_eq!(
            h.overdue(t0 + Duration::seconds(240), after),
            None,
            "raised once"
        );
        assert_eq!(h.succeeded(), Some(Change::Clear));
        assert_eq!(h.succeeded(), None);
    }

    #[test]
    fn raised_between_attempts_with_the_last_error() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let after = Duration::seconds(60);
        let mut h = ChannelHealth::default();
        assert_eq!(h.overdue(t0, after), None, "not failing");
        assert_eq!(h.failed(t0, false, "webhook: cannot connect", after), None);
        assert_eq!(h.overdue(t0 + Duration::seconds(30), after), None);
        assert_eq!(
            h.overdue(t0 + Duration::seconds(60), after),
            Some(Change::Raise(
                "failing for 1 min: webhook: cannot connect".into()
            ))
        );
    }

    #[test]
    fn permanent_refusal_is_a_trouble_at_once() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut h = ChannelHealth::default();
        assert_eq!(
            h.failed(t0, true, "401", Duration::seconds(60)),
            Some(Change::Raise("401".into()))
        );
    }
}
