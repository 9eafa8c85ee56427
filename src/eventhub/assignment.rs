//! Whether this box holds any of the hub's partitions, and what to do when it holds none.
//!
//! A consumer that belongs to its group but is assigned no partition reads nothing and sees no
//! error: librdkafka is connected, heartbeats are answered, the poll loop turns. Two causes are
//! known: another consumer in the same group (two boxes given one consumer group, so one of
//! them is deaf on a hub with one partition), and a group coordinator that handed out an empty
//! assignment while a member killed without leaving (a power cut) was still being expired —
//! the campaign's test broker does this; a coordinator that never rebalances again leaves the
//! box deaf for good. So:
//!
//! * the time since the box last held a partition is shown (the `hub-assignment` trouble,
//!   raised by the health assessment once it has lasted its grace period);
//! * after [`REJOIN_AFTER`] without a partition, the consumer leaves its group and joins
//!   again (a LeaveGroup makes the coordinator form the group anew, with this box among the
//!   members it assigns to), and again after twice as long each time it still holds none, up
//!   to [`REJOIN_AT_MOST_EVERY`]: a group shared on purpose is not made to rebalance every
//!   minute.
//!
//! Pure: the consumer passes the monotonic time in.

use std::time::{Duration, Instant};

/// Without a partition this long, the consumer leaves and joins its group again. Longer than a
/// normal join (a few seconds) and than the wait for a member killed by a power cut to expire
/// (the session timeout, 30 s).
pub const REJOIN_AFTER: Duration = Duration::from_secs(60);
/// The longest wait between two rejoins while the box still holds no partition.
pub const REJOIN_AT_MOST_EVERY: Duration = Duration::from_secs(15 * 60);

/// What the consumer does after one look at its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do.
    Hold,
    /// Leave the group and join it again.
    Rejoin,
}

/// Follows the number of partitions assigned to this box over time.
#[derive(Debug, Clone)]
pub struct AssignmentWatch {
    /// Since when the box holds no partition (`None`: it holds some).
    empty_since: Option<Instant>,
    /// When the next rejoin is due while it holds none.
    rejoin_at: Option<Instant>,
    /// The wait before the next rejoin after that one.
    next_wait: Duration,
}

impl Default for AssignmentWatch {
    fn default() -> Self {
        AssignmentWatch {
            empty_since: None,
            rejoin_at: None,
            next_wait: REJOIN_AFTER,
        }
    }
}

impl AssignmentWatch {
    /// The consumer holds `assigned` partitions at `now`.
    pub fn observe(&mut self, assigned: usize, now: Instant) -> Step {
        if assigned > 0 {
            *self = AssignmentWatch::default();
            return Step::Hold;
        }
        self.empty_since.get_or_insert(now);
        let due = *self.rejoin_at.get_or_insert(now + self.next_wait);
        if now < due {
            return Step::Hold;
        }
        self.next_wait = (self.next_wait * 2).min(REJOIN_AT_MOST_EVERY);
        self.rejoin_at = Some(now + self.next_wait);
        Step::Rejoin
    }

    /// Since when the box holds no partition; `None` while it holds some.
    pub fn empty_since(&self) -> Option<Instant> {
        self.empty_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejoins(
        watch: &mut AssignmentWatch,
        start: Instant,
        assigned: usize,
        secs: u64,
    ) -> Vec<u64> {
        (0..=secs)
            .filter(|s| watch.observe(assigned, start + Duration::from_secs(*s)) == Step::Rejoin)
            .collect()
    }

    #[test]
    fn a_box_without_a_partition_rejoins_after_a_minute_then_ever_less_often() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::default();
        // 60 s, then 120 s, 240 s, 480 s, 900 s (the cap), 900 s...
        assert_eq!(
            rejoins(&mut watch, start, 0, 3600),
            [60, 180, 420, 900, 1800, 2700, 3600]
        );
        assert_eq!(watch.empty_since(), Some(start));
    }

    #[test]
    fn a_box_holding_a_partition_never_rejoins_and_starts_over_when_it_loses_it() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::default();
        assert!(rejoins(&mut watch, start, 1, 600).is_empty());
        assert_eq!(watch.empty_since(), None);
        // Without partitions for 59 s, then one again: no rejoin, and the count starts over.
        assert!(rejoins(&mut watch, start, 0, 59).is_empty());
        assert_eq!(
            watch.observe(2, start + Duration::from_secs(59)),
            Step::Hold
        );
        assert_eq!(watch.empty_since(), None);
        let later = start + Duration::from_secs(100);
        assert_eq!(rejoins(&mut watch, later, 0, 61), [60]);
    }
}
