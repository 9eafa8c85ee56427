//! The settings page's read-only views of the outputs, the zones (and recognition rules), MQTT
//! and the notification channels: each configuration section flattened into `key = value`
//! rows. Secrets serialize as `***` (`secret::Secret`) and are shown as "set (not shown)";
//! nothing here can print a secret's value.

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;

/// One card of the settings page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The element id (`settings-outputs`, …).
    pub id: &'static str,
    pub title: &'static str,
    /// Where it is changed.
    pub hint: &'static str,
    pub rows: Vec<(String, String)>,
}

const FILE: &str =
    "Set in /etc/beacon/beacon.toml; beacon restarts to apply (systemctl restart beacon).";

/// The four views, from the configuration in force.
pub fn sections(config: &Config) -> Vec<Section> {
    vec![
        section("settings-outputs", "Outputs", "outputs", &config.outputs),
        section(
            "settings-zones",
            "Zones and recognition",
            "emergency",
            &config.emergency,
        ),
        section("settings-mqtt", "MQTT", "mqtt", &config.mqtt),
        section(
            "settings-channels",
            "Notification channels",
            "notify",
            &config.notify,
        ),
    ]
}

fn section<T: Serialize>(id: &'static str, title: &'static str, key: &str, value: &T) -> Section {
    let mut rows = Vec::new();
    match serde_json::to_value(value) {
        Ok(value) => flatten(key, &value, &mut rows),
        Err(_) => rows.push((key.to_string(), "(cannot be shown)".into())),
    }
    Section {
        id,
        title,
        hint: FILE,
        rows,
    }
}

fn flatten(path: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, field) in fields {
                flatten(&format!("{path}.{name}"), field, rows);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{path}[{index}]"), item, rows);
            }
        }
        Value::Array(items) if items.is_empty() => rows.push((path.to_string(), "none".into())),
        Value::Array(items) => rows.push((
            path.to_string(),
            items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        )),
        other => rows.push((path.to_string(), scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "not set".into(),
        Value::String(s) if s == "***" => "set (not shown)".into(),
        Value::String(s) => s.clone(),
        Value::Object(_) => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn secrets_show_as_set_and_lists_as_rows() {
        let mut config = Config::default();
        config.notify.pagerduty_routing_key = Some(Secret::new(String::from("R0UT1NGKEY")));
        config.emergency.dial_strings = vec!["911".into(), "112".into()];
        let all = sections(&config);
        let text = format!("{all:?}");
        assert!(!text.contains("R0UT1NGKEY"), "{text}");
        let channels = all.iter().find(|s| s.id == "settings-channels").unwrap();
        assert!(channels.rows.contains(&(
            "notify.pagerduty_routing_key".into(),
            "set (not shown)".into()
        )));
        let zones = all.iter().find(|s| s.id == "settings-zones").unwrap();
        assert!(zones
            .rows
            .contains(&("emergency.dial_strings".into(), "911, 112".into())));
    }
}
