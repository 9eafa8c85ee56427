//! Home Assistant MQTT discovery (pure): the retained config messages that make one "Beacon"
//! device with its entities appear in Home Assistant, following HA's documented discovery
//! schema (`<prefix>/<component>/<node>/<object>/config`; full key names, no abbreviations).
//!
//! | component | object | entity |
//! |---|---|---|
//! | `siren` | `alarm` | the alarm: on while a call is unacknowledged; turning it off acknowledges |
//! | `binary_sensor` | `emergency` | a real emergency call is active (device class `safety`) |
//! | `binary_sensor` | `possible` | a possible emergency is active: read the message in Teams |
//! | `binary_sensor` | `trouble` | a fault is active (device class `problem`), details as attributes |
//! | `sensor` | `state` | `idle` / `alerting` / `acknowledged` (device class `enum`) |
//! | `sensor` | `last_caller` | who placed the last call; the whole call as attributes |
//! | `sensor` | `last_location` | where (cut to HA's 255 characters) |
//! | `sensor` | `latency` | seconds from the Teams message to the alarm (device class `duration`) |
//! | `button` | `acknowledge` | acknowledges every active call |
//! | `button` | `test` | starts a lamp test |
//! | `button` | `confirm` | makes every active possible emergency the full alarm |
//! | `event` | `alarm_event` | every alarm transition (`call_raised`, `acknowledged`, …) as it happens |
//!
//! Every entity shares one `device` block (identifiers `beacon_<node>`, `sw_version` with the
//! build's revision, `configuration_url` the console), the availability topic, and a
//! `unique_id` of `beacon_<node>_<object>`. With commands disabled the siren and buttons are
//! withdrawn (an empty retained config removes an entity).

use serde_json::{json, Value};

use super::topics::Topics;
use crate::alarm::AuditAction;

/// The `event_types` of the event entity: every alarm transition, as `…/event`'s
/// `event_type` names it. A new [`AuditAction`] must be added here (see [`is_listed`]): Home
/// Assistant drops an event whose type is not listed.
pub const EVENT_TYPES: [AuditAction; 14] = [
    AuditAction::CallRaised,
    AuditAction::CallUpdated,
    AuditAction::Confirmed,
    AuditAction::Acknowledged,
    AuditAction::Silenced,
    AuditAction::AutoSilenced,
    AuditAction::Escalated,
    AuditAction::Cleared,
    AuditAction::AutoCleared,
    AuditAction::TroubleRaised,
    AuditAction::TroubleCleared,
    AuditAction::LampTestStarted,
    AuditAction::LampTestEnded,
    AuditAction::Restored,
];

/// Whether `action` is in [`EVENT_TYPES`]; its exhaustive `match` stops the build when an
/// action is added to the alarm and not here.
pub fn is_listed(action: AuditAction) -> bool {
    match action {
        AuditAction::CallRaised
        | AuditAction::CallUpdated
        | AuditAction::Confirmed
        | AuditAction::Acknowledged
        | AuditAction::Silenced
        | AuditAction::AutoSilenced
        | AuditAction::Escalated
        | AuditAction::Cleared
        | AuditAction::AutoCleared
        | AuditAction::TroubleRaised
        | AuditAction::TroubleCleared
        | AuditAction::LampTestStarted
        | AuditAction::LampTestEnded
        | AuditAction::Restored => EVENT_TYPES.contains(&action),
    }
}

/// One retained discovery message: `None` withdraws the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryMessage {
    pub topic: String,
    pub config: Option<Value>,
}

/// What is needed besides the topics.
#[derive(Debug, Clone)]
pub struct DeviceInfo<'a> {
    pub device_id: &'a str,
    /// Beacon's version with the build's revision (`sw_version`).
    pub version: &'a str,
    /// The console's address (`configuration_url`), when there is one.
    pub configuration_url: Option<&'a str>,
    /// Offer the siren control and the buttons.
    pub commands_enabled: bool,
}

/// Every discovery message for this appliance.
pub fn messages(topics: &Topics, device: &DeviceInfo<'_>) -> Vec<DiscoveryMessage> {
    let entity = |component: &str, object: &str, name: &str, specific: Value| {
        let mut config = common(topics, device, object, name);
        if let (Some(config), Value::Object(specific)) = (config.as_object_mut(), specific) {
            config.extend(specific);
        }
        DiscoveryMessage {
            topic: topics.discovery(component, object),
            config: Some(config),
        }
    };
    let on_off = |field: &str| format!("{{{{ 'ON' if value_json.{field} else 'OFF' }}}}");
    let mut messages = vec![
        entity(
            "binary_sensor",
            "emergency",
            "Emergency active",
            json!({
                "state_topic": topics.alarm(),
                "value_template": on_off("emergency"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "safety",
            }),
        ),
        entity(
            "binary_sensor",
            "possible",
            "Possible emergency",
            json!({
                "state_topic": topics.alarm(),
                "value_template": on_off("possible"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "safety",
            }),
        ),
        entity(
            "binary_sensor",
            "trouble",
            "Trouble",
            json!({
                "state_topic": topics.trouble(),
                "value_template": on_off("active"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "problem",
                "json_attributes_topic": topics.trouble(),
            }),
        ),
        entity(
            "sensor",
            "state",
            "Alarm state",
            json!({
                "state_topic": topics.alarm(),
                "value_template": "{{ value_json.state }}",
                "device_class": "enum",
                "options": ["idle", "alerting", "acknowledged"],
                "icon": "mdi:alarm-light",
            }),
        ),
        entity(
            "sensor",
            "last_caller",
            "Last caller",
            json!({
                "state_topic": topics.last_call(),
                "value_template": "{{ (value_json.caller or 'unknown')[:255] }}",
                "json_attributes_topic": topics.last_call(),
                "icon": "mdi:phone-alert",
            }),
        ),
        entity(
            "sensor",
            "last_location",
            "Last location",
            json!({
                "state_topic": topics.last_call(),
                "value_template": "{{ (value_json.location or 'unknown')[:255] }}",
                "icon": "mdi:map-marker-alert",
            }),
        ),
        entity(
            "sensor",
            "latency",
            "Alarm latency",
            json!({
                "state_topic": topics.last_call(),
                "value_template": "{{ value_json.latency_seconds }}",
                "device_class": "duration",
                "state_class": "measurement",
                "unit_of_measurement": "s",
                "entity_category": "diagnostic",
            }),
        ),
        entity(
            "event",
            "alarm_event",
            "Alarm event",
            json!({
                "state_topic": topics.event(),
                "event_types": EVENT_TYPES,
                "qos": 1,
                "icon": "mdi:alarm-light-outline",
            }),
        ),
    ];
    let controls = [
        entity(
            "siren",
            "alarm",
            "Alarm",
            json!({
                "state_topic": topics.alarm(),
                "state_value_template": on_off("alerting"),
                "state_on": "ON",
                "state_off": "OFF",
                "command_topic": topics.command("siren"),
                "command_template": "ON",
                "command_off_template": "OFF",
                "optimistic": false,
                "support_duration": false,
                "support_volume_set": false,
                "retain": false,
                "qos": 1,
            }),
        ),
        entity(
            "button",
            "acknowledge",
            "Acknowledge",
            json!({
                "command_topic": topics.command("acknowledge"),
                "payload_press": "PRESS",
                "retain": false,
                "qos": 1,
                "icon": "mdi:check-circle",
            }),
        ),
        entity(
            "button",
            "test",
            "Lamp test",
            json!({
                "command_topic": topics.command("test"),
                "payload_press": "PRESS",
                "retain": false,
                "qos": 1,
                "entity_category": "diagnostic",
                "icon": "mdi:lightbulb-alert",
            }),
        ),
        entity(
            "button",
            "confirm",
            "Confirm possible emergency",
            json!({
                "command_topic": topics.command("confirm"),
                "payload_press": "PRESS",
                "retain": false,
                "qos": 1,
                "icon": "mdi:alarm-light",
            }),
        ),
    ];
    for control in controls {
        messages.push(if device.commands_enabled {
            control
        } else {
            DiscoveryMessage {
                config: None,
                ..control
            }
        });
    }
    messages
}

/// The keys every entity has: availability, device, origin, unique id and name.
fn common(topics: &Topics, device: &DeviceInfo<'_>, object: &str, name: &str) -> Value {
    let node = topics.node_id();
    let mut config = json!({
        "name": name,
        "unique_id": format!("beacon_{node}_{object}"),
        "availability": [{
            "topic": topics.availability(),
            "payload_available": "online",
            "payload_not_available": "offline",
        }],
        "device": {
            "identifiers": [format!("beacon_{node}")],
            "name": format!("Beacon {}", device.device_id),
            "manufacturer": "Beacon",
            "model": "Emergency-call alarm",
            "sw_version": device.version,
        },
        "origin": {
            "name": "Beacon",
            "sw_version": device.version,
        },
    });
    if let Some(url) = device.configuration_url {
        config["device"]["configuration_url"] = json!(url);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(commands_enabled: bool) -> Vec<DiscoveryMessage> {
        messages(
            &Topics::new("beacon", "desk-1", "homeassistant"),
            &DeviceInfo {
                device_id: "desk-1",
                version: "0.1.0 (3f2a9c1d0b7e)",
                configuration_url: Some("https://beacon.local"),
                commands_enabled,
            },
        )
    }

    #[test]
    fn unique_ids_are_unique_and_the_device_is_shared() {
        let messages = all(true);
        let mut ids: Vec<String> = messages
            .iter()
            .filter_map(|m| m.config.as_ref())
            .map(|c| c["unique_id"].as_str().unwrap_or_default().to_string())
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert_eq!(count, 12);
        for config in messages.iter().filter_map(|m| m.config.as_ref()) {
            assert_eq!(config["device"]["identifiers"][0], "beacon_desk-1");
            assert_eq!(
                config["device"]["configuration_url"],
                "https://beacon.local"
            );
            assert_eq!(config["device"]["sw_version"], "0.1.0 (3f2a9c1d0b7e)");
        }
    }

    #[test]
    fn the_event_entity_lists_every_alarm_transition_by_its_published_name() {
        let messages = all(true);
        let event = messages
            .iter()
            .find(|m| m.topic == "homeassistant/event/desk-1/alarm_event/config")
            .and_then(|m| m.config.as_ref())
            .expect("event entity");
        assert_eq!(event["state_topic"], "beacon/desk-1/event");
        let types: Vec<&str> = event["event_types"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        for wanted in [
            "call_raised",
            "acknowledged",
            "silenced",
            "cleared",
            "escalated",
        ] {
            assert!(types.contains(&wanted), "{wanted} in {types:?}");
        }
        for action in EVENT_TYPES {
            assert!(is_listed(action));
        }
    }

    #[test]
    fn without_commands_the_controls_are_withdrawn() {
        let messages = all(false);
        let withdrawn: Vec<&str> = messages
            .iter()
            .filter(|m| m.config.is_none())
            .map(|m| m.topic.as_str())
            .collect();
        assert_eq!(
            withdrawn,
            [
                "homeassistant/siren/desk-1/alarm/config",
                "homeassistant/button/desk-1/acknowledge/config",
                "homeassistant/button/desk-1/test/config",
                "homeassistant/button/desk-1/confirm/config",
            ]
        );
    }
}
