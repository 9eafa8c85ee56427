//! Configuration: a TOML file plus `BEACON_*` environment overrides, validated with errors
//! that name the file (or variable), the key and what is wrong — and never print a value.
//!
//! Environment variables override single keys: `BEACON_DATA_DIR` sets `data_dir`,
//! `BEACON_EVENTHUB_CONNECTION_STRING` sets `eventhub.connection_string`; in general
//! `BEACON_<SECTION>_<KEY>` in upper case. A variable (or a key in the file) that names no
//! setting is an error for [`Config::load`], so a typo cannot silently leave the default in
//! force; [`Config::load_tolerant`] (`beacon run`, `check-config`) leaves it out and reports it. `BEACON_CONFIG`, `BEACON_LOG` and
//! `BEACON_TEST_*` (the test environment) are not settings. See `config/beacon.example.toml`.
//!
//! Each section lives beside its component (`eventhub::config`, `graph::config`, `alarm`,
//! `outputs::config`, …); this is the aggregate, its checks, and the file and environment
//! engine ([`env`]) with the one error shape ([`ConfigError`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod credentials;
mod env;
mod error;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use crate::eventhub::config::EventHubConfig;
pub use crate::graph::config::GraphConfig;
pub use crate::ingest::config::IngestConfig;
pub use error::{ConfigError, Origin};

use crate::emergency::Rules;
use crate::eventhub::connection::{ConnectionError, EventHubTarget};
use crate::outputs::config::Wiring;
use crate::outputs::notify::templates::Templates;
use env::{apply_env, IGNORED_VARS};
use error::without_values;

/// The whole configuration of one appliance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Stable name of this appliance (MQTT topics, consumer group). Generated and stored on
    /// first start when not set.
    pub device_id: Option<String>,
    /// Where the store lives (created 0700).
    pub data_dir: PathBuf,
    /// The Azure Event Hub that Graph delivers into.
    pub eventhub: EventHubConfig,
    /// Microsoft Graph and identity platform.
    pub graph: GraphConfig,
    /// Graph emergency call events (the second source); off without policies.
    pub call_events: crate::graph::call_events::CallEventsConfig,
    /// The durable ingest stage.
    pub ingest: IngestConfig,
    /// How a chat message is recognised as an emergency (phrases, numbers, zones).
    pub emergency: crate::emergency::RulesConfig,
    /// The alarm's timers and output patterns.
    pub alarm: crate::alarm::AlarmConfig,
    /// Strobe, siren and trouble relays and the acknowledge button (GPIO lines).
    pub outputs: crate::outputs::config::OutputsConfig,
    /// MQTT broker, topics and Home Assistant discovery.
    pub mqtt: crate::outputs::mqtt::MqttConfig,
    /// E-mail, SMS, webhooks and PagerDuty: channels, recipients, templates, retries.
    pub notify: crate::outputs::notify::NotifyConfig,
    /// The console (setup page, dashboard, API). Absent: no console.
    pub web: Option<crate::web::WebConfig>,
    /// CA certificates every TLS client trusts besides the system's.
    pub tls: crate::trust::TrustConfig,
    /// The time zone times are shown in (console, display, notifications), an IANA name such
    /// as `America/Los_Angeles`. Absent: the system's (`TZ`, `/etc/localtime`). The console's
    /// settings page can choose another. Records and the API stay in UTC.
    pub time_zone: Option<String>,
    /// What the checks made of the sections, kept for the wiring; read it with
    /// [`Config::checked`]. Public only so that `Config { …, ..Config::default() }` works: leave
    /// it at its default (empty: made on first use).
    #[serde(skip)]
    pub compiled: OnceLock<Arc<Checked>>,
}

/// What the checks make of the sections and the wiring uses: the compiled recognition rules,
/// the outputs' lines and the notification templates. Made once, when the file is loaded
/// ([`Config::load`]); a configuration built in code makes it on first use. The sections it
/// comes from (`emergency`, `outputs`, `notify`) are not changed after that.
#[derive(Debug)]
pub struct Checked {
    pub rules: Arc<Rules>,
    pub wiring: Wiring,
    pub templates: Templates,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device_id: None,
            data_dir: PathBuf::from("/var/lib/beacon"),
            eventhub: EventHubConfig::default(),
            graph: GraphConfig::default(),
            call_events: crate::graph::call_events::CallEventsConfig::default(),
            ingest: IngestConfig::default(),
            emergency: crate::emergency::RulesConfig::default(),
            alarm: crate::alarm::AlarmConfig::default(),
            outputs: crate::outputs::config::OutputsConfig::default(),
            mqtt: crate::outputs::mqtt::MqttConfig::default(),
            notify: crate::outputs::notify::NotifyConfig::default(),
            web: None,
            tls: crate::trust::TrustConfig::default(),
            time_zone: None,
            compiled: OnceLock::new(),
        }
    }
}

impl Config {
    /// Reads `path`, applies the process environment's `BEACON_*` variables and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.kind().to_string(),
        })?;
        Config::from_parts_with(
            path,
            &text,
            &beacon_env(),
            &credentials::from_environment()?,
        )
    }

    /// Like [`Config::load`], but a key that names no setting (in the file or as a `BEACON_*`
    /// variable) is left out and reported instead of stopping the load: what `beacon run`
    /// uses, so a typo or a rollback to a Beacon that does not know a newer key is a trouble,
    /// not a dark appliance.
    pub fn load_tolerant(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.kind().to_string(),
        })?;
        let credentials = credentials::from_environment()?;
        Config::from_parts_tolerant(path, &text, &beacon_env(), &credentials)
    }

    /// Pure core of [`Config::load_tolerant`].
    pub fn from_parts_tolerant(
        path: &Path,
        text: &str,
        env: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<Loaded, ConfigError> {
        let mut table = parse_table(path, text)?;
        let mut env = env.clone();
        let mut credentials = credentials.clone();
        let mut ignored = Vec::new();
        // Each round leaves out one unknown key; a file has far fewer than this.
        for _ in 0..256 {
            match Config::from_table(path, table.clone(), &env, &credentials) {
                Ok(config) => return Ok(Loaded { config, ignored }),
                Err(ConfigError::UnknownVariable { var }) => {
                    env.remove(&var);
                    ignored.push(ConfigError::UnknownVariable { var });
                }
                Err(ConfigError::UnknownCredential { name }) => {
                    credentials.remove(&name);
                    ignored.push(ConfigError::UnknownCredential { name });
                }
                Err(ConfigError::Invalid {
                    origin: Origin::File(file),
                    key,
                    reason,
                }) if unknown_field(&reason)
                    .is_some_and(|field| remove_key(&mut table, &key, field)) =>
                {
                    ignored.push(ConfigError::Invalid {
                        origin: Origin::File(file),
                        key,
                        reason,
                    });
                }
                Err(other) => return Err(other),
            }
        }
        Err(ConfigError::Invalid {
            origin: Origin::File(path.to_path_buf()),
            key: String::new(),
            reason: "too many unknown keys".into(),
        })
    }

    /// Pure core of [`Config::load`]: file text and environment given (no credentials).
    pub fn from_parts(
        path: &Path,
        text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Config::from_parts_with(path, text, env, &BTreeMap::new())
    }

    /// Pure core of [`Config::load`]: file text, environment and credentials
    /// ([`credentials`]) given.
    pub fn from_parts_with(
        path: &Path,
        text: &str,
        env: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Config::from_table(path, parse_table(path, text)?, env, credentials)
    }

    fn from_table(
        path: &Path,
        mut table: toml::Table,
        env: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        // File < credential < environment variable.
        let mut overridden: BTreeMap<String, Origin> = credentials::apply(&mut table, credentials)?
            .into_iter()
            .map(|(key, name)| (key, Origin::Credential(name)))
            .collect();
        for (key, var) in apply_env(&mut table, env)? {
            overridden.insert(key, Origin::Env(var));
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let source = overridden
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Origin::File(path.to_path_buf()));
                ConfigError::Invalid {
                    origin: source,
                    key,
                    reason: without_values(&e.into_inner().to_string()),
                }
            })?;
        let checked = config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: overridden
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| Origin::File(path.to_path_buf())),
                key: key.to_string(),
                reason,
            })?;
        let _ = config.compiled.set(Arc::new(checked));
        Ok(config)
    }

    /// The compiled rules, outputs' lines and templates (checked at load; see [`Checked`]).
    pub fn checked(&self) -> Result<Arc<Checked>, ConfigError> {
        if let Some(checked) = self.compiled.get() {
            return Ok(checked.clone());
        }
        let checked = self
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: Origin::Code,
                key: key.to_string(),
                reason,
            })?;
        Ok(self.compiled.get_or_init(|| Arc::new(checked)).clone())
    }

    /// Checks values that parse but make no sense, and compiles what the wiring uses.
    /// Returns (key, reason).
    fn validate(&self) -> Result<Checked, (&'static str, String)> {
        if let Some(id) = &self.device_id {
            if !is_name(id, 64) {
                return Err((
                    "device_id",
                    "use 1 to 64 letters, digits, '-', '_' or '.'".into(),
                ));
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(("data_dir", "must not be empty".into()));
        }
        if let Some(zone) = &self.time_zone {
            crate::local_time::Zone::named(zone).map_err(|e| ("time_zone", e.to_string()))?;
        }
        if !(1..=crate::graph::schedule::LIFETIME_MINUTES)
            .contains(&self.graph.subscription_minutes)
        {
            return Err((
                "graph.subscription_minutes",
                format!(
                    "must be 1 to {} minutes (Graph's maximum for chat messages is 4,320)",
                    crate::graph::schedule::LIFETIME_MINUTES
                ),
            ));
        }
        let eh = &self.eventhub;
        if let Some(hub) = &eh.hub {
            if !is_name(hub, 256) {
                return Err((
                    "eventhub.hub",
                    "an event hub name is 1 to 256 letters, digits, '-', '_' or '.'".into(),
                ));
            }
        }
        if let Some(group) = &eh.consumer_group {
            if group.is_empty() || group.len() > 256 {
                return Err((
                    "eventhub.consumer_group",
                    "must be 1 to 256 characters".into(),
                ));
            }
        }
        if let Some(bootstrap) = &eh.bootstrap_override {
            if !bootstrap.contains(':') || bootstrap.contains("://") {
                return Err((
                    "eventhub.bootstrap_override",
                    "expected host:port, for example localhost:9093".into(),
                ));
            }
        }
        if let Some(ca) = &eh.ca_file {
            if !ca.is_file() {
                return Err((
                    "eventhub.ca_file",
                    format!("no such file: {}", ca.display()),
                ));
            }
        }
        if let Some(cs) = &eh.connection_string {
            let target = EventHubTarget::parse(cs).map_err(|e| {
                (
                    "eventhub.connection_string",
                    format!("{e} (the value is not shown)"),
                )
            })?;
            if let (Some(path), Some(hub)) = (&target.entity_path, &eh.hub) {
                if path != hub {
                    return Err((
                        "eventhub.hub",
                        format!(
                            "the connection string is for event hub '{path}' but eventhub.hub says '{hub}'"
                        ),
                    ));
                }
            }
        }
        check_url("graph.graph_url", &self.graph.graph_url)?;
        check_url("graph.login_url", &self.graph.login_url)?;
        if self.graph.reconcile_every_secs < 5 {
            return Err((
                "graph.reconcile_every_secs",
                "must be at least 5 (seconds between polls of the chats)".into(),
            ));
        }
        self.call_events.validate(&self.graph)?;
        if self.ingest.queue == 0 {
            return Err(("ingest.queue", "must be at least 1".into()));
        }
        if self.ingest.path_window_secs < 10 {
            return Err(("ingest.path_window_secs", "must be at least 10".into()));
        }
        if self.ingest.max_batch == 0 {
            return Err(("ingest.max_batch", "must be at least 1".into()));
        }
        let rules = Rules::compile(&self.emergency).map_err(|e| ("emergency", e.to_string()))?;
        if let Err(e) = self.alarm.validate() {
            return Err(("alarm", e.to_string()));
        }
        let wiring = self
            .outputs
            .validate()
            .map_err(|e| ("outputs", e.to_string()))?;
        self.mqtt.validate()?;
        let templates = self.notify.validate().map_err(|e| ("notify", e))?;
        if let Some(web) = &self.web {
            web.validate()?;
        }
        if self.ingest.dedupe_days < 8 {
            return Err((
                "ingest.dedupe_days",
                "must be at least 8 (longer than the hub's 7-day retention)".into(),
            ));
        }
        Ok(Checked {
            rules: Arc::new(rules),
            wiring,
            templates,
        })
    }

    /// The Event Hub to consume, resolved from the connection string and `[eventhub]`.
    pub fn eventhub_target(&self) -> Result<EventHubTarget, ConnectionError> {
        let cs = self
            .eventhub
            .connection_string
            .as_ref()
            .ok_or(ConnectionError::NotConfigured)?;
        let mut target = EventHubTarget::parse(cs)?;
        if target.entity_path.is_none() {
            target.entity_path = self.eventhub.hub.clone();
        }
        if target.entity_path.is_none() {
            return Err(ConnectionError::NoHub);
        }
        if let Some(bootstrap) = &self.eventhub.bootstrap_override {
            target.bootstrap = bootstrap.clone();
        }
        Ok(target)
    }

    /// A warning when the client secret expires within 30 days of `today` (or has expired).
    pub fn secret_expiry_warning(&self, today: chrono::NaiveDate) -> Option<String> {
        let expires = self.graph.client_secret_expires?;
        self.graph.client_secret.as_ref()?;
        let days = (expires - today).num_days();
        if days < 0 {
            Some(format!("the client secret expired on {expires}; create a new one in the Entra portal and enter it"))
        } else if days <= 30 {
            Some(format!("the client secret expires on {expires} ({days} days); create a new one in the Entra portal before then"))
        } else {
            None
        }
    }

    /// `eventhub.consumer_group`, or `beacon-<device-id>`.
    pub fn consumer_group(&self, device_id: &str) -> String {
        self.eventhub
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("beacon-{device_id}"))
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub(crate) fn is_name(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_url(key: &'static str, url: &str) -> Result<(), (&'static str, String)> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if url.starts_with("https://") || loopback.iter().any(|p| url.starts_with(p)) {
        Ok(())
    } else {
        Err((
            key,
            "must be an https:// URL (plain http only on loopback, for tests)".into(),
        ))
    }
}

/// A configuration that loaded, and what [`Config::load_tolerant`] left out of it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The unknown keys and variables that were ignored, each as the error it would have been.
    pub ignored: Vec<ConfigError>,
}

/// The process environment's `BEACON_*` settings (not `BEACON_CONFIG`, `BEACON_LOG`,
/// `BEACON_TEST_*`).
pub fn beacon_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("BEACON_")
                && !k.starts_with("BEACON_TEST_")
                && !IGNORED_VARS.contains(&k.as_str())
        })
        .collect()
}

fn parse_table(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((0, 0));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            reason: e.message().to_string(),
        }
    })
}

/// The field serde's "unknown field `x`, expected …" names.
fn unknown_field(reason: &str) -> Option<&str> {
    reason.strip_prefix("unknown field `")?.split('`').next()
}

/// Removes `field` from the table at `key` (a dotted path that ends at the field or at its
/// section). Whether it was there.
fn remove_key(table: &mut toml::Table, key: &str, field: &str) -> bool {
    let mut parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
    if parts.last() == Some(&field) {
        parts.pop();
    }
    let mut current = table;
    for part in parts {
        match current.get_mut(part) {
            Some(toml::Value::Table(inner)) => current = inner,
            _ => return false,
        }
    }
    current.remove(field).is_some()
}
