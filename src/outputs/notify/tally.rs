//! Delivery attempts counted per channel and outcome since start, for `/metrics`
//! (`beacon_notification_deliveries_total`). Counters only go up; readers compute rates.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::channel::Channel;

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The peer took the message.
    Delivered,
    /// The attempt failed (for now, or refused as it is); the message will be tried again.
    Failed,
    /// The attempt failed and the message expired: it is not tried again.
    Expired,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Delivered, Outcome::Failed, Outcome::Expired];

    /// The `outcome` label.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
        }
    }
}

/// The counts of the configured channels, shared by their delivery loops and the console.
#[derive(Debug)]
pub struct DeliveryTally {
    channels: Vec<Channel>,
    counts: Mutex<BTreeMap<(Channel, Outcome), u64>>,
}

impl DeliveryTally {
    /// No attempt yet on any of `channels`.
    pub fn new(channels: Vec<Channel>) -> DeliveryTally {
        DeliveryTally {
            channels,
            counts: Mutex::default(),
        }
    }

    /// Counts one attempt on `channel`.
    pub fn count(&self, channel: Channel, outcome: Outcome) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((channel, outcome)).or_default() += 1;
        }
    }

    /// Every (channel, outcome) pair of the configured channels with its count, zeros
    /// included, so a series exists before its first event (rates over it start at zero).
    pub fn snapshot(&self) -> Vec<(Channel, Outcome, u64)> {
        let counts = self
            .counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default();
        self.channels
            .iter()
            .flat_map(|&channel| Outcome::ALL.map(|outcome| (channel, outcome)))
            .map(|(channel, outcome)| {
                let count = counts.get(&(channel, outcome)).copied().unwrap_or(0);
                (channel, outcome, count)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_the_configured_channels_is_listed_with_its_count() {
        let tally = DeliveryTally::new(vec![Channel::Email]);
        tally.count(Channel::Email, Outcome::Failed);
        tally.count(Channel::Email, Outcome::Failed);
        tally.count(Channel::Email, Outcome::Delivered);
        tally.count(Channel::Sms, Outcome::Expired);
        let counts = tally.snapshot();
        assert_eq!(
            counts,
            vec![
                (Channel::Email, Outcome::Delivered, 1),
                (Channel::Email, Outcome::Failed, 2),
                (Channel::Email, Outcome::Expired, 0),
            ]
        );
    }
}
