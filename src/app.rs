//! Wiring: opens the store, loads keys and client states, starts the stages, and shuts them
//! down in order (consumer first — it flushes and commits — then the stages drain).

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::alarm_service::{self, AlarmHandle};
use crate::config::Config;
use crate::emergency::Rules;
use crate::eventhub::connection::ConnectionError;
use crate::eventhub::consumer::{self, ConsumerError, ConsumerSettings};
use crate::graph::account::Account;
use crate::graph::auth::DeviceCodePrompt;
use crate::graph::auth::{OAuthSettings, DEFAULT_SCOPES};
use crate::graph::client::GraphClient;
use crate::graph::client_state::ClientStates;
use crate::graph::crypto::{EncryptionKey, KeyError, KeyRing, StoredKey};
use crate::graph::retry::RetryPolicy;
use crate::graph::subscription::{SubscriptionKeeper, SubscriptionSettings};
use crate::graph::tokens::TokenKeeper;
use crate::health::{HealthReport, IngestCounters, IngestSnapshot, Limits, Supervisor};
use crate::ingest::{self, InboxEntry, Ingest, Record, RecordOutcome};
use crate::recognise::{MessageSource, Recogniser};
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

/// `beacon run`: consume the hub until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), AppError> {
    let core = Core::open(&config)?;
    let target = config.eventhub_target()?;
    let (alarm, alarm_task) =
        alarm_service::spawn(config.alarm.clone(), core.store.clone(), Utc::now());
    let output_tasks = start_outputs(&config, &alarm).await;
    let (source, tokens) = graph_source(&config, &core.store)?;
    if let Some(tokens) = &tokens {
        tokio::spawn(tokens.clone().run(std::future::pending::<()>()));
    } else {
        tracing::warn!(
            "Graph sign-in is not configured: basic notifications wait in the inbox until it is"
        );
    }
    let mut recogniser = recogniser(&config, &core, alarm.clone(), source.clone())?;
    let mut gap_watch = None;
    if let (MessageSource::Graph(graph), Some(account)) =
        (&source, crate::graph::account::stored(&core.store))
    {
        let keeper = SubscriptionKeeper::new(
            graph.clone(),
            core.store.clone(),
            core.client_states.clone(),
            SubscriptionSettings {
                service_account_id: account.id,
                namespace: target.namespace().to_string(),
                hub: target.topic().to_string(),
                hub_tenant: config
                    .graph
                    .hub_tenant
                    .clone()
                    .or_else(|| config.graph.tenant_id.clone())
                    .unwrap_or_default(),
                model_b: config.graph.model_b,
                rich: config
                    .graph
                    .rich_notifications
                    .then(|| core.keys.current().cloned())
                    .flatten(),
            },
        );
        let (lifecycle_tx, mut lifecycle_rx) = mpsc::channel(16);
        recogniser.lifecycle = Some(lifecycle_tx);
        let forward = keeper.clone();
        tokio::spawn(async move {
            while let Some((id, event)) = lifecycle_rx.recv().await {
                forward.lifecycle(&id, event).await;
            }
        });
        gap_watch = Some((graph.clone(), keeper.status()));
        tokio::spawn(keeper.run(std::future::pending::<()>()));
    } else if tokens.is_some() {
        tracing::warn!("the service account is not signed in: run `beacon login` (no subscription is kept until then)");
    }
    if let Some(warning) = config.secret_expiry_warning(Utc::now().date_naive()) {
        tracing::warn!("{warning}");
    }
    let (tx, rx) = mpsc::channel(config.ingest.queue);
    let stage = tokio::spawn(recogniser.run(rx));
    let resumed = ingest::stage::resume(&core.store, &tx).await?;
    if resumed > 0 {
        tracing::info!(
            resumed,
            "handed on notifications pending from before the restart"
        );
    }
    let settings = ConsumerSettings {
        group_id: config.consumer_group(&core.device_id),
        client_id: core.device_id.clone(),
        ca_file: config.eventhub.ca_file.clone(),
        instance_id: config
            .eventhub
            .static_membership
            .then(|| core.device_id.clone()),
        max_batch: config.ingest.max_batch,
        commit: true,
        target,
    };
    tracing::info!(
        device_id = core.device_id,
        bootstrap = settings.target.bootstrap,
        topic = settings.target.topic(),
        group = settings.group_id,
        "consuming the Event Hub"
    );
    let consumer = consumer::spawn(settings, core.ingest(tx.clone()))?;
    let systemd = Notifier::from_env();
    let watchdog = Watchdog::spawn_from_env(&systemd, consumer.status.clone(), &alarm);
    let (display_png, display_mirror) = tokio::sync::watch::channel(Vec::new());
    let (health_report, health) = tokio::sync::watch::channel(HealthReport::default());
    let mut services = Services {
        store: core.store.clone(),
        device_id: core.device_id.clone(),
        alarm: alarm.clone(),
        counters: core.counters.clone(),
        status: StatusFeeds {
            auth: tokens.as_ref().map(|t| t.status()),
            subscription: gap_watch.as_ref().map(|(_, s)| s.clone()),
            hub: consumer.status.clone(),
            last_call: crate::outputs::display::last_call::follow(&core.store, &alarm),
            mqtt: None,
        },
        display_png: display_mirror,
        health,
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
    if let Some((graph, subscription)) = gap_watch {
        // Resync at start (the appliance was down until now) and after every gap.
        tokio::spawn(crate::graph::resync::run_triggers(
            graph,
            core.store.clone(),
            tx.downgrade(),
            subscription,
            consumer.status.clone(),
        ));
    }
    drop(tx);
    systemd.ready(&format!("consuming the Event Hub as {}", core.device_id));
    shutdown_signal().await;
    tracing::info!("shutting down");
    systemd.stopping();
    watchdog.stop().await;
    tokio::task::spawn_blocking(move || consumer.shutdown())
        .await
        .map_err(|e| ConsumerError::Thread(e.to_string()))?;
    core.store.flush()?;
    let _ = stage.await;
    crate::graph::resync::set_watermark(&core.store, Utc::now());
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
    // The recogniser's handle went with the stage; this was the last one: the alarm task
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

/// The Graph message source and token keeper, when sign-in is configured.
fn graph_source(
    config: &Config,
    store: &Store,
) -> Result<(MessageSource, Option<Arc<TokenKeeper>>), AppError> {
    let (Some(tenant), Some(client_id)) = (&config.graph.tenant_id, &config.graph.client_id) else {
        return Ok((MessageSource::Unavailable, None));
    };
    let settings = OAuthSettings {
        login_url: config.graph.login_url.clone(),
        tenant: tenant.clone(),
        client_id: client_id.clone(),
        client_secret: config.graph.client_secret.clone(),
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    let tokens =
        TokenKeeper::new(settings, store.clone()).map_err(|e| AppError::Config(e.to_string()))?;
    let graph = GraphClient::new(
        &config.graph.graph_url,
        tokens.clone(),
        RetryPolicy::default(),
    )
    .map_err(|e| AppError::Config(e.to_string()))?;
    Ok((MessageSource::Graph(graph), Some(tokens)))
}

fn recogniser(
    config: &Config,
    core: &Core,
    alarm: AlarmHandle,
    source: MessageSource,
) -> Result<Recogniser, AppError> {
    let rules = Rules::compile(&config.emergency).map_err(|e| AppError::Config(e.to_string()))?;
    let service_account_id = crate::graph::account::stored(&core.store).map(|a| a.id);
    Ok(Recogniser {
        store: core.store.clone(),
        rules: Arc::new(rules),
        alarm,
        source,
        service_account_id,
        lifecycle: None,
    })
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

/// Waits for SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
