//! Broker-link supervision (pure; time passed in): when the broker has been unreachable for
//! longer than `trouble_after`, the link asks for a trouble on the alarm; when it is back, it
//! asks to clear it. The [`super::publisher`] feeds it connection events and calls
//! [`Link::tick`] at [`Link::deadline`].

use std::time::{Duration, Instant};

/// What the publisher should tell the alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TroubleChange {
    /// Raise the `mqtt` trouble with this detail.
    Raise(String),
    /// Clear the `mqtt` trouble.
    Clear,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Link {
    trouble_after: Duration,
    /// `host:port`, for the trouble text.
    broker: String,
    connected: bool,
    /// Since when it has been down (or trying for the first time).
    down_since: Instant,
    last_error: Option<String>,
    trouble_raised: bool,
}

impl Link {
    /// A link that is not connected yet, as of `now`.
    pub fn new(broker: &str, trouble_after: Duration, now: Instant) -> Link {
        Link {
            trouble_after,
            broker: broker.to_string(),
            connected: false,
            down_since: now,
            last_error: None,
            trouble_raised: false,
        }
    }

    /// Whether the broker is connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The last connection error, in words.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The broker accepted the connection.
    pub fn connected(&mut self) -> Option<TroubleChange> {
        self.connected = true;
        self.last_error = None;
        if std::mem::take(&mut self.trouble_raised) {
            Some(TroubleChange::Clear)
        } else {
            None
        }
    }

    /// The connection failed or was lost at `now`, because of `error`.
    pub fn lost(&mut self, error: &str, now: Instant) {
        if self.connected {
            self.down_since = now;
        }
        self.connected = false;
        self.last_error = Some(error.to_string());
    }

    /// When [`Link::tick`] has something to do, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.connected && !self.trouble_raised).then(|| self.down_since + self.trouble_after)
    }

    /// Raises the trouble once the link has been down for `trouble_after`.
    pub fn tick(&mut self, now: Instant) -> Option<TroubleChange> {
        let due = self.deadline().is_some_and(|at| now >= at);
        if !due {
            return None;
        }
        self.trouble_raised = true;
        let secs = now.saturating_duration_since(self.down_since).as_secs();
        let reason = self.last_error.as_deref().unwrap_or("no answer");
        Some(TroubleChange::Raise(format!(
            "MQTT broker {} unreachable for {secs} s: {reason}",
            self.broker
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(30);

    #[test]
    fn a_short_outage_raises_nothing() {
        let t0 = Instant::now();
        let mut link = Link::new("broker:1883", AFTER, t0);
        assert_eq!(link.connected(), None);
        link.lost("connection reset", t0 + Duration::from_secs(100));
        assert_eq!(link.tick(t0 + Duration::from_secs(129)), None);
        assert_eq!(link.connected(), None);
        assert_eq!(link.deadline(), None);
    }

    #[test]
    fn a_long_outage_raises_once_and_clears_when_back() {
        let t0 = Instant::now();
        let mut link = Link::new("broker:1883", AFTER, t0);
        link.connected();
        let down = t0 + Duration::from_secs(10);
        link.lost("connection refused", down);
        // Later failures to reconnect do not move the start of the outage.
        link.lost("connection refused", down + Duration::from_secs(20));
        assert_eq!(link.deadline(), Some(down + AFTER));
        match link.tick(down + AFTER) {
            Some(TroubleChange::Raise(detail)) => {
                assert!(detail.contains("broker:1883"), "{detail}");
                assert!(detail.contains("30 s"), "{detail}");
                assert!(detail.contains("connection refused"), "{detail}");
            }
            other => panic!("expected a trouble, got {other:?}"),
        }
        assert_eq!(link.tick(down + AFTER * 3), None, "raised once");
        assert_eq!(link.connected(), Some(TroubleChange::Clear));
        assert_eq!(link.last_error(), None);
    }

    #[test]
    fn never_connecting_at_start_is_a_trouble_too() {
        let t0 = Instant::now();
        let mut link = Link::new("broker:1883", AFTER, t0);
        link.lost("dns error", t0 + Duration::from_secs(1));
        assert!(matches!(
            link.tick(t0 + AFTER),
            Some(TroubleChange::Raise(_))
        ));
    }
}
