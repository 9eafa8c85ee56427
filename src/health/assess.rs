//! What is wrong right now, from one observation of the feed, the store and the clock (pure:
//! the supervisor gathers the observation and passes the time in).
//!
//! Each fault names a component (the key the alarm's trouble overlay, MQTT and the web page
//! use) and says in words what is wrong and what to do. Passing blips are not troubles: a
//! fault counts once it has lasted its grace period, and every grace period plus the
//! supervisor's interval stays under the 60 s Beacon promises (NFPA 72 allows 200 s).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use super::paths::{self, PathHealth};
use super::IngestSnapshot;
use crate::calls::{CallRecord, Path};
use crate::graph::call_events::CallEventsStatus;
use crate::graph::reconcile::PollStatus;
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::local_time::Zone;

/// Component names, as shown on the display and published.
pub mod component {
    pub const SIGN_IN: &str = "sign-in";
    pub const SUBSCRIPTION: &str = "subscription";
    pub const EVENT_HUB: &str = "event-hub";
    /// Connected to the hub but assigned none of its partitions: reading nothing.
    pub const HUB_ASSIGNMENT: &str = "hub-assignment";
    pub const REFUSED: &str = "refused-notifications";
    /// Notifications kept unverified: the fleet's secrets were lost with a damaged store.
    pub const UNVERIFIED: &str = "unverified-notifications";
    pub const WAITING: &str = "waiting-for-graph";
    pub const STORAGE: &str = "storage";
    pub const CLOCK: &str = "clock";
    /// The reconciliation poll cannot read the chats.
    pub const CHAT_POLL: &str = "chat-poll";
    /// Chat notifications missed a call another path reported.
    pub const CHAT_NOTIFICATIONS: &str = "chat-notifications";
    /// Graph's emergency call events missed a call another path reported.
    pub const CALL_EVENT_MISSES: &str = "call-event-misses";
    /// The emergency-event subscriptions (the second source) are failing.
    pub const CALL_EVENTS: &str = "call-events";
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub component: &'static str,
    pub detail: String,
}

/// Thresholds; the defaults keep every fault within 60 s of its start at a 10 s interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The hub may be unreachable this long before it is a trouble (reconnects are normal).
    pub hub_grace: Duration,
    /// The consumer may hold no partition this long (a join, or the wait for a member killed
    /// by a power cut to expire) before it is a trouble.
    pub assignment_grace: Duration,
    /// A refresh or renewal may keep failing this long (they are retried) before it is one.
    pub retry_grace: Duration,
    /// A notification may wait for its Graph fetch this long.
    pub waiting_grace: Duration,
    /// A refused notification stays a trouble this long after the last one.
    pub refused_hold: Duration,
    /// Free space below this is a trouble.
    pub min_free_bytes: u64,
    /// A clock before this has not been set (the Pi has no real-time clock).
    pub earliest_plausible: DateTime<Utc>,
    /// How long after a call's first report another path may still report it.
    pub path_window: Duration,
    /// A path that missed a call stays a trouble this long.
    pub missed_hold: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hub_grace: Duration::seconds(30),
            assignment_grace: Duration::seconds(40),
            retry_grace: Duration::seconds(40),
            waiting_grace: Duration::seconds(40),
            refused_hold: Duration::minutes(15),
            min_free_bytes: 64 * 1024 * 1024,
            earliest_plausible: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            path_window: Duration::minutes(3),
            missed_hold: Duration::hours(1),
        }
    }
}

/// Everything the supervisor looked at, at `now`.
#[derive(Debug, Clone)]
pub struct Observation {
    pub now: DateTime<Utc>,
    /// `None` when Graph sign-in is not configured at all.
    pub auth: Option<AuthStatus>,
    /// `None` while no subscription is kept (not signed in yet).
    pub subscription: Option<SubscriptionStatus>,
    pub hub_connected: bool,
    /// The hub's last error in words.
    pub hub_error: Option<String>,
    /// Since when the consumer holds none of the hub's partitions (`None`: it holds some, or
    /// no consumer runs).
    pub hub_unassigned_since: Option<DateTime<Utc>>,
    /// The consumer group, for the words of that trouble.
    pub hub_group: Option<String>,
    pub ingest: IngestSnapshot,
    /// Notifications in the inbox (waiting for recognition), and the oldest one's arrival.
    pub waiting: usize,
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// Records kept unverified (the fleet's secrets lost with a damaged store): how many, and
    /// since when.
    pub unverified: Option<(usize, DateTime<Utc>)>,
    /// Free and total bytes on the data directory's filesystem, when known.
    pub disk_free: Option<u64>,
    /// The result of a small write to the store.
    pub store_write: Result<(), String>,
    /// The reconciliation poll; `None` without the cloud feed.
    pub poll: Option<PollStatus>,
    /// The emergency-event subscriptions; `None` without the cloud feed, empty when off.
    pub call_events: Option<CallEventsStatus>,
    /// The call records (which paths reported each call).
    pub calls: Vec<CallRecord>,
    /// The zone the times in the fault texts are shown in.
    pub zone: Arc<Zone>,
}

/// Remembers what one observation alone cannot tell: since when the hub is down, when the
/// last notification was refused.
#[derive(Debug, Clone, Default)]
pub struct Assessor {
    hub_down_since: Option<DateTime<Utc>>,
    refused_seen: Option<u64>,
    last_refused_at: Option<DateTime<Utc>>,
    paths: Vec<PathHealth>,
}

impl Assessor {
    /// Each path's figures at the last assessment.
    pub fn paths(&self) -> &[PathHealth] {
        &self.paths
    }

    /// The faults at `obs.now`, in a stable order.
    pub fn assess(&mut self, obs: &Observation, limits: &Limits) -> Vec<Fault> {
        let mut faults = Vec::new();
        let mut fault = |component, detail: String| faults.push(Fault { component, detail });
        let now = obs.now;

        if now < limits.earliest_plausible {
            fault(
                component::CLOCK,
                format!(
                    "the clock says {} — it has not been set; check the network time server",
                    obs.zone.format_minutes(now)
                ),
            );
        }
        if let Some(detail) = sign_in(obs.auth.as_ref(), now, limits, &obs.zone) {
            fault(component::SIGN_IN, detail);
        }
        if let Some(detail) = subscription(obs, limits) {
            fault(component::SUBSCRIPTION, detail);
        }
        if let Some(detail) = poll(obs.poll.as_ref(), now, limits, &obs.zone) {
            fault(component::CHAT_POLL, detail);
        }
        if let Some(detail) = call_events(obs, limits) {
            fault(component::CALL_EVENTS, detail);
        }
        // Push is held to every call while a subscription is live.
        let push_expected = obs
            .subscription
            .as_ref()
            .is_some_and(|s| s.subscription_id.is_some());
        let expected: Vec<Path> = [
            (push_expected, Path::ChatNotification),
            (call_events_live(obs), Path::CallEvent),
        ]
        .into_iter()
        .filter_map(|(live, path)| live.then_some(path))
        .collect();
        let (figures, misses) = paths::assess(&obs.calls, &expected, now, limits.path_window);
        self.paths = figures;
        for (path, name) in [
            (Path::ChatNotification, component::CHAT_NOTIFICATIONS),
            (Path::CallEvent, component::CALL_EVENT_MISSES),
        ] {
            if let Some(detail) = paths::trouble(&misses, path, now, limits.missed_hold, &obs.zone)
            {
                fault(name, detail);
            }
        }

        if obs.hub_connected {
            self.hub_down_since = None;
        } else {
            let since = *self.hub_down_since.get_or_insert(now);
            if now - since >= limits.hub_grace {
                let why = obs.hub_error.as_deref().unwrap_or("no answer");
                fault(
                    component::EVENT_HUB,
                    format!(
                        "Event Hub unreachable since {}: {why}",
                        hhmm(since, &obs.zone)
                    ),
                );
            }
        }

        if let (true, Some(since)) = (obs.hub_connected, obs.hub_unassigned_since) {
            if now - since >= limits.assignment_grace {
                fault(
                    component::HUB_ASSIGNMENT,
                    format!(
                        "connected to the Event Hub but reading none of its partitions since {}: \
                         another consumer may use this box's consumer group{} (give each box its \
                         own, Setup → 2. Event Hub settings), or the hub assigned it none; this \
                         box leaves the group and joins again, a minute after it lost them and \
                         then every few minutes",
                        hhmm(since, &obs.zone),
                        obs.hub_group
                            .as_deref()
                            .map(|g| format!(" \"{g}\""))
                            .unwrap_or_default(),
                    ),
                );
            }
        }

        let refused = obs.ingest.client_state_rejects + obs.ingest.signature_rejects;
        if let Some(seen) = self.refused_seen {
            if refused > seen {
                // The time of the refusal itself, not of this look at the counters.
                self.last_refused_at = Some(
                    DateTime::from_timestamp_millis(obs.ingest.last_refused_ms)
                        .filter(|_| obs.ingest.last_refused_ms > 0)
                        .unwrap_or(now),
                );
            }
        }
        self.refused_seen = Some(refused);
        if let Some(at) = self.last_refused_at {
            if now - at < limits.refused_hold {
                fault(
                    component::REFUSED,
                    format!(
                        "notifications of this fleet's subscription refused (wrong clientState or \
                         signature), last at {}: a Beacon that has not joined this fleet uses its \
                         service account (join it, Settings → Fleet), no box holds the \
                         subscription's clientState any more (delete it and make it again, \
                         Settings → Fleet), or someone is sending forged notifications",
                        hhmm(at, &obs.zone)
                    ),
                );
            }
        }

        if let Some((count, since)) = obs.unverified {
            fault(
                component::UNVERIFIED,
                format!(
                    "{count} notification(s) kept unverified since {}: this box's store was \
                     damaged and renewed without the fleet's secrets, so it cannot tell the \
                     fleet's notifications from strangers'. Join the fleet again from one of its \
                     boxes (Settings → Fleet); a box alone: sign in, then delete the \
                     subscription and make it again (Settings → Fleet). They are read again \
                     when the secrets are back; the chat poll reads the chats meanwhile",
                    hhmm(since, &obs.zone)
                ),
            );
        }

        if let Some(oldest) = obs.oldest_waiting {
            if obs.waiting > 0 && now - oldest >= limits.waiting_grace {
                fault(
                    component::WAITING,
                    format!(
                        "{} notification(s) waiting for their message from Graph since {}",
                        obs.waiting,
                        hhmm(oldest, &obs.zone)
                    ),
                );
            }
        }

        let mut storage = Vec::new();
        if let Err(e) = &obs.store_write {
            storage.push(format!("the store cannot be written: {e}"));
        }
        if let Some(free) = obs.disk_free {
            if free < limits.min_free_bytes {
                storage.push(format!(
                    "only {} MB free on the data partition",
                    free / (1024 * 1024)
                ));
            }
        }
        if !storage.is_empty() {
            fault(component::STORAGE, storage.join("; "));
        }
        faults
    }
}

fn sign_in(
    auth: Option<&AuthStatus>,
    now: DateTime<Utc>,
    limits: &Limits,
    zone: &Zone,
) -> Option<String> {
    match auth? {
        AuthStatus::SignedOut => {
            Some("the service account is not signed in: sign it in on the setup page".to_string())
        }
        AuthStatus::SigningIn { .. } => {
            Some("a sign-in is waiting for someone to enter the code".to_string())
        }
        AuthStatus::SignInRequired { sentence, .. } => Some(sentence.clone()),
        AuthStatus::Retrying { sentence, since } if now - *since >= limits.retry_grace => {
            Some(format!(
                "token refresh failing since {}: {sentence}",
                hhmm(*since, zone)
            ))
        }
        AuthStatus::Retrying { .. } => None,
        AuthStatus::SignedIn {
            access_expires_at, ..
        } if *access_expires_at + limits.retry_grace <= now => Some(format!(
            "the access token expired at {} and was not renewed",
            hhmm(*access_expires_at, zone)
        )),
        AuthStatus::SignedIn { .. } => None,
    }
}

fn poll(
    poll: Option<&PollStatus>,
    now: DateTime<Utc>,
    limits: &Limits,
    zone: &Zone,
) -> Option<String> {
    let poll = poll?;
    match (&poll.problem, poll.problem_since) {
        (Some(problem), Some(since)) if now - since >= limits.retry_grace => Some(format!(
            "the chat poll has failed since {}: {problem} — a dropped notification would go unnoticed",
            hhmm(since, zone)
        )),
        _ => None,
    }
}

fn subscription(obs: &Observation, limits: &Limits) -> Option<String> {
    let status = obs.subscription.as_ref()?;
    let now = obs.now;
    if let Some(expires) = status.expires_at {
        if expires <= now {
            return Some(format!(
                "the subscription expired at {}: no notifications arrive",
                hhmm(expires, &obs.zone)
            ));
        }
    }
    if let (Some(problem), Some(since)) = (&status.problem, status.problem_since) {
        if now - since >= limits.retry_grace {
            return Some(format!("{problem} (since {})", hhmm(since, &obs.zone)));
        }
    }
    None
}

/// The emergency-event subscriptions: one failing past the retry grace, or expired, in
/// words per policy ("emergency call events for HQ-Emergency: …").
fn call_events(obs: &Observation, limits: &Limits) -> Option<String> {
    let status = obs.call_events.as_ref()?;
    let now = obs.now;
    let words: Vec<String> = status
        .policies
        .iter()
        .filter_map(|p| {
            let failing = match (&p.problem, p.problem_since) {
                (Some(problem), Some(since)) if now - since >= limits.retry_grace => {
                    Some(format!("{problem} (since {})", hhmm(since, &obs.zone)))
                }
                _ => None,
            };
            let expired = p
                .expires_at
                .filter(|at| *at <= now)
                .map(|at| format!("the subscription expired at {}", hhmm(at, &obs.zone)));
            failing
                .or(expired)
                .map(|w| format!("emergency call events for {}: {w}", p.policy))
        })
        .collect();
    (!words.is_empty()).then(|| words.join("; "))
}

/// Whether an emergency-event subscription is live, so that every call is expected from the
/// call events too.
fn call_events_live(obs: &Observation) -> bool {
    obs.call_events.as_ref().is_some_and(|status| {
        status
            .policies
            .iter()
            .any(|p| p.subscription_id.is_some() && p.expires_at.is_some_and(|at| at > obs.now))
    })
}

/// `14:02 PST`: a moment in a fault text, in the appliance's zone.
fn hhmm(at: DateTime<Utc>, zone: &Zone) -> String {
    zone.format_time(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::seconds(secs)
    }

    fn healthy(now: DateTime<Utc>) -> Observation {
        Observation {
            now,
            auth: Some(AuthStatus::SignedIn {
                access_expires_at: now + Duration::minutes(50),
                refresh_at: now + Duration::minutes(40),
            }),
            subscription: Some(SubscriptionStatus {
                subscription_id: Some("sub".into()),
                expires_at: Some(now + Duration::days(2)),
                ..SubscriptionStatus::default()
            }),
            hub_connected: true,
            hub_error: None,
            hub_unassigned_since: None,
            hub_group: None,
            ingest: IngestSnapshot::default(),
            waiting: 0,
            oldest_waiting: None,
            unverified: None,
            disk_free: Some(10 << 30),
            store_write: Ok(()),
            poll: None,
            call_events: None,
            calls: Vec::new(),
            zone: Arc::new(Zone::utc()),
        }
    }

    fn components(faults: &[Fault]) -> Vec<&'static str> {
        faults.iter().map(|f| f.component).collect()
    }

    #[test]
    fn a_healthy_appliance_has_no_fault() {
        let mut assessor = Assessor::default();
        assert!(assessor
            .assess(&healthy(at(0)), &Limits::default())
            .is_empty());
    }

    #[test]
    fn the_hub_is_a_trouble_after_its_grace_and_clears_when_back() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let down = |secs| {
            let mut obs = healthy(at(secs));
            obs.hub_connected = false;
            obs.hub_error = Some("SASL authentication failed".into());
            obs
        };
        assert!(assessor.assess(&down(0), &limits).is_empty(), "a blip");
        assert!(assessor.assess(&down(20), &limits).is_empty());
        let faults = assessor.assess(&down(30), &limits);
        assert_eq!(components(&faults), [component::EVENT_HUB]);
        assert!(faults[0].detail.contains("SASL authentication failed"));
        assert!(assessor.assess(&healthy(at(40)), &limits).is_empty());
        // Down again: the grace starts over.
        assert!(assessor.assess(&down(50), &limits).is_empty());
    }

    #[test]
    fn a_box_reading_no_partition_is_a_trouble_after_its_grace_naming_its_group() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let unassigned = |secs| Observation {
            hub_unassigned_since: Some(at(0)),
            hub_group: Some("desk-a".into()),
            ..healthy(at(secs))
        };
        assert!(
            assessor.assess(&unassigned(30), &limits).is_empty(),
            "a join"
        );
        let faults = assessor.assess(&unassigned(40), &limits);
        assert_eq!(components(&faults), [component::HUB_ASSIGNMENT]);
        assert!(
            faults[0].detail.contains("\"desk-a\""),
            "{}",
            faults[0].detail
        );
        assert!(
            faults[0].detail.contains("since 12:00"),
            "{}",
            faults[0].detail
        );
        // The hub down as well: that trouble says it, not this one.
        let mut down = unassigned(100);
        down.hub_connected = false;
        assert!(!components(&assessor.assess(&down, &limits)).contains(&component::HUB_ASSIGNMENT));
        assert!(assessor.assess(&healthy(at(200)), &limits).is_empty());
    }

    #[test]
    fn times_in_fault_texts_are_in_the_appliances_zone() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let seattle = Arc::new(Zone::named("America/Los_Angeles").expect("system zoneinfo"));
        let down = |secs| {
            let mut obs = healthy(at(secs));
            obs.hub_connected = false;
            obs.zone = seattle.clone();
            obs
        };
        assessor.assess(&down(0), &limits);
        let faults = assessor.assess(&down(30), &limits);
        let since = seattle.format_time(at(0));
        assert!(
            since.ends_with(" PST") || since.ends_with(" PDT"),
            "{since}"
        );
        assert!(
            faults[0].detail.contains(&format!("since {since}")),
            "{faults:?}"
        );
    }

    #[test]
    fn sign_in_faults_follow_the_token_keeper() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let with = |auth| Observation {
            auth: Some(auth),
            ..healthy(at(100))
        };
        let required = AuthStatus::SignInRequired {
            sentence: "The refresh token was revoked: sign in again.".into(),
            since: at(99),
        };
        let faults = assessor.assess(&with(required), &limits);
        assert_eq!(
            faults[0].detail,
            "The refresh token was revoked: sign in again."
        );
        let retrying = |since| AuthStatus::Retrying {
            sentence: "Microsoft did not answer".into(),
            since: at(since),
        };
        assert!(assessor.assess(&with(retrying(90)), &limits).is_empty());
        assert_eq!(
            components(&assessor.assess(&with(retrying(60)), &limits)),
            [component::SIGN_IN]
        );
        let stale = AuthStatus::SignedIn {
            access_expires_at: at(0),
            refresh_at: at(-600),
        };
        assert_eq!(
            components(&assessor.assess(&with(stale), &limits)),
            [component::SIGN_IN]
        );
        let not_configured = Observation {
            auth: None,
            ..healthy(at(100))
        };
        assert!(assessor.assess(&not_configured, &limits).is_empty());
    }

    #[test]
    fn an_expired_or_failing_subscription_is_a_trouble() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let with = |status| Observation {
            subscription: Some(status),
            ..healthy(at(100))
        };
        let expired = SubscriptionStatus {
            subscription_id: Some("sub".into()),
            expires_at: Some(at(50)),
            ..SubscriptionStatus::default()
        };
        assert_eq!(
            components(&assessor.assess(&with(expired), &limits)),
            [component::SUBSCRIPTION]
        );
        let failing = |since| SubscriptionStatus {
            subscription_id: Some("sub".into()),
            expires_at: Some(at(86_400)),
            problem: Some("Graph refused the renewal (403)".into()),
            problem_since: Some(at(since)),
            ..SubscriptionStatus::default()
        };
        assert!(assessor.assess(&with(failing(80)), &limits).is_empty());
        let faults = assessor.assess(&with(failing(50)), &limits);
        assert!(faults[0]
            .detail
            .starts_with("Graph refused the renewal (403)"));
    }

    #[test]
    fn a_failing_call_event_subscription_is_a_trouble_naming_the_policy() {
        use crate::graph::call_events::PolicyStatus;
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let with = |policies| Observation {
            call_events: Some(CallEventsStatus { policies }),
            ..healthy(at(100))
        };
        let consent = |since| {
            PolicyStatus {
            policy: "HQ-Emergency".into(),
            problem: Some("Admin consent for the application permission CallEvents-Emergency.Read.All is missing or was revoked".into()),
            problem_since: Some(at(since)),
            ..PolicyStatus::default()
        }
        };
        let fine = PolicyStatus {
            policy: "Branch".into(),
            subscription_id: Some("s".into()),
            expires_at: Some(at(40_000)),
            ..PolicyStatus::default()
        };
        // A passing blip is not a trouble; a lasting refusal is, in words, per policy.
        assert!(assessor
            .assess(&with(vec![consent(90), fine.clone()]), &limits)
            .is_empty());
        let faults = assessor.assess(&with(vec![consent(50), fine.clone()]), &limits);
        assert_eq!(components(&faults), [component::CALL_EVENTS]);
        assert_eq!(
            faults[0].detail,
            "emergency call events for HQ-Emergency: Admin consent for the application permission CallEvents-Emergency.Read.All is missing or was revoked (since 12:00 UTC)"
        );
        let expired = PolicyStatus {
            expires_at: Some(at(99)),
            ..fine.clone()
        };
        assert!(assessor.assess(&with(vec![expired]), &limits)[0]
            .detail
            .contains("Branch: the subscription expired"));
        // Off (no policies) or no cloud feed: nothing.
        assert!(assessor.assess(&with(Vec::new()), &limits).is_empty());
    }

    #[test]
    fn refused_notifications_hold_a_trouble_for_a_while() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let refused = |secs, count| {
            let mut obs = healthy(at(secs));
            obs.ingest.client_state_rejects = count;
            obs
        };
        // Counts from before the supervisor started are not news.
        assert!(assessor.assess(&refused(0, 3), &limits).is_empty());
        assert_eq!(
            components(&assessor.assess(&refused(10, 4), &limits)),
            [component::REFUSED]
        );
        assert!(!assessor.assess(&refused(800, 4), &limits).is_empty());
        assert!(assessor
            .assess(&refused(10 + 15 * 60, 4), &limits)
            .is_empty());
    }

    #[test]
    fn notifications_kept_unverified_are_a_trouble_that_says_what_to_do_until_read_again() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let mut obs = healthy(at(600));
        obs.unverified = Some((3, at(5)));
        let faults = assessor.assess(&obs, &limits);
        assert_eq!(components(&faults), [component::UNVERIFIED]);
        let detail = &faults[0].detail;
        assert!(
            detail.starts_with("3 notification(s) kept unverified since 12:00 UTC"),
            "{detail}"
        );
        assert!(detail.contains("Join the fleet again"), "{detail}");
        // Read again (the tree is empty): no trouble, however long ago they were kept.
        obs.unverified = None;
        assert!(assessor.assess(&obs, &limits).is_empty());
    }

    #[test]
    fn the_refused_trouble_says_when_the_refusal_happened() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        assert!(assessor.assess(&healthy(at(0)), &limits).is_empty());
        // Refused at 12:00:03; the supervisor looks at 12:02:10 (times are shown to the minute).
        let mut obs = healthy(at(130));
        obs.ingest.client_state_rejects = 1;
        obs.ingest.last_refused_ms = at(3).timestamp_millis();
        let faults = assessor.assess(&obs, &limits);
        assert!(
            faults[0].detail.contains("last at 12:00 UTC"),
            "{}",
            faults[0].detail
        );
        // Held from the refusal: 15 minutes after 12:00:03, not after 12:02:10.
        obs.now = at(3 + 15 * 60);
        assert!(assessor.assess(&obs, &limits).is_empty());
    }

    #[test]
    fn waiting_messages_storage_and_clock() {
        let limits = Limits::default();
        let mut assessor = Assessor::default();
        let mut obs = healthy(at(100));
        obs.waiting = 2;
        obs.oldest_waiting = Some(at(80));
        assert!(
            assessor.assess(&obs, &limits).is_empty(),
            "within the grace"
        );
        obs.oldest_waiting = Some(at(50));
        obs.disk_free = Some(10 * 1024 * 1024);
        obs.store_write = Err("No space left on device".into());
        let faults = assessor.assess(&obs, &limits);
        assert_eq!(
            components(&faults),
            [component::WAITING, component::STORAGE]
        );
        assert!(faults[1].detail.contains("No space left on device"));
        assert!(faults[1].detail.contains("10 MB free"));

        let unset = Utc
            .with_ymd_and_hms(1970, 1, 1, 0, 1, 0)
            .single()
            .unwrap_or_default();
        let faults = assessor.assess(&healthy(unset), &limits);
        assert_eq!(components(&faults), [component::CLOCK]);
    }
}
