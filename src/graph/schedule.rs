//! The subscription keeper's schedule (pure): given the time and what is known of our
//! subscription, what to do next (graph-teams.md B.3, B.8, B.9, C.4).
//!
//! * Start-up (and every hour): reconcile with `GET /subscriptions`.
//! * No subscription, removed, or expired: create one.
//! * `reauthorizationRequired`: reauthorize.
//! * Past half of its lifetime since the last renewal: renew (PATCH), which also reauthorizes.
//! * Otherwise wait until the earliest of those moments.
//!
//! Lifecycle events are not relied on (B.9): the timers alone keep the subscription alive.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Lifetime asked for: just under Graph's 4,320-minute maximum for chat messages, with room
/// for clock skew.
pub const LIFETIME_MINUTES: i64 = 4_300;
/// How often the keeper compares its view with Graph's list.
pub const RECONCILE_EVERY_MINUTES: i64 = 60;

/// Our subscription, as last confirmed by Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub resource: String,
    pub expires_at: DateTime<Utc>,
    /// When it was created or last renewed.
    pub renewed_at: DateTime<Utc>,
}

impl Subscription {
    /// Half-life: renew then — half of the lifetime we ask for after the last renewal, or
    /// half-way to the expiry Graph confirmed if that is sooner.
    pub fn renew_at(&self) -> DateTime<Utc> {
        let asked = self.renewed_at + Duration::minutes(LIFETIME_MINUTES / 2);
        let confirmed = self.renewed_at + (self.expires_at - self.renewed_at) / 2;
        asked.min(confirmed)
    }
}

/// What the keeper knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeeperState {
    pub subscription: Option<Subscription>,
    pub last_reconcile: Option<DateTime<Utc>>,
    /// A `reauthorizationRequired` arrived and is not yet handled.
    pub reauthorize_requested: bool,
    /// A `subscriptionRemoved` (or a 404) said ours is gone.
    pub removed: bool,
}

/// The next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reconcile,
    Create,
    Reauthorize { id: String },
    Renew { id: String },
    WaitUntil(DateTime<Utc>),
}

/// Decides the next step. Pure.
pub fn next_action(now: DateTime<Utc>, state: &KeeperState) -> Action {
    let reconcile_due = state
        .last_reconcile
        .map(|at| at + Duration::minutes(RECONCILE_EVERY_MINUTES));
    if reconcile_due.is_none_or(|due| now >= due) {
        return Action::Reconcile;
    }
    let Some(sub) = state.subscription.as_ref().filter(|_| !state.removed) else {
        return Action::Create;
    };
    if now >= sub.expires_at {
        return Action::Create;
    }
    if state.reauthorize_requested {
        return Action::Reauthorize { id: sub.id.clone() };
    }
    if now >= sub.renew_at() {
        return Action::Renew { id: sub.id.clone() };
    }
    let next = [sub.renew_at(), reconcile_due.unwrap_or(now)]
        .into_iter()
        .min()
        .unwrap_or(now);
    Action::WaitUntil(next)
}

/// The expiry to ask for at `now`.
pub fn expiry_for(now: DateTime<Utc>) -> DateTime<Utc> {
    expiry_after(now, LIFETIME_MINUTES)
}

/// The expiry to ask for at `now` for a lifetime of `minutes` (at most [`LIFETIME_MINUTES`]).
pub fn expiry_after(now: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    now + Duration::minutes(minutes.clamp(1, LIFETIME_MINUTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    fn live(renewed: i64) -> KeeperState {
        KeeperState {
            subscription: Some(Subscription {
                id: "s1".into(),
                resource: "/users/u/chats/getAllMessages".into(),
                renewed_at: t(renewed),
                expires_at: t(renewed) + Duration::minutes(LIFETIME_MINUTES),
            }),
            last_reconcile: Some(t(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn start_up_reconciles_then_creates() {
        assert_eq!(
            next_action(t(0), &KeeperState::default()),
            Action::Reconcile
        );
        let reconciled = KeeperState {
            last_reconcile: Some(t(0)),
            ..Default::default()
        };
        assert_eq!(next_action(t(0), &reconciled), Action::Create);
    }

    #[test]
    fn renews_at_half_life_and_waits_before() {
        let mut state = live(0);
        let half = LIFETIME_MINUTES / 2;
        // Reconciles hourly in between.
        assert_eq!(next_action(t(10), &state), Action::WaitUntil(t(60)));
        assert_eq!(next_action(t(60), &state), Action::Reconcile);
        state.last_reconcile = Some(t(half - 5));
        assert_eq!(next_action(t(half - 5), &state), Action::WaitUntil(t(half)));
        assert_eq!(
            next_action(t(half), &state),
            Action::Renew { id: "s1".into() }
        );
    }

    #[test]
    fn lifecycle_and_expiry() {
        let mut state = live(0);
        state.reauthorize_requested = true;
        assert_eq!(
            next_action(t(1), &state),
            Action::Reauthorize { id: "s1".into() }
        );
        state.reauthorize_requested = false;
        state.removed = true;
        assert_eq!(next_action(t(1), &state), Action::Create);
        let mut expired = live(0);
        expired.last_reconcile = Some(t(LIFETIME_MINUTES));
        assert_eq!(next_action(t(LIFETIME_MINUTES), &expired), Action::Create);
    }

    #[test]
    fn a_shorter_confirmed_expiry_brings_renewal_forward() {
        let mut state = live(0);
        if let Some(sub) = state.subscription.as_mut() {
            sub.expires_at = t(600);
        }
        assert_eq!(state.subscription.map(|s| s.renew_at()), Some(t(300)));
    }

    #[test]
    fn requested_expiry_stays_under_the_maximum() {
        assert!(expiry_for(t(0)) - t(0) < Duration::minutes(4_320));
        assert!(expiry_for(t(0)) - t(0) > Duration::minutes(4_200));
    }
}
