//! The recognition stage: an inbox entry becomes a chat message (decrypted already, or fetched
//! from Graph, or read from a fixture directory for drills), is classified, raises the alarm,
//! and is recorded in the `calls` tree. Then the inbox entry is done. A Graph emergency call
//! event is the same call from a second source: the chat message and the event of one call are
//! one incident, the first alarms, the second enriches (`incident.rs`, `correlate`).
//!
//! * The alarm is raised *before* the record is written (outputs never wait for the disk); the
//!   alarm itself refuses a key it has raised before, and the `calls` tree is checked first, so
//!   a redelivered or edited message never alarms twice.
//! * An `updated` notification of a known call merges the new version into it (the location
//!   may arrive later) and updates the alarm's text, never raising again.
//! * Zones decide whether this appliance alarms locally; every call is recorded either way.
//! * A message that cannot be fetched stays in the inbox and is retried; nothing is dropped.
//! * Nothing waits behind a fetch ([`Recogniser::run`]): an entry that carries its message
//!   (rich), a deletion and a lifecycle event are handled at once; entries that need a Graph
//!   fetch run side by side, up to 8, one *lane* per message (`recognise/lanes.rs`):
//!   the notifications of one message are handled in order and never at the same time (the
//!   `calls` check below is then enough to alarm once), and an entry that arrives while its
//!   message's lane is busy queues behind it even when it needs no fetch. A Graph fetch may
//!   retry for minutes (429 with `Retry-After`); before this, every later entry waited for it
//!   (an emergency alarmed ~90 s late in the fault campaign).
//!
//! * Lanes write one call's record side by side (its event and its chat message are two
//!   lanes): every read-change-write of a record holds `records`, so neither overwrites the
//!   other's change. Push reporting a message the poll found first is a duplicate ingest does
//!   not hand on; [`Recogniser::later_report_hook`] notes it on the call once the poll's find
//!   of it is recorded.
//!
//! Everything in a call record came from a chat message and is untrusted text: whatever shows
//! it must escape it.

pub mod correlate;
mod incident;
mod lanes;

use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::alarm::{CallSummary, Event};
use crate::alarm_task::AlarmHandle;
use crate::calls::{CallLog, CallRecord, Path, Sighting};
use crate::emergency::{self, Classification, Context, EmergencyCall, Kind, PossibleAlert, Rules};
use crate::graph::client::GraphClient;
use crate::graph::notification::{ChangeType, LifecycleEvent};
use crate::ingest::{InboxEntry, Notification};
use crate::store::{Store, StoreError};
use correlate::{Incidents, Source};
use lanes::Lanes;

/// A call notification older than this when it arrives is flagged late.
const LATE_AFTER_MINUTES: i64 = 5;
/// How often pending inbox entries are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(60);
/// Messages fetched at once (each lane fetches one message at a time).
const FETCHES_AT_ONCE: usize = 8;
/// How long push's later report of a message waits for recognition to handle the poll's
/// find of it (a fetch may wait out Graph's throttling).
const LATER_REPORT_WAIT: Duration = Duration::from_secs(300);
/// How often it looks.
const LATER_REPORT_LOOK_EVERY: Duration = Duration::from_millis(200);
/// Entries that may wait for a fetch before the hand-off is no longer read (back-pressure to
/// the consumer, which then waits as it does for a full channel).
const WAITING_AT_MOST: usize = 4096;

/// Where basic notifications' messages come from.
#[derive(Clone)]
pub enum MessageSource {
    /// `GET /chats/{chat}/messages/{id}`.
    Graph(GraphClient),
    /// `<dir>/<message-id>.json` (drills and tests without Graph).
    Fixtures(PathBuf),
    /// Nothing: basic notifications wait in the inbox until a source is configured.
    Unavailable,
}

impl MessageSource {
    /// The current message, `None` when it was deleted (404).
    async fn fetch(&self, chat_id: &str, message_id: &str) -> Result<Option<Value>, String> {
        match self {
            MessageSource::Graph(graph) => {
                let path = format!("/chats/{}/messages/{}", encode(chat_id), encode(message_id));
                match graph.get(&path).await {
                    Ok(message) => Ok(Some(message)),
                    Err(e) if e.status() == Some(404) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
            MessageSource::Fixtures(dir) => {
                let file = dir.join(format!("{}.json", message_id.replace(['/', '\\'], "_")));
                match std::fs::read(&file) {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .map(Some)
                        .map_err(|e| format!("{}: {e}", file.display())),
                    Err(e) => Err(format!("{}: {e}", file.display())),
                }
            }
            MessageSource::Unavailable => Err("no Graph connection to fetch the message".into()),
        }
    }
}

/// Percent-encodes a Graph id for a URL path (chat ids contain `:` and `@`).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What handling one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Raised {
        key: String,
        locally: bool,
    },
    Updated {
        key: String,
    },
    NotEmergency,
    Deleted,
    Lifecycle,
    /// A call's end was noted (Graph's `callEnded`).
    Ended {
        key: String,
    },
    /// Stays in the inbox; tried again later.
    Deferred(String),
}

/// See the module docs.
#[derive(Clone)]
pub struct Recogniser {
    pub store: Store,
    /// The call log in `store`.
    pub calls: CallLog,
    pub rules: Arc<Rules>,
    pub alarm: AlarmHandle,
    pub source: MessageSource,
    pub service_account_id: Option<String>,
    /// Where lifecycle events go (the subscription keeper), when one runs.
    pub lifecycle: Option<mpsc::Sender<(String, LifecycleEvent)>>,
    /// The recent incidents, to make the chat message and the call event of one call one
    /// incident (`correlate`); locked from the decision to the alarm taking the call.
    pub incidents: Arc<tokio::sync::Mutex<Incidents>>,
    /// Held while a call's record is read, changed and written back: lanes run side by side,
    /// and two reports of one call (its event and its chat message, or the poll's find and
    /// push's late notification) must not write over each other's change.
    pub records: Arc<tokio::sync::Mutex<()>>,
}

impl Recogniser {
    /// Recognition with `rules`, raising the calls it recognises on `alarm` and reading basic
    /// notifications' messages from `source`. The service account whose own messages are never
    /// calls is the one signed in (read from the store); no lifecycle events are forwarded
    /// until [`Recogniser::forward_lifecycle`] says where.
    pub fn new(
        store: Store,
        rules: Arc<Rules>,
        alarm: AlarmHandle,
        source: MessageSource,
    ) -> Recogniser {
        let service_account_id = crate::graph::account::stored(&store).map(|a| a.id);
        let calls = CallLog::of(&store);
        let incidents = incident::recent(&calls, correlate::DEFAULT_WINDOW, Utc::now());
        Recogniser {
            calls,
            store,
            rules,
            alarm,
            source,
            service_account_id,
            lifecycle: None,
            incidents: Arc::new(tokio::sync::Mutex::new(incidents)),
            records: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Makes reports of one caller at most `window` apart one incident (default 3 minutes).
    pub fn correlate_within(mut self, window: chrono::Duration) -> Self {
        let incidents = incident::recent(&self.calls, window, Utc::now());
        self.incidents = Arc::new(tokio::sync::Mutex::new(incidents));
        self
    }

    /// Sends the subscriptions' lifecycle events to `keeper`.
    pub fn forward_lifecycle(mut self, keeper: mpsc::Sender<(String, LifecycleEvent)>) -> Self {
        self.lifecycle = Some(keeper);
        self
    }

    /// Handles one entry and, unless deferred, removes it from the inbox.
    pub async fn handle(&self, entry: &InboxEntry) -> Result<Handled, StoreError> {
        let handled = match &entry.notification {
            Notification::Lifecycle {
                subscription_id,
                event,
            } => {
                if let Some(tx) = &self.lifecycle {
                    let _ = tx.send((subscription_id.clone(), *event)).await;
                }
                Handled::Lifecycle
            }
            Notification::CallEvent { event, .. } => self.call_event(event, entry).await?,
            Notification::Message {
                chat_id,
                message_id,
                change_type,
                message,
                ..
            } => {
                let key = format!("{chat_id}/{message_id}");
                if *change_type == ChangeType::Deleted {
                    self.mark_deleted(&key).await?
                } else {
                    // A rich notification's message is used where it is (no copy on the
                    // way to the alarm); a fetched one is owned.
                    let message = match message {
                        Some(m) => Some(Cow::Borrowed(m)),
                        None => match self.source.fetch(chat_id, message_id).await {
                            Ok(m) => m.map(Cow::Owned),
                            Err(e) => {
                                tracing::warn!(key, error = e, "message not fetched; will retry");
                                return Ok(Handled::Deferred(e));
                            }
                        },
                    };
                    match message {
                        None => self.mark_deleted(&key).await?,
                        Some(message) => {
                            let handled = self.recognise(&key, &message, entry).await?;
                            // Every message seen is kept (the chat history the console shows),
                            // after the alarm: outputs never wait for a write.
                            self.store.messages.insert(&key, &*message)?;
                            handled
                        }
                    }
                }
            }
        };
        self.store.inbox.remove(&entry.key)?;
        Ok(handled)
    }

    async fn recognise(
        &self,
        key: &str,
        message: &Value,
        entry: &InboxEntry,
    ) -> Result<Handled, StoreError> {
        let context = Context {
            chat_type: None,
            service_account_id: self.service_account_id.clone(),
            received_at: Some(entry.received_at),
        };
        let now = Utc::now();
        // The message may be a later report of a call its event brought first.
        let kept_as = self.calls.resolve(key)?;
        let records = self.records.lock().await;
        if let Some(mut record) = self.known_call(&kept_as) {
            // An edit of a known call: merge, update the text, never raise again.
            if let Ok(outcome) =
                emergency::merge_update(&record.call, message, &context, &self.rules)
            {
                if outcome.changed {
                    record.call = outcome.call;
                    record.updates += 1;
                    record.updated_at = Some(now);
                    if record.alarmed_locally {
                        self.alarm
                            .send(Event::CallUpdated {
                                key: record.key.clone(),
                                summary: summary(&record.call, record.kind, &self.rules),
                            })
                            .await;
                    }
                    self.calls.put(&record)?;
                    drop(records);
                    self.flush().await?;
                }
            }
            return Ok(Handled::Updated { key: record.key });
        }
        drop(records);
        let classification = emergency::classify(message, &context, &self.rules);
        let Some(call) = classification.call() else {
            return Ok(Handled::NotEmergency);
        };
        let kind = classification.kind();
        let report = incident::report_of(call);
        let mut incidents = self.incidents.lock().await;
        if let Some(first) = incidents.find(&report, Source::Chat).map(str::to_string) {
            incidents.note(&first, &report, Source::Chat, entry.received_at);
            drop(incidents);
            if let Some(handled) = self.join_chat(&first, key, call, kind, entry).await? {
                return Ok(handled);
            }
            incidents = self.incidents.lock().await;
        }
        incidents.note(key, &report, Source::Chat, entry.received_at);
        self.raise_and_release(
            incidents,
            NewCall {
                key,
                kind,
                reason: reason_of(&classification),
                call,
                path: path_of(entry),
                entry,
                call_event: None,
            },
        )
        .await
    }

    /// Alarms for a call no other source has reported (unless zones or the kind say not
    /// here), lets go of `incidents` once the alarm has taken it, then records it.
    async fn raise_new(
        &self,
        new: NewCall<'_>,
        incidents: Option<tokio::sync::MutexGuard<'_, Incidents>>,
    ) -> Result<Handled, StoreError> {
        let NewCall {
            key,
            kind,
            reason,
            call,
            path,
            entry,
            call_event,
        } = new;
        let now = Utc::now();
        let zone = self.rules.zones().decide(call);
        let locally = self.alarms_for(kind) && zone.alarm_locally;
        if locally {
            // First the outputs (the alarm task publishes them before it writes anything) …
            // and wait until it has taken the call in: its state (the key remembered, the
            // call latched) is durable when it answers, and its audit record is written before
            // the record below, so the flush after the record makes that durable too. Not
            // waiting lost the alarm of a call whose record was flushed before the alarm task
            // ran, when the process was killed in between (fault campaign).
            self.alarm
                .send(Event::CallRaised {
                    key: key.to_string(),
                    summary: summary(call, kind, &self.rules),
                })
                .await;
        }
        drop(incidents);
        // … then the record.
        let late = entry.position == "resync"
            || entry.received_at - call.created > chrono::Duration::minutes(LATE_AFTER_MINUTES);
        let record = CallRecord {
            key: key.to_string(),
            kind,
            reason,
            call: call.clone(),
            zone: zone.zone.clone(),
            alarmed_locally: locally,
            late,
            received_at: entry.received_at,
            recognised_at: now,
            updates: 0,
            updated_at: None,
            deleted: false,
            notification: entry.raw.clone(),
            sources: vec![Sighting {
                path,
                at: entry.received_at,
            }],
            ended_at: None,
            call_event: call_event.cloned(),
        };
        tracing::warn!(
            key,
            ?kind,
            locally,
            late,
            source = path.name(),
            "emergency call recognised"
        );
        self.calls.put(&record)?;
        self.flush().await?;
        Ok(Handled::Raised {
            key: key.to_string(),
            locally,
        })
    }

    /// Whether a call of `kind` sounds the alarm at all (zones aside).
    fn alarms_for(&self, kind: Kind) -> bool {
        match kind {
            Kind::Emergency | Kind::Test => true,
            Kind::Possible => self.rules.possible_raises_alarm(),
            Kind::NotEmergency => false,
        }
    }

    /// Makes the record durable without blocking an executor thread (the relay and display
    /// tasks share them).
    async fn flush(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(result) => result,
            Err(_) => self.store.flush(),
        }
    }

    /// The record of a call recognised before. One that cannot be read is said in the log and
    /// treated as unknown: the message is recognised afresh and its record written anew (an
    /// alarm raised twice beats a call lost).
    fn known_call(&self, key: &str) -> Option<CallRecord> {
        match self.calls.get(key) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(key, %error, "the call's record cannot be read: recognising it afresh");
                None
            }
        }
    }

    /// Push's `created` notification of a message whose call is recorded already (the poll
    /// found it first): notes the path on the call — no fetch, no alarm. `None` for a message
    /// that is not a known call (yet).
    async fn another_report(
        &self,
        key: &str,
        change_type: &ChangeType,
        entry: &InboxEntry,
    ) -> Result<Option<Handled>, StoreError> {
        if *change_type != ChangeType::Created {
            return Ok(None);
        }
        let records = self.records.lock().await;
        let Some(mut record) = self.known_call(&self.calls.resolve(key)?) else {
            return Ok(None);
        };
        let path = path_of(entry);
        if record.add_sighting(path, entry.received_at) {
            tracing::info!(
                key = record.key,
                also = path.name(),
                "a later report of a known call"
            );
            self.calls.put(&record)?;
            drop(records);
            self.flush().await?;
        }
        Ok(Some(Handled::Updated { key: record.key }))
    }

    /// What ingest calls with each duplicate notification ([`crate::ingest::Ingest::on_duplicate`]):
    /// a push notification of a message's creation that the poll found first is noted on its
    /// call, in the background, once recognition has handled the poll's find of it (waiting up
    /// to [`LATER_REPORT_WAIT`]). Only a note for path supervision: without it, push would be
    /// counted as having missed the call.
    pub fn later_report_hook(&self) -> crate::ingest::DuplicateHook {
        let recogniser = self.clone();
        let runtime = tokio::runtime::Handle::current();
        Arc::new(move |entry: &InboxEntry| {
            let pushed_creation = matches!(
                entry.notification,
                Notification::Message {
                    change_type: ChangeType::Created,
                    ..
                }
            ) && !crate::graph::resync::found_by_reading(&entry.position);
            if pushed_creation {
                let recogniser = recogniser.clone();
                let entry = entry.clone();
                runtime.spawn(async move { recogniser.note_later_report(&entry).await });
            }
            Ok(())
        })
    }

    /// See [`Recogniser::later_report_hook`].
    async fn note_later_report(&self, entry: &InboxEntry) {
        let Notification::Message {
            chat_id,
            message_id,
            change_type,
            ..
        } = &entry.notification
        else {
            return;
        };
        let key = format!("{chat_id}/{message_id}");
        let deadline = tokio::time::Instant::now() + LATER_REPORT_WAIT;
        loop {
            // Recognition keeps the message after the call's record: once the message is kept,
            // a call of it is recorded.
            let handled = self.store.messages.contains(&key).unwrap_or(false);
            match self.another_report(&key, change_type, entry).await {
                Ok(Some(_)) => return,
                Ok(None) if handled => return, // an ordinary message
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(key, %error, "push's later report of a call is not noted");
                    return;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::info!(
                    key,
                    "push reported a message recognition has not handled yet: not noted"
                );
                return;
            }
            tokio::time::sleep(LATER_REPORT_LOOK_EVERY).await;
        }
    }

    async fn mark_deleted(&self, key: &str) -> Result<Handled, StoreError> {
        let _records = self.records.lock().await;
        if let Some(mut record) = self.known_call(&self.calls.resolve(key)?) {
            record.deleted = true;
            self.calls.put(&record)?;
        }
        Ok(Handled::Deleted)
    }

    /// Runs until the channel closes, then finishes the work in flight; pending entries are
    /// retried every minute. See the module docs for what runs at once and what waits.
    pub async fn run(self, handoff: mpsc::Receiver<InboxEntry>) {
        self.run_retrying_every(handoff, RETRY_EVERY).await
    }

    /// [`Recogniser::run`], retrying entries pending longer than `every`, every `every`.
    #[doc(hidden)]
    pub async fn run_retrying_every(
        self,
        mut handoff: mpsc::Receiver<InboxEntry>,
        every: Duration,
    ) {
        let worker = self.clone();
        let mut lanes = Lanes::new(FETCHES_AT_ONCE, move |entry: InboxEntry| {
            let worker = worker.clone();
            async move { worker.handle_logged(&entry).await }
        });
        let mut retry = tokio::time::interval(every);
        retry.tick().await;
        loop {
            tokio::select! {
                entry = handoff.recv(), if lanes.waiting() < WAITING_AT_MOST => match entry {
                    Some(entry) => self.dispatch(entry, &mut lanes).await,
                    None => break,
                },
                _ = lanes.join_next(), if lanes.running() > 0 => {}
                _ = retry.tick() => {
                    let cutoff = Utc::now() - chrono::Duration::from_std(every).unwrap_or_default();
                    let pending: Vec<InboxEntry> = crate::ingest::inbox(&self.store).iter()
                        .filter_map(|(_, e)| e.ok())
                        .filter(|e| e.received_at < cutoff && !lanes.contains(&e.key))
                        .collect();
                    for entry in pending {
                        if lanes.waiting() >= WAITING_AT_MOST {
                            break; // the rest at the next retry
                        }
                        self.dispatch(entry, &mut lanes).await;
                    }
                }
            }
        }
        // Shutdown: what was taken in is finished (the caller bounds how long it waits).
        lanes.drain().await;
    }

    /// Handles `entry` at once when it needs no fetch and nothing of its message is waiting
    /// or running; otherwise queues it in its message's lane. An entry already taken (a retry
    /// of one in flight) is left alone.
    async fn dispatch<F, Fut>(&self, entry: InboxEntry, lanes: &mut Lanes<InboxEntry, F>)
    where
        F: FnMut(InboxEntry) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if lanes.contains(&entry.key) {
            return;
        }
        let Notification::Message {
            chat_id,
            message_id,
            change_type,
            message,
            ..
        } = &entry.notification
        else {
            // Lifecycle events concern no message.
            return self.handle_logged(&entry).await;
        };
        let lane = format!("{chat_id}/{message_id}");
        let fetches = message.is_none() && *change_type != ChangeType::Deleted;
        if fetches || lanes.is_busy(&lane) {
            let id = entry.key.clone();
            lanes.push(&lane, &id, entry);
        } else {
            self.handle_logged(&entry).await;
        }
    }

    async fn handle_logged(&self, entry: &InboxEntry) {
        if let Err(e) = self.handle(entry).await {
            tracing::error!(error = %e, key = entry.key, "recognition could not write; the entry stays in the inbox");
        }
    }
}

/// The path an inbox entry came by: read from Graph (the poll or a resync after a gap), or
/// notified through the hub.
fn path_of(entry: &InboxEntry) -> Path {
    if crate::graph::resync::found_by_reading(&entry.position) {
        Path::ChatPoll
    } else {
        Path::ChatNotification
    }
}

/// A call about to be raised and recorded for the first time.
struct NewCall<'a> {
    key: &'a str,
    kind: Kind,
    reason: String,
    call: &'a EmergencyCall,
    path: Path,
    entry: &'a InboxEntry,
    /// The Graph emergency call event, when it reported the call (copied into the record
    /// after the alarm).
    call_event: Option<&'a Value>,
}

/// Longest message text a possible call carries to the display, console and notifications.
const POSSIBLE_MESSAGE_CHARS: usize = 280;

/// What the alarm is told about a call: a possible call at its own level (unless configured to
/// sound the full alarm), with the message text the guard needs to decide.
fn summary(call: &EmergencyCall, kind: Kind, rules: &Rules) -> CallSummary {
    let is_possible = kind == Kind::Possible && rules.possible_alert() == PossibleAlert::Possible;
    CallSummary {
        caller_name: Some(call.caller.display_name.clone()),
        location: call.location.text.clone(),
        dial_string: call.dial_string.clone(),
        callback_number: call.callback_number.clone(),
        is_test: call.is_test,
        is_possible,
        message: is_possible
            .then(|| emergency::excerpt(&call.raw, POSSIBLE_MESSAGE_CHARS))
            .flatten(),
    }
}

fn reason_of(classification: &Classification) -> String {
    classification.reason()
}
