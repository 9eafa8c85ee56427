//! The notifier's tasks: one follows the alarm's notices, plans the messages and writes them
//! to the outbox (flushed before anything is sent) — starting with the calls already active
//! when it starts or falls behind, so none is left unsent; one per channel delivers that channel's
//! pending entries — in order per recipient, so a PagerDuty acknowledge never overtakes its
//! trigger — records each result, and raises or clears the channel's trouble
//! (`notify:<channel>`). Channels deliver independently: a mail server that hangs does not
//! hold up SMS.
//!
//! [`Notifier::shutdown`] stops them; they hold an alarm handle, so `beacon run` calls it
//! before the alarm task is ended.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use super::channel::Channel;
use super::config::NotifyConfig;
use super::health::{Change, ChannelHealth};
use super::outbox::{Outbox, OutboxEntry, Policy, Status};
use super::plan::{self, CallContext};
use super::send::Senders;
use super::tally::{DeliveryTally, Outcome};
use super::templates::Templates;
use crate::alarm::{AuditAction, Event};
use crate::alarm_task::{AlarmHandle, AlarmNotice};
use crate::calls::CallLog;
use crate::store::Store;

/// How long a raised call's record is waited for (it is written just after the alarm).
const RECORD_WAIT: StdDuration = StdDuration::from_secs(3);
/// The longest a channel loop sleeps without looking at the outbox.
const IDLE_LOOK: StdDuration = StdDuration::from_secs(60);

/// The running notifier.
pub struct Notifier {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    outbox: Arc<Outbox>,
    tally: Arc<DeliveryTally>,
}

impl Notifier {
    /// Starts following `alarm` and delivering, with the `templates` checked from `config`
    /// ([`NotifyConfig::validate`]). `None` when `[notify]` has no channel.
    pub fn start(
        config: &NotifyConfig,
        templates: Templates,
        store: Store,
        device_id: &str,
        alarm: AlarmHandle,
    ) -> Result<Option<Notifier>, String> {
        let senders = Senders::new(config)?;
        let channels = senders.channels();
        if channels.is_empty() {
            return Ok(None);
        }
        let outbox = Arc::new(Outbox::open(store.clone()));
        let policy = Policy {
            first: Duration::seconds(secs(config.retry_first_seconds)),
            max: Duration::seconds(secs(config.retry_max_seconds)),
            expire: Duration::minutes(secs(config.expire_minutes)),
        };
        let (stop, stopped) = watch::channel(false);
        let poke = Arc::new(Notify::new());
        let senders = Arc::new(senders);
        let mut tasks = Vec::new();
        let tally = Arc::new(DeliveryTally::new(channels.clone()));
        let planner = Planner {
            config: config.clone(),
            templates,
            device: device_id.to_string(),
            store,
            outbox: outbox.clone(),
            policy,
            alarm: alarm.clone(),
            poke: poke.clone(),
        };
        tasks.push(tokio::spawn(planner.run(alarm.notices(), stopped.clone())));
        for &channel in &channels {
            let delivery = Delivery {
                channel,
                tally: tally.clone(),
                outbox: outbox.clone(),
                senders: senders.clone(),
                policy,
                trouble_after: Duration::seconds(secs(config.trouble_after_seconds)),
                alarm: alarm.clone(),
                health: ChannelHealth::default(),
            };
            tasks.push(tokio::spawn(delivery.run(poke.clone(), stopped.clone())));
        }
        tracing::info!("notifications: delivering the outbox");
        Ok(Some(Notifier {
            stop,
            tasks,
            outbox,
            tally,
        }))
    }

    /// Delivery attempts per channel and outcome since start (the console's `/metrics`).
    pub fn deliveries(&self) -> Arc<DeliveryTally> {
        self.tally.clone()
    }

    /// The outbox (tests, the console).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Stops the tasks (an attempt in flight is abandoned and retried after the restart) and
    /// drops their alarm handles.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(e) = self.outbox.flush().await {
            tracing::error!(error = %e, "cannot flush the outbox");
        }
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX / 1_000_000)
}

/// Notices → outbox entries.
struct Planner {
    config: NotifyConfig,
    templates: Templates,
    device: String,
    store: Store,
    outbox: Arc<Outbox>,
    policy: Policy,
    alarm: AlarmHandle,
    poke: Arc<Notify>,
}

impl Planner {
    async fn run(
        self,
        mut notices: broadcast::Receiver<AlarmNotice>,
        mut stopped: watch::Receiver<bool>,
    ) {
        // Subscribed before looking: a call raised meanwhile is seen twice, and queued once.
        self.catch_up(&mut stopped).await;
        loop {
            let notice = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                notice = notices.recv() => notice,
            };
            match notice {
                Ok(notice) => self.handle(notice, &mut stopped).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::error!(
                        missed,
                        "notifications fell behind the alarm: some transitions were not notified"
                    );
                    self.alarm
                        .send(Event::TroubleRaised {
                            component: "notify".into(),
                            detail: format!(
                                "missed {missed} alarm transitions: messages may be missing"
                            ),
                        })
                        .await;
                    self.catch_up(&mut stopped).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Queues what the calls active now should have sent — their alarm and, when acknowledged,
    /// their acknowledgement — and the outbox drops what was queued before. So a call raised
    /// before the notifier followed the alarm (an inbox entry recognised at start-up, a crash
    /// between the alarm and the outbox write, a follower that fell behind) is still notified.
    async fn catch_up(&self, stopped: &mut watch::Receiver<bool>) {
        let display = self.alarm.view().borrow().display.clone();
        for notice in plan::standing(&display, Utc::now()) {
            self.handle(notice, stopped).await;
        }
    }

    async fn handle(&self, notice: AlarmNotice, stopped: &mut watch::Receiver<bool>) {
        let relevant = matches!(
            notice.record.action,
            AuditAction::CallRaised
                | AuditAction::Acknowledged
                | AuditAction::Cleared
                | AuditAction::AutoCleared
                | AuditAction::Escalated
        );
        if !relevant || notice.calls.is_empty() {
            return;
        }
        let mut contexts = BTreeMap::new();
        for call in &notice.calls {
            contexts.insert(call.key.clone(), self.context(&call.key, stopped).await);
        }
        let zone = crate::local_time::current();
        let messages = plan::plan(
            &self.config,
            &self.templates,
            &self.device,
            &notice,
            &contexts,
            &zone,
        );
        let now = Utc::now();
        let mut queued = 0;
        for message in messages {
            match self.outbox.enqueue(message, now, &self.policy) {
                Ok(Some(_)) => queued += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot write to the outbox");
                    self.alarm
                        .send(Event::TroubleRaised {
                            component: "notify".into(),
                            detail: format!("cannot write to the outbox: {e}"),
                        })
                        .await;
                }
            }
        }
        if queued == 0 {
            return;
        }
        if let Err(e) = self.outbox.flush().await {
            tracing::error!(error = %e, "cannot flush the outbox");
        }
        tracing::info!(queued, action = ?notice.record.action, source = ?notice.record.source, "notifications queued");
        self.poke.notify_waiters();
    }

    /// The call's zone and coordinates from its record, waiting briefly for a new call's
    /// record; an unknown context sends to every zone.
    async fn context(&self, key: &str, stopped: &mut watch::Receiver<bool>) -> CallContext {
        let calls = CallLog::of(&self.store);
        let found = tokio::select! {
            found = calls.wait_for(key, RECORD_WAIT) => found,
            _ = stopped.wait_for(|stop| *stop) => calls.get(key),
        };
        match found {
            Ok(Some(record)) => CallContext {
                known: true,
                reported_by: record.sources_in_words(),
                zone: record.zone,
                latitude: record.call.location.latitude,
                longitude: record.call.location.longitude,
            },
            Ok(None) => {
                tracing::warn!(
                    key,
                    "call record not found: notifying every zone's recipients"
                );
                CallContext::default()
            }
            Err(error) => {
                tracing::warn!(
                    key,
                    %error,
                    "call record unreadable: notifying every zone's recipients"
                );
                CallContext::default()
            }
        }
    }
}

/// One channel's delivery loop.
struct Delivery {
    channel: Channel,
    outbox: Arc<Outbox>,
    senders: Arc<Senders>,
    policy: Policy,
    trouble_after: Duration,
    alarm: AlarmHandle,
    health: ChannelHealth,
    tally: Arc<DeliveryTally>,
}

impl Delivery {
    async fn run(mut self, poke: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
        loop {
            // Register for pokes before looking, so an enqueue during the round is not missed.
            let poked = poke.notified();
            tokio::pin!(poked);
            poked.as_mut().enable();
            let next = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                next = self.round() => next,
            };
            let wait = next
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(IDLE_LOOK)
                .min(IDLE_LOOK);
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = poked => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tries every due entry of the channel, in id order per recipient; stops a recipient's
    /// line at its first failure or not-yet-due entry. Returns when to look again.
    async fn round(&mut self) -> Option<DateTime<Utc>> {
        let mut blocked: Vec<String> = Vec::new();
        let mut next: Option<DateTime<Utc>> = self.health.due(self.trouble_after);
        let pending: Vec<(String, OutboxEntry)> = self
            .outbox
            .pending()
            .into_iter()
            .filter(|(_, e)| e.channel == self.channel)
            .collect();
        for (id, entry) in pending {
            if blocked.contains(&entry.recipient) {
                continue;
            }
            let now = Utc::now();
            if !entry.is_due(now) {
                next = Some(next.map_or(entry.next_attempt_at, |n| n.min(entry.next_attempt_at)));
                blocked.push(entry.recipient.clone());
                continue;
            }
            let result = self.senders.send(&id, &entry).await;
            let now = Utc::now();
            let updated = match &result {
                Ok(()) => {
                    tracing::info!(id = %id, channel = self.channel.name(), kind = entry.kind.name(), "notification delivered");
                    self.tally.count(self.channel, Outcome::Delivered);
                    entry.delivered(now)
                }
                Err(error) => {
                    blocked.push(entry.recipient.clone());
                    let updated = entry.failed(error, now, &self.policy);
                    if updated.status == Status::Expired {
                        self.tally.count(self.channel, Outcome::Expired);
                        tracing::error!(id = %id, channel = self.channel.name(), %error, "notification given up (expired)");
                    } else {
                        self.tally.count(self.channel, Outcome::Failed);
                        tracing::warn!(id = %id, channel = self.channel.name(), %error, attempts = updated.attempts, "notification not delivered; will retry");
                        next =
                            Some(next.map_or(updated.next_attempt_at, |n| {
                                n.min(updated.next_attempt_at)
                            }));
                    }
                    updated
                }
            };
            if let Err(e) = self.outbox.put(&id, &updated) {
                tracing::error!(id = %id, error = %e, "cannot record the delivery result");
            }
            if let Err(e) = self.outbox.flush().await {
                tracing::error!(error = %e, "cannot flush the outbox");
            }
            let change = match &result {
                Ok(()) => self.health.succeeded(),
                Err(error) => self.health.failed(
                    now,
                    error.is_permanent(),
                    &error.to_string(),
                    self.trouble_after,
                ),
            };
            self.tell(change).await;
        }
        // A channel failing quietly (waiting for its next attempt) still becomes a trouble
        // on time.
        let change = self.health.overdue(Utc::now(), self.trouble_after);
        self.tell(change).await;
        next
    }

    async fn tell(&self, change: Option<Change>) {
        let component = format!("notify:{}", self.channel.name());
        match change {
            Some(Change::Raise(detail)) => {
                tracing::error!(%component, %detail, "notification channel failing");
                self.alarm
                    .send(Event::TroubleRaised { component, detail })
                    .await;
            }
            Some(Change::Clear) => {
                tracing::info!(%component, "notification channel delivering again");
                self.alarm.send(Event::TroubleCleared { component }).await;
            }
            None => {}
        }
    }
}
