//! The alarm's task — the one place the pure [`crate::alarm::Alarm`] runs, fed events and the
//! clock — and the handles to it ([`AlarmHandle`], [`AlarmView`], [`AlarmNotice`]). It
//! publishes what the outputs and display must show (watch channels the GPIO and display
//! drivers and the web page follow), and writes audit records and the state to the store so
//! that an unacknowledged call is still alarming after a restart.
//!
//! Outputs are published before anything is written: the strobe never waits for the disk.

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::alarm::{
    ActiveCall, Alarm, AlarmConfig, AlarmState, AuditRecord, CallSummary, DisplayModel, Effect,
    Event, OutputState, PersistedState,
};
use crate::store::Store;

const STATE_KEY: &str = "alarm/state";

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
    let stored: Option<PersistedState> = store
        .settings
        .get(STATE_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok());
    let (alarm, effects) = match stored {
        Some(state) => Alarm::restore(config, state, now),
        None => (Alarm::new(config), Vec::new()),
    };
    let (tx, rx) = mpsc::channel(256);
    let (view_tx, view) = watch::channel(view_of(&alarm, now));
    let (escalation_tx, escalations) = watch::channel(Vec::new());
    let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
    let mut task = Task {
        alarm,
        store,
        view: view_tx,
        escalations: escalation_tx,
        notices: notices.clone(),
    };
    task.apply(effects, &[]);
    let handle = tokio::spawn(task.run(rx));
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

struct Task {
    alarm: Alarm,
    store: Store,
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
            let now = Utc::now();
            let before: Vec<ActiveCall> = self.alarm.active_calls().into_iter().cloned().collect();
            let effects = self.alarm.handle(event, now);
            self.view.send_replace(view_of(&self.alarm, now));
            self.apply(effects.clone(), &before);
            if let Some(reply) = reply {
                let _ = reply.send(effects);
            }
        }
    }

    /// Carries out the effects; `before` are the calls active before the event.
    fn apply(&mut self, effects: Vec<Effect>, before: &[ActiveCall]) {
        let mut audits = Vec::new();
        let mut state = None;
        for effect in effects {
            match effect {
                Effect::Audit(record) => {
                    self.notify(&record, before);
                    tracing::info!(action = ?record.action, source = ?record.source, keys = ?record.keys, "alarm");
                    audits.push(record);
                }
                Effect::StateChanged { persist, .. } => state = Some(persist),
                Effect::Escalate { keys, since } => {
                    tracing::warn!(?keys, %since, "no acknowledgement in time: escalating");
                    self.escalations.send_replace(keys);
                }
                Effect::Refused(refusal) => tracing::info!(%refusal, "alarm request refused"),
            }
        }
        let persist = state.is_some();
        if !audits.is_empty() || persist {
            // One transaction: a raise in the audit is never without the state that remembers
            // its key (else the next start would raise it again).
            let written = self
                .store
                .record_alarm_step(&audits, state.as_ref().map(|state| (STATE_KEY, state)));
            if let Err(e) = written {
                tracing::error!(error = %e, "cannot write the alarm's audit records and state");
            }
        }
        if persist {
            // The fsync runs on the blocking pool: the relay and display tasks share the
            // executor threads with this one and must not wait for the disk.
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.flush() {
                    tracing::error!(error = %e, "cannot flush the alarm state");
                }
            });
        }
    }
}
