//! The alarm's task — the one place the pure [`crate::alarm::Alarm`] runs, fed events and the
//! clock — and the handles to it ([`AlarmHandle`], [`AlarmView`], [`AlarmNotice`]). It
//! publishes what the outputs and display must show (watch channels the GPIO and display
//! drivers and the web page follow), and writes the state and audit records so that an
//! unacknowledged call is still alarming after a restart and a raised one is never raised
//! again.
//!
//! Order of a step: the outputs are published first (the strobe never waits for the disk);
//! then the state is written to its own file and fsynced ([`crate::store::StateFile`]) while
//! the task waits on the blocking pool; then the audit records go to the store. So whatever
//! survives a power cut of the audit, the state that remembers the raised key survived too,
//! and a caller of [`AlarmHandle::send`] that records the call afterwards records it after the
//! state is durable.

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::alarm::{
    ActiveCall, Alarm, AlarmConfig, AlarmState, AuditRecord, CallSummary, DisplayModel, Effect,
    Event, OutputState, PersistedState,
};
use crate::store::{StateFile, Store, ALARM_STATE};

/// Where older Beacons kept the state: a setting in the store. Read when there is no state
/// file yet (the first start after an upgrade, or a keepsake of then restored into a fresh
/// store), and removed once the file holds the state.
const LEGACY_STATE_KEY: &str = "alarm/state";

/// The alarm's persisted state as the next start will restore it: the state file, or (none
/// written yet) the setting of an older Beacon. An unreadable file is said in the log and the
/// setting is tried: a state from before beats none.
pub fn stored_state(store: &Store) -> Option<PersistedState> {
    match store.state_file(ALARM_STATE).read() {
        Ok(Some(state)) => return Some(state),
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "the alarm's state file is unreadable"),
    }
    store
        .settings
        .get(LEGACY_STATE_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
}

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
    let (alarm, effects) = match stored_state(&store) {
        Some(state) => Alarm::restore(config, state, now),
        None => (Alarm::new(config), Vec::new()),
    };
    let (tx, rx) = mpsc::channel(256);
    let (view_tx, view) = watch::channel(view_of(&alarm, now));
    let (escalation_tx, escalations) = watch::channel(Vec::new());
    let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
    let legacy_setting = matches!(store.settings.get(LEGACY_STATE_KEY), Ok(Some(_)));
    let mut task = Task {
        alarm,
        state_file: store.state_file(ALARM_STATE),
        store,
        legacy_setting,
        view: view_tx,
        escalations: escalation_tx,
        notices: notices.clone(),
    };
    let handle = tokio::spawn(async move {
        task.apply(effects, &[]).await;
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

struct Task {
    alarm: Alarm,
    store: Store,
    state_file: StateFile,
    /// An older Beacon's state setting is still in the store (removed after the first write).
    legacy_setting: bool,
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
            self.apply(effects.clone(), &before).await;
            if let Some(reply) = reply {
                let _ = reply.send(effects);
            }
        }
    }

    /// Writes the state durably, waiting on the blocking pool (the relay and display tasks
    /// share the executor threads with this one and must not wait for the disk). A failure is
    /// said in the log; the outputs are already on.
    async fn write_state(&mut self, state: &PersistedState) {
        let file = self.state_file.clone();
        let state = state.clone();
        let written = tokio::task::spawn_blocking(move || file.write(&state))
            .await
            .unwrap_or_else(|panic| Err(std::io::Error::other(panic.to_string())));
        match written {
            Ok(()) if self.legacy_setting => match self.store.settings.remove(LEGACY_STATE_KEY) {
                Ok(_) => self.legacy_setting = false,
                Err(e) => tracing::warn!(error = %e, "cannot remove the old alarm state setting"),
            },
            Ok(()) => {}
            Err(e) => tracing::error!(
                error = %e,
                file = %self.state_file.path().display(),
                "cannot write the alarm state"
            ),
        }
    }

    /// Carries out the effects; `before` are the calls active before the event.
    async fn apply(&mut self, effects: Vec<Effect>, before: &[ActiveCall]) {
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
        if let Some(state) = &state {
            self.write_state(state).await;
        }
        if !audits.is_empty() {
            if let Err(e) = self.store.record_audits(&audits) {
                tracing::error!(error = %e, "cannot write the alarm's audit records");
            }
        }
        if state.is_some() {
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
