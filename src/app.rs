//! Wiring: opens the store, loads keys and client states, starts the parts, and shuts them
//! down in order (the cloud link first — its consumer flushes and commits, then recognition
//! drains — then the console, notifiers, MQTT, outputs and last the alarm).

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::alarm_service::{self, AlarmHandle};
use crate::cloud_link::{graph_source, recogniser, CloudLink, Control, Feeds, Handles};
use crate::config::Config;
use crate::eventhub::connection::ConnectionError;
use crate::eventhub::consumer::{ConsumerError, ConsumerStatus};
use crate::graph::account::Account;
use crate::graph::auth::DeviceCodePrompt;
use crate::graph::client_state::ClientStates;
use crate::graph::crypto::{EncryptionKey, KeyError, KeyRing, StoredKey};
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::health::{HealthReport, IngestCounters, IngestSnapshot, Limits, Supervisor};
use crate::ingest::{self, InboxEntry, Ingest, Record, RecordOutcome};
use crate::recognise::MessageSource;
use crate::service_manager::watchdog::Watchdog;
use crate::service_manager::Notifier;
use crate::store::{Store, StoreError};

/// Prefix of the rich-notification keys in the secrets tree.
const KEY_PREFIX: &str = "rich-key/";
/// Validity of a generated encryption certificate.
const KEY_DAYS: u32 = 365;

/// Why the appliance could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("Event Hub: {0}")]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    #[error("{path}: {reason}")]
    Replay { path: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
}

/// The long-lived parts every command shares.
pub struct Core {
    pub store: Store,
    pub device_id: String,
    pub keys: KeyRing,
    pub client_states: ClientStates,
    pub counters: Arc<IngestCounters>,
}

impl Core {
    /// Opens the store and loads (or creates) the device id and encryption key.
    pub fn open(config: &Config) -> Result<Core, AppError> {
        let store = Store::open(&config.data_dir)?;
        let device_id = device_id(&store, config)?;
        let keys = load_keys(&store)?;
        let client_states = ClientStates::load(&store)?;
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(config.ingest.dedupe_days));
        let pruned = store.prune_seen(cutoff)?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot old de-duplication keys");
        }
        Ok(Core {
            store,
            device_id,
            keys,
            client_states,
            counters: Arc::new(IngestCounters::default()),
        })
    }

    /// A new ingest stage handing on to `handoff`.
    pub fn ingest(&self, handoff: mpsc::Sender<InboxEntry>) -> Ingest {
        Ingest::new(
            self.store.clone(),
            self.keys.clone(),
            self.client_states.clone(),
            handoff,
            self.counters.clone(),
        )
    }
}

/// `beacon run`: the appliance until SIGINT/SIGTERM. The alarm, outputs, display, MQTT,
/// notifiers and console run from the start; the link to the cloud ([`CloudLink`]) runs with
/// the settings in force and is restarted when the setup wizard saves new ones.
pub async fn run(config: Config) -> Result<(), AppError> {
    let shutdown = shutdown_signal();
    let core = Core::open(&config)?;
    let (alarm, alarm_task) =
        alarm_service::spawn(config.alarm.clone(), core.store.clone(), Utc::now());
    let output_tasks = start_outputs(&config, &alarm).await;
    let (auth, auth_feed) = watch::channel(AuthStatus::SignedOut);
    let (subscription, subscription_feed) = watch::channel(SubscriptionStatus::default());
    let (handles, handles_feed) = watch::channel(Handles::default());
    let feeds = Feeds {
        auth,
        subscription,
        hub: Arc::new(ConsumerStatus::default()),
        handles,
    };
    let (control, mut restart_requests) = Control::new(handles_feed, Arc::new(config.clone()));
    let systemd = Notifier::from_env();
    let watchdog = Watchdog::spawn_from_env(&systemd, feeds.hub.clone(), &alarm);
    let (display_png, display_mirror) = watch::channel(Vec::new());
    let (health_report, health) = watch::channel(HealthReport::default());
    let mut services = Services {
        store: core.store.clone(),
        device_id: core.device_id.clone(),
        alarm: alarm.clone(),
        counters: core.counters.clone(),
        status: StatusFeeds {
            auth: Some(auth_feed),
            subscription: Some(subscription_feed),
            hub: feeds.hub.clone(),
            last_call: crate::outputs::display::last_call::follow(&core.store, &alarm),
            mqtt: None,
            setup_code: crate::services::no_setup_code(),
        },
        display_png: display_mirror,
        health,
        cloud: Some(control),
    };
    let mqtt = crate::outputs::mqtt::start(&config, &services).await;
    services.status.mqtt = mqtt.as_ref().map(|m| m.status());
    let supervisor = tokio::spawn(
        Supervisor {
            store: core.store.clone(),
            alarm: alarm.clone(),
            status: services.status.clone(),
            counters: core.counters.clone(),
            limits: Limits::default(),
            interval: crate::health::supervisor::INTERVAL,
        }
        .run(health_report),
    );
    start_display(&config, &services, display_png).await;
    let messages = crate::outputs::notify::task::start(&config.notify, &services).await;
    let console = crate::web::start_configured(&config, &services).await;
    // The link last: calls it raises at once (inbox entries left from before a restart) must
    // find MQTT and the notifiers already following the alarm's notices.
    let mut link = CloudLink::start(&config, &core, &alarm, &feeds).await;
    systemd.ready(&if link.consuming() {
        format!("consuming the Event Hub as {}", core.device_id)
    } else {
        format!(
            "{} is not set up yet: waiting for the console's Setup page",
            core.device_id
        )
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = restart_requests.recv() => {
                tracing::info!("the cloud settings changed: restarting the link");
                link.stop(&core.store).await;
                link = CloudLink::start(&config, &core, &alarm, &feeds).await;
            }
        }
    }
    tracing::info!("shutting down");
    systemd.stopping();
    watchdog.stop().await;
    link.stop(&core.store).await;
    core.store.flush()?;
    // The console's routes and connections hold alarm handles: gone before the alarm ends.
    if let Some(console) = console {
        console.stop().await;
    }
    // The button task holds an alarm handle; the relay task de-energises when the alarm's view
    // closes, which happens once the alarm task has ended below.
    if let Some(messages) = messages {
        messages.shutdown().await;
    }
    drop(services);
    supervisor.abort();
    let _ = supervisor.await;
    // MQTT publishes `offline` and lets go of its alarm handle.
    if let Some(mqtt) = mqtt {
        mqtt.shutdown().await;
    }
    for task in output_tasks {
        task.abort();
    }
    // The recogniser's handle went with the link; this was the last one: the alarm task
    // drains what is queued, persists, and ends.
    drop(alarm);
    let _ = alarm_task.await;
    core.store.flush()?;
    Ok(())
}

/// Opens the GPIO lines of `[outputs]` and starts the relay and button tasks. A line that
/// cannot be opened becomes a trouble on the alarm, never a failed start.
#[cfg(target_os = "linux")]
async fn start_outputs(config: &Config, alarm: &AlarmHandle) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let Ok(wiring) = config.outputs.validate() else {
        return tasks; // validated when the configuration was loaded
    };
    let (mut relays, errors) = crate::hw::linux::open_relays(&wiring);
    if let Err(e) = relays.safe() {
        tracing::error!(error = ?e, "could not de-energise the outputs at start");
    }
    for error in errors {
        tracing::error!(%error, "output line not available");
        alarm.send(error.trouble()).await;
    }
    tokio::spawn(crate::outputs::relays::run(alarm.view(), relays));
    if let Some(button) = &config.outputs.button {
        match crate::hw::linux::open_button(&wiring, button) {
            Ok(Some(button)) => tasks.push(tokio::spawn(crate::outputs::button::run(
                button,
                alarm.clone(),
                std::time::Duration::from_millis(10),
            ))),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "acknowledge button not available");
                alarm.send(error.trouble()).await;
            }
        }
    }
    tasks
}

#[cfg(not(target_os = "linux"))]
async fn start_outputs(_config: &Config, _alarm: &AlarmHandle) -> Vec<tokio::task::JoinHandle<()>> {
    tracing::warn!("GPIO outputs are only driven on Linux");
    Vec::new()
}

pub use crate::services::{Services, StatusFeeds};

/// Starts the display loop: the OLED of `[outputs.display]` when there is one (a bus that
/// cannot be opened is a trouble), and the PNG mirror (`mirror`) either way.
#[cfg(target_os = "linux")]
async fn start_display(
    config: &Config,
    services: &Services,
    mirror: tokio::sync::watch::Sender<Vec<u8>>,
) {
    let alarm = &services.alarm;
    let panel = match &config.outputs.display {
        Some(display) => match crate::hw::linux::open_display(display) {
            Ok(panel) => Some(panel),
            Err(error) => {
                tracing::error!(%error, "display not available");
                alarm.send(error.trouble()).await;
                None
            }
        },
        None => None,
    };
    // The display follows the statuses and the alarm's view, but holds no alarm handle: it
    // blanks the panel when the alarm task ends at shutdown.
    let statuses = services.status.clone();
    tokio::spawn(crate::outputs::display::task::run(
        alarm.view(),
        move |tick| statuses.screen(tick),
        panel,
        mirror,
    ));
}

#[cfg(not(target_os = "linux"))]
async fn start_display(
    _config: &Config,
    _services: &Services,
    _mirror: tokio::sync::watch::Sender<Vec<u8>>,
) {
}

/// `beacon login`: device-code sign-in of the service account, then `GET /me`.
pub async fn login<S>(config: Config, show: S) -> Result<Account, AppError>
where
    S: FnOnce(&DeviceCodePrompt),
{
    let core = Core::open(&config)?;
    let (source, tokens) = graph_source(&config, &core.store)?;
    let (MessageSource::Graph(graph), Some(tokens)) = (source, tokens) else {
        return Err(AppError::Config(
            "graph.tenant_id and graph.client_id must be set before signing in".into(),
        ));
    };
    tokens
        .sign_in(show, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| AppError::Config(e.to_string()))?;
    crate::graph::account::fetch_and_store(&graph, &core.store)
        .await
        .map_err(|e| AppError::Config(e.to_string()))
}

/// Result of `beacon replay`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub lines: usize,
    /// Calls recorded by this replay (and before it, in the same store).
    pub calls: Vec<CallBrief>,
    /// The alarm after the replay: idle, alerting or acknowledged.
    pub alarm: String,
    /// Notifications still waiting (a basic notification whose message could not be read).
    pub pending: usize,
    pub handed_off: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub ignored: usize,
    pub counters: IngestSnapshot,
}

/// One recorded call, as `beacon replay` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CallBrief {
    pub key: String,
    pub kind: crate::emergency::Kind,
    pub alarmed_locally: bool,
    pub updates: u32,
    pub location: Option<String>,
}

/// `beacon replay FILE.jsonl`: each non-empty line is one record body, through the same stage
/// and recognition. Basic notifications' messages come from `fixtures` (`<message-id>.json`)
/// or, when sign-in is configured, from Graph.
pub async fn replay(
    config: Config,
    file: &Path,
    fixtures: Option<&Path>,
) -> Result<ReplaySummary, AppError> {
    let text = tokio::fs::read(file).await.map_err(|e| AppError::Replay {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let core = Core::open(&config)?;
    let (alarm, alarm_task) =
        alarm_service::spawn(config.alarm.clone(), core.store.clone(), Utc::now());
    let source = match fixtures {
        Some(dir) => MessageSource::Fixtures(dir.to_path_buf()),
        None => graph_source(&config, &core.store)?.0,
    };
    let recogniser = recogniser(&config, &core, alarm.clone(), source)?;
    let (tx, rx) = mpsc::channel(config.ingest.queue);
    let stage = tokio::spawn(recogniser.run(rx));
    ingest::stage::resume(&core.store, &tx).await?;
    let ingest = core.ingest(tx);
    let name = file.display().to_string();
    let counters = core.counters.clone();
    let store = core.store.clone();
    let summary = tokio::task::spawn_blocking(move || -> Result<ReplaySummary, StoreError> {
        let mut summary = ReplaySummary::default();
        for (index, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            summary.lines += 1;
            let position = format!("replay:{name}:{}", index + 1);
            let outcome: RecordOutcome = ingest.process(Record {
                body: line,
                position: &position,
                received_at: Utc::now(),
            })?;
            summary.handed_off += outcome.handed_off;
            summary.duplicates += outcome.duplicates;
            summary.rejected += outcome.rejected;
            summary.ignored += outcome.ignored;
        }
        ingest.store().flush()?;
        Ok(summary)
    })
    .await
    .map_err(|e| AppError::Replay {
        path: file.display().to_string(),
        reason: e.to_string(),
    })??;
    let _ = stage.await;
    let view = alarm.view();
    drop(alarm);
    let _ = alarm_task.await;
    let state = view.borrow().state;
    store.flush()?;
    let calls = store
        .calls
        .iter()
        .filter_map(|(_, v)| v.ok())
        .filter_map(|v| serde_json::from_value::<crate::recognise::CallRecord>(v).ok())
        .map(|r| CallBrief {
            key: r.key,
            kind: r.kind,
            alarmed_locally: r.alarmed_locally,
            updates: r.updates,
            location: r.call.location.text,
        })
        .collect();
    Ok(ReplaySummary {
        counters: counters.snapshot(),
        calls,
        alarm: serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        pending: store.inbox.len(),
        ..summary
    })
}

/// The configured device id, or the stored one, or a new one (stored).
fn device_id(store: &Store, config: &Config) -> Result<String, AppError> {
    if let Some(id) = &config.device_id {
        return Ok(id.clone());
    }
    if let Some(id) = store
        .settings
        .get("device_id")?
        .and_then(|v| v.as_str().map(str::to_string))
    {
        return Ok(id);
    }
    let mut bytes = [0u8; 3];
    openssl::rand::rand_bytes(&mut bytes).map_err(KeyError::from)?;
    let id = format!(
        "beacon-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    store.settings.insert("device_id", &serde_json::json!(id))?;
    store.flush()?;
    Ok(id)
}

/// Loads the rich-notification keys; creates the first one on a new appliance.
pub fn load_keys(store: &Store) -> Result<KeyRing, AppError> {
    let mut keys = Vec::new();
    for (name, value) in store.secrets_with_prefix(KEY_PREFIX)? {
        match serde_json::from_str::<StoredKey>(value.expose()) {
            Ok(stored) => keys.push(EncryptionKey::from_stored(&stored)?),
            // Only where and what kind: serde's message could quote the key material.
            Err(e) => tracing::error!(
                name,
                kind = ?e.classify(),
                line = e.line(),
                column = e.column(),
                "unreadable encryption key skipped"
            ),
        }
    }
    if keys.is_empty() {
        let now = Utc::now();
        let id = format!("beacon-{}", now.format("%Y%m%d%H%M%S"));
        let key = EncryptionKey::generate(&id, now, KEY_DAYS)?;
        save_key(store, &key)?;
        tracing::info!(id, "created the rich-notification encryption key");
        keys.push(key);
    }
    Ok(KeyRing::new(keys))
}

/// Persists a key in the secrets tree.
pub fn save_key(store: &Store, key: &EncryptionKey) -> Result<(), AppError> {
    let stored = key.to_stored()?;
    let json = serde_json::to_string(&stored).map_err(|e| KeyError::from_message(e.to_string()))?;
    store.set_secret(
        &format!("{KEY_PREFIX}{}", key.id),
        &crate::secret::Secret::new(json),
    )?;
    store.flush()?;
    Ok(())
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the future is
/// first polled: a stop requested while `beacon run` is still starting is kept and acted on
/// once it has started, instead of killing the process the default way (no clean shutdown).
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
