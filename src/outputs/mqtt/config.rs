//! `[mqtt]`: which broker to publish to, how to log in, and where the topics live. Parsed with
//! the rest of the configuration (`crate::config`), checked by [`MqttConfig::validate`], whose
//! errors name the key and never show a value.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Longest client id accepted (MQTT 3.1.1 only guarantees 23; Mosquitto takes more).
const MAX_CLIENT_ID: usize = 64;

/// The `[mqtt]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Publish to a broker at all. Off by default.
    pub enabled: bool,
    /// Broker host name or address.
    pub host: String,
    /// Broker port: 1883 plain, usually 8883 with TLS.
    pub port: u16,
    /// Connect with TLS (rustls). The broker's certificate is checked against `ca_file`, or
    /// against the system's CA store when no file is given.
    pub tls: bool,
    /// PEM file of the CA(s) that signed the broker's certificate (with `tls`).
    pub ca_file: Option<PathBuf>,
    /// User name for the broker, when it asks for one.
    pub username: Option<String>,
    /// Password for `username`. Secret: never printed.
    pub password: Option<Secret>,
    /// MQTT client id. Default: the device id.
    pub client_id: Option<String>,
    /// First topic level: topics are `<base_topic>/<device-id>/…`.
    pub base_topic: String,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    /// Home Assistant's discovery prefix (and `<prefix>/status`, its birth message).
    pub discovery_prefix: String,
    /// The console's address as Home Assistant links it ("Visit" on the device page),
    /// `http(s)://…`. Default: `https://beacon.local` (with `[web]`'s port when not 443);
    /// none without `[web]`.
    pub configuration_url: Option<String>,
    /// Accept the acknowledge and test commands. When off, commands are answered with a
    /// rejection and the Home Assistant buttons and siren control are not offered.
    pub commands_enabled: bool,
    /// MQTT keep-alive interval, seconds.
    pub keepalive_secs: u64,
    /// The broker unreachable for this many seconds becomes a trouble on the alarm (cleared
    /// when it is back). At most 60: every fault shows within a minute.
    pub trouble_after_secs: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "localhost".into(),
            port: 1883,
            tls: false,
            ca_file: None,
            username: None,
            password: None,
            client_id: None,
            base_topic: "beacon".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            configuration_url: None,
            commands_enabled: true,
            keepalive_secs: 30,
            trouble_after_secs: 30,
        }
    }
}

impl MqttConfig {
    /// Checks values that parse but make no sense. Returns (key, reason); never a value.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.enabled && self.host.trim().is_empty() {
            return Err(("mqtt.host", "must not be empty when mqtt.enabled".into()));
        }
        if self.host.contains(char::is_whitespace) || self.host.contains('/') {
            return Err((
                "mqtt.host",
                "a host name or address, without scheme, port or spaces".into(),
            ));
        }
        if self.port == 0 {
            return Err(("mqtt.port", "must be 1 to 65535".into()));
        }
        if let Some(ca) = &self.ca_file {
            if !self.tls {
                return Err(("mqtt.ca_file", "only used with mqtt.tls = true".into()));
            }
            if self.enabled && !ca.is_file() {
                return Err(("mqtt.ca_file", format!("no such file: {}", ca.display())));
            }
        }
        if let Some(user) = &self.username {
            if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
                return Err((
                    "mqtt.username",
                    "1 to 256 characters, no control characters".into(),
                ));
            }
        }
        if self.password.is_some() && self.username.is_none() {
            return Err((
                "mqtt.password",
                "set mqtt.username too (MQTT sends a password only with a user name)".into(),
            ));
        }
        if let Some(id) = &self.client_id {
            if !is_client_id(id) {
                return Err((
                    "mqtt.client_id",
                    format!("1 to {MAX_CLIENT_ID} letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        check_topic_prefix("mqtt.base_topic", &self.base_topic)?;
        check_topic_prefix("mqtt.discovery_prefix", &self.discovery_prefix)?;
        if let Some(url) = &self.configuration_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or_default();
            if rest.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err((
                    "mqtt.configuration_url",
                    "an http:// or https:// address without spaces".into(),
                ));
            }
        }
        if !(5..=3600).contains(&self.keepalive_secs) {
            return Err(("mqtt.keepalive_secs", "must be 5 to 3600".into()));
        }
        if !(1..=60).contains(&self.trouble_after_secs) {
            return Err((
                "mqtt.trouble_after_secs",
                "must be 1 to 60 (every fault shows within a minute)".into(),
            ));
        }
        Ok(())
    }

    /// The client id: `client_id`, or the device id.
    pub fn client_id_for(&self, device_id: &str) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| device_id.to_string())
    }

    /// `keepalive_secs` as a duration.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }

    /// `trouble_after_secs` as a duration.
    pub fn trouble_after(&self) -> Duration {
        Duration::from_secs(self.trouble_after_secs)
    }
}

fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A topic prefix: one or more non-empty levels, no wildcards, no `$` start (reserved for the
/// broker), no NUL.
fn check_topic_prefix(key: &'static str, prefix: &str) -> Result<(), (&'static str, String)> {
    let bad = prefix.is_empty()
        || prefix.len() > 128
        || prefix.starts_with('$')
        || prefix.split('/').any(str::is_empty)
        || prefix.contains(['+', '#', '\0'])
        || prefix.chars().any(char::is_control);
    if bad {
        Err((
            key,
            "topic levels separated by '/', none empty, without '+', '#', a leading '$' or control characters".into(),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> MqttConfig {
        MqttConfig {
            enabled: true,
            ..MqttConfig::default()
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(MqttConfig::default().validate(), Ok(()));
        assert_eq!(enabled().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let cases: Vec<(MqttConfig, &str)> = vec![
            (
                MqttConfig {
                    host: " ".into(),
                    ..enabled()
                },
                "mqtt.host",
            ),
            (
                MqttConfig {
                    host: "mqtt://broker".into(),
                    ..enabled()
                },
                "mqtt.host",
            ),
            (
                MqttConfig {
                    port: 0,
                    ..enabled()
                },
                "mqtt.port",
            ),
            (
                MqttConfig {
                    ca_file: Some("/etc/ssl/ca.pem".into()),
                    ..enabled()
                },
                "mqtt.ca_file",
            ),
            (
                MqttConfig {
                    tls: true,
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..enabled()
                },
                "mqtt.ca_file",
            ),
            (
                MqttConfig {
                    password: Some(Secret::new("hunter2")),
                    ..enabled()
                },
                "mqtt.password",
            ),
            (
                MqttConfig {
                    client_id: Some("has space".into()),
                    ..enabled()
                },
                "mqtt.client_id",
            ),
            (
                MqttConfig {
                    base_topic: "beacon/#".into(),
                    ..enabled()
                },
                "mqtt.base_topic",
            ),
            (
                MqttConfig {
                    base_topic: "site//beacon".into(),
                    ..enabled()
                },
                "mqtt.base_topic",
            ),
            (
                MqttConfig {
                    discovery_prefix: "$SYS".into(),
                    ..enabled()
                },
                "mqtt.discovery_prefix",
            ),
            (
                MqttConfig {
                    configuration_url: Some("beacon.local".into()),
                    ..enabled()
                },
                "mqtt.configuration_url",
            ),
            (
                MqttConfig {
                    configuration_url: Some("https://beacon local".into()),
                    ..enabled()
                },
                "mqtt.configuration_url",
            ),
            (
                MqttConfig {
                    keepalive_secs: 1,
                    ..enabled()
                },
                "mqtt.keepalive_secs",
            ),
            (
                MqttConfig {
                    trouble_after_secs: 600,
                    ..enabled()
                },
                "mqtt.trouble_after_secs",
            ),
        ];
        for (config, key) in cases {
            match config.validate() {
                Err((got, reason)) => {
                    assert_eq!(got, key, "{reason}");
                    assert!(!reason.contains("hunter2"));
                }
                Ok(()) => panic!("{key} should be refused"),
            }
        }
    }

    #[test]
    fn a_nested_base_topic_and_the_default_client_id() {
        let config = MqttConfig {
            base_topic: "site-a/alarms".into(),
            ..enabled()
        };
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.client_id_for("desk-1"), "desk-1");
    }
}
