//! The alarm's task — the one place the pure [`crate::alarm::Alarm`] runs, fed events and the
//! clock — and the handles to it ([`AlarmHandle`], [`AlarmView`], [`AlarmNotice`]). It
//! publishes what the outputs and display must show (watch channels the GPIO and display
//! drivers and the web page follow), and writes the state and audit records so that an
//! unacknowledged call is still alarming after a restart and a raised one is never raised
//! again.
//!
//! Order of a step: the outputs are published first (the strobe never waits for the disk), and
//! the task lets the output drivers run before it goes on (they share its executor thread);
//! then the state is written to its own file and fsynced (`saved_state`) while the task waits
//! on the blocking pool; then the notices go out and the audit records go to the store. So
//! nothing about a raise — its audit record, a notifier's outbox entry, the call record a
//! caller of [`AlarmHandle::send`] writes after the answer — can survive a power cut that the
//! state remembering its key did not survive. The reverse can: a raise remembered whose audit
//! record the cut took; the next start writes that record back (`lost_raises`).

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::alarm::{
    ActiveCall, Alarm, AlarmConfig, AlarmState, AuditRecord, CallSummary, DisplayModel, Effect,
    Event, OutputState,
};
use crate::store::Store;

mod lost_raises;
mod saved_state;

use saved_state::SavedState;
pub use saved_state::{stored_state, TROUBLE_COMPONENT};

struct Request {
    event: Event,
    reply: Option<oneshot::Sender<Vec<Effect>>>,
}

/// What the drivers and pages follow.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmView {
    pub state: AlarmState,
    pub outputs: OutputState,
    pub display: DisplayModel,
}

/// How many notices a slow follower may fall behind before it misses some.
const NOTICE_BACKLOG: usize = 1024;

/// One transition, as MQTT, the notifiers and the web page follow it: the audit record (what,
/// when, by whom, from which state to which) and the calls it concerns, with their summaries
/// (taken before the transition, so a cleared call still has its caller and location).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmNotice {
    pub record: AuditRecord,
    pub calls: Vec<ActiveCall>,
}

/// Sends events to the alarm task; cheap to clone.
#[derive(Clone)]
pub struct AlarmHandle {
    tx: mpsc::Sender<Request>,
    view: watch::Receiver<AlarmView>,
    escalations: watch::Receiver<Vec<String>>,
    notices: broadcast::Sender<AlarmNotice>,
}

impl AlarmHandle {
    /// Sends an event and waits for its effects.
    pub async fn send(&self, event: Event) -> Vec<Effect> {
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Request {
                event,
                reply: Some(reply),
            })
            .await
            .is_err()
        {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Raises (or, for a known key, ignores — unless it upgrades a possible call to a real one)
    /// a call without waiting.
    pub async fn raise(&self, key: &str, summary: CallSummary) {
        let _ = self
            .tx
            .send(Request {
                event: Event::CallRaised {
                    key: key.to_string(),
                    summary,
                },
                reply: None,
            })
            .await;
    }

    /// Follows the outputs, display and state.
    pub fn view(&self) -> watch::Receiver<AlarmView> {
        self.view.clone()
    }

    /// Follows escalations (the keys of calls nobody acknowledged in time).
    pub fn escalations(&self) -> watch::Receiver<Vec<String>> {
        self.escalations.clone()
    }

    /// Follows every transition from now on (see [`AlarmNotice`]). A follower that falls more
    /// than 1024 notices behind gets `RecvError::Lagged` and must say so (log and trouble).
    pub fn notices(&self) -> broadcast::Receiver<AlarmNotice> {
        self.notices.subscribe()
    }
}

/// Starts the alarm task, restoring the stored state.
pub fn spawn(
    config: AlarmConfig,
    store: Store,
    now: DateTime<Utc>,
) -> (AlarmHandle, tokio::task::JoinHandle<()>) {
    let (mut saved, stored) = SavedState::open(&store, now);
    let (mut alarm, mut effects) = match stored {
        Some(state) => {
            let (alarm, effects) = Alarm::restore(config, state.clone(), now);
            lost_raises::write_back(&store, &state, alarm.state());
            (alarm, effects)
        }
        None => (Alarm::new(config), Vec::new()),
    };
    if let Some(trouble) = saved.trouble_event() {
        effects.extend(alarm.handle(trouble, now));
    }
    let (tx, rx) = mpsc::channel(256);
    let (view_tx, view) = watch::channel(view_of(&alarm, now));
    let (escalation_tx, escalations) = watch::channel(Vec::new());
    let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
    let mut task = Task {
        alarm,
        store,
        saved,
        view: view_tx,
        escalations: escalation_tx,
        notices: notices.clone(),
    };
    let handle = tokio::spawn(async move {
        // The start's own transitions (restored, a trouble) are not notices: nobody follows
        // yet, and what follows the alarm reads its state when it starts.
        task.apply(&effects, &[], Announce::No).await;
        task.run(rx).await
    });
    (
        AlarmHandle {
            tx,
            view,
            escalations,
            notices,
        },
        handle,
    )
}

fn view_of(alarm: &Alarm, now: DateTime<Utc>) -> AlarmView {
    AlarmView {
        state: alarm.state(),
        outputs: alarm.outputs(now),
        display: alarm.display(now),
    }
}

/// Whether a step's transitions go to the notice followers.
#[derive(Clone, Copy, PartialEq)]
enum Announce {
    Yes,
    No,
}

struct Task {
    alarm: Alarm,
    store: Store,
    saved: SavedState,
    view: watch::Sender<AlarmView>,
    escalations: watch::Sender<Vec<String>>,
    notices: broadcast::Sender<AlarmNotice>,
}

impl Task {
    /// Publishes the transition to the followers (none listening is fine).
    fn notify(&self, record: &AuditRecord, before: &[ActiveCall]) {
        let now_active = self.alarm.active_calls();
        let calls = record
            .keys
            .iter()
            .filter_map(|key| {
                now_active
                    .iter()
                    .find(|c| &c.key == key)
                    .copied()
                    .or_else(|| before.iter().find(|c| &c.key == key))
                    .cloned()
            })
            .collect();
        let _ = self.notices.send(AlarmNotice {
            record: record.clone(),
            calls,
        });
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let deadline = self.alarm.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => {
                        tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await
                    }
                    None => std::future::pending().await,
                }
            };
            let (event, reply) = tokio::select! {
                request = rx.recv() => match request {
                    Some(r) => (r.event, r.reply),
                    None => return,
                },
                _ = sleep => (Event::Tick, None),
            };
            let effects = self.step(event, Utc::now()).await;
            if let Some(reply) = reply {
                let _ = reply.send(effects);
            }
            // The state file's own trouble follows what its last write did.
            if let Some(trouble) = self.saved.trouble_event() {
                self.step(trouble, Utc::now()).await;
            }
        }
    }

    /// Handles one event and carries out its effects; returns them.
    async fn step(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Effect> {
        let before: Vec<ActiveCall> = self.alarm.active_calls().into_iter().cloned().collect();
        let effects = self.alarm.handle(event, now);
        self.view.send_replace(view_of(&self.alarm, now));
        self.apply(&effects, &before, Announce::Yes).await;
        effects
    }

    /// Carries out the effects in the order the module doc gives; `before` are the calls
    /// active before the event.
    async fn apply(&mut self, effects: &[Effect], before: &[ActiveCall], announce: Announce) {
        let changed = effects
            .iter()
            .any(|e| matches!(e, Effect::StateChanged { .. }));
        if changed {
            // The outputs were just published: a driver woken by that waits on this thread
            // until the task yields (tokio runs it next), so yield before the log lines and
            // the state's copy (every remembered key). With the copy also out of
            // `Alarm::handle`, recognised call → strobe pin went from p50 0.07–0.09 to
            // 0.04–0.06 ms (`cargo bench --bench alarm`).
            tokio::task::yield_now().await;
        }
        let mut audits = Vec::new();
        for effect in effects {
            match effect {
                Effect::Audit(record) => {
                    tracing::info!(action = ?record.action, source = ?record.source, keys = ?record.keys, "alarm");
                    audits.push(record.clone());
                }
                Effect::StateChanged { .. } => {}
                Effect::Escalate { keys, since } => {
                    tracing::warn!(?keys, %since, "no acknowledgement in time: escalating");
                    self.escalations.send_replace(keys.clone());
                }
                Effect::Refused(refusal) => tracing::info!(%refusal, "alarm request refused"),
            }
        }
        if changed {
            self.saved.write(self.alarm.snapshot()).await;
        }
        if announce == Announce::Yes {
            for record in &audits {
                self.notify(record, before);
            }
        }
        if !audits.is_empty() {
            if let Err(e) = self.store.record_audits(&audits) {
                tracing::error!(error = %e, "cannot write the alarm's audit records");
            }
        }
        if changed {
            // The audit's fsync runs on the blocking pool and is not waited for: the state is
            // durable already, and the next event must not wait for sled.
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.flush() {
                    tracing::error!(error = %e, "cannot flush the alarm's audit records");
                }
            });
        }
    }
}
