//! The reconciliation poll: the safety net under the chat notifications. Graph drops chat
//! notifications silently now and then (graph-teams.md B.11: one or two a day at a message
//! every 3 minutes, with no `missed` event), so push is never trusted alone.
//!
//! Every `every` (30 s by default, `[graph] reconcile_every_secs`) the service account's
//! recently active chats and their messages since the last listing are read from Graph
//! ([`super::resync`]) and go through the same inbox, de-duplication and recognition as a
//! notification: a call found this way alarms at once, and its notification, should it still
//! come, is a duplicate. The same loop reads further back after every gap it can see: at
//! start, when the subscription was replaced, when the hub was unreachable for a while, and
//! when Graph sends a `missed` lifecycle event ([`PollHandle::read_now`]).
//!
//! Graph calls per poll on a quiet service account: one (the first page of `/me/chats`, which
//! ends at the first chat older than the last listing), plus one per chat with a message in
//! the last listing's window and [`super::resync::OVERLAP`]. Throttling (429 with
//! `Retry-After`) is waited out inside the Graph client; the polls run one after the other,
//! so a throttled poll delays the next one rather than piling up.
//!
//! Reading Graph also uses the sign-in every 30 s, so a revoked sign-in is noticed while the
//! box is idle (the token keeper then says "sign-in required"), not at the next emergency.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};

use super::client::GraphClient;
use super::resync::{self, GapDecision, GapTracker, ResyncReport, POLL, RESYNC};
use super::subscription::SubscriptionStatus;
use crate::eventhub::consumer::ConsumerStatus;
use crate::ingest::InboxEntry;
use crate::store::Store;

/// The default poll interval.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);
/// The gap tracker looks at least this often.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How far back the first start looks (no watermark yet), and the most any read looks back.
const FIRST_LOOK_BACK: chrono::Duration = chrono::Duration::hours(24);
const MOST_LOOK_BACK: chrono::Duration = chrono::Duration::days(7);

/// What the poll has done, for the status page, `/api/health`, `/metrics` and health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollStatus {
    /// Seconds between polls (0: the poll does not run — no Graph, hub or subscription).
    pub every_secs: u64,
    /// Polls and gap reads that succeeded.
    pub reads: u64,
    /// Graph requests they made.
    pub requests: u64,
    /// Messages (or edits) they handed on that push had not delivered before.
    pub found: u64,
    /// When the last read succeeded.
    pub last_ok: Option<DateTime<Utc>>,
    /// Why reading failed, while it fails, and since when.
    pub problem: Option<String>,
    pub problem_since: Option<DateTime<Utc>>,
}

impl PollStatus {
    fn succeeded(&mut self, report: &ResyncReport, at: DateTime<Utc>) {
        self.reads += 1;
        self.requests += report.requests as u64;
        self.found += report.handed_off as u64;
        self.last_ok = Some(at);
        self.problem = None;
        self.problem_since = None;
    }

    fn failed(&mut self, problem: String, at: DateTime<Utc>) {
        self.problem = Some(problem);
        self.problem_since.get_or_insert(at);
    }
}

/// Asks the running poll to read now (a `missed` lifecycle event).
#[derive(Clone, Default)]
pub struct PollHandle {
    now: Arc<Notify>,
}

impl PollHandle {
    /// The poll reads at its next look (within a second), from its watermark.
    pub fn read_now(&self) {
        self.now.notify_one();
    }
}

/// What the poll follows to see gaps.
pub struct Gaps {
    pub subscription: watch::Receiver<SubscriptionStatus>,
    pub hub: Arc<ConsumerStatus>,
}

/// Reads at start, then every `every` and after every gap, until the hand-off closes (held
/// weakly, so shutdown is not held up) or the task is aborted.
pub async fn run(
    graph: GraphClient,
    store: Store,
    handoff: mpsc::WeakSender<InboxEntry>,
    mut gaps: Gaps,
    every: Duration,
    handle: PollHandle,
    status: watch::Sender<PollStatus>,
) {
    use std::sync::atomic::Ordering;
    status.send_modify(|s| s.every_secs = every.as_secs());
    let read = |since: Option<DateTime<Utc>>, position: &'static str| {
        let (graph, store, handoff, status) = (
            graph.clone(),
            store.clone(),
            handoff.clone(),
            status.clone(),
        );
        async move {
            let Some(handoff) = handoff.upgrade() else {
                return;
            };
            let now = Utc::now();
            let watermark = resync::since(&store, now - FIRST_LOOK_BACK);
            let since = since
                .map_or(watermark, |s| s.min(watermark))
                .max(now - MOST_LOOK_BACK);
            match resync::resync(&graph, &store, &handoff, since, now, position).await {
                Ok(report) => {
                    if report.handed_off > 0 {
                        tracing::warn!(?report, %since, position, "reading the chats found messages push had not delivered");
                    }
                    status.send_modify(|s| s.succeeded(&report, now));
                }
                Err(e) => {
                    let problem = format!("cannot read the chats: {e}");
                    // Said once per new problem, not every poll (health keeps it visible).
                    if status.borrow().problem.as_ref() != Some(&problem) {
                        tracing::error!(error = %e, position, "reading the chats failed; trying again at the next poll");
                    }
                    status.send_modify(|s| s.failed(problem, now));
                }
            }
        }
    };
    read(None, RESYNC).await;
    let mut tracker = GapTracker::new(gaps.subscription.borrow().subscription_id.clone());
    let mut next_poll = tokio::time::Instant::now() + every;
    loop {
        let wake = next_poll.min(tokio::time::Instant::now() + CHECK_EVERY);
        let asked = tokio::select! {
            _ = tokio::time::sleep_until(wake) => false,
            _ = handle.now.notified() => true,
        };
        if handoff.upgrade().is_none() {
            return;
        }
        // Polls start `every` apart, however long a read takes.
        let started = tokio::time::Instant::now();
        let id = gaps
            .subscription
            .borrow_and_update()
            .subscription_id
            .clone();
        let decision = tracker.observe(
            Utc::now(),
            id.as_deref(),
            gaps.hub.connected.load(Ordering::Relaxed),
        );
        match decision {
            GapDecision::SubscriptionReplaced => {
                tracing::warn!("the subscription was replaced: reading the chats");
                read(None, RESYNC).await;
            }
            GapDecision::HubBack { since } => {
                tracing::warn!(%since, "the Event Hub was unreachable: reading the chats");
                read(Some(since), RESYNC).await;
            }
            GapDecision::Nothing if asked => {
                tracing::warn!("Graph says notifications were missed: reading the chats");
                read(None, RESYNC).await;
            }
            GapDecision::Nothing if started >= next_poll => {
                read(None, POLL).await;
            }
            GapDecision::Nothing => continue,
        }
        next_poll = started + every;
    }
}
