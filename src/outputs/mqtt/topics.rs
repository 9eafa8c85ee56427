//! The topic layout (pure): everything Beacon publishes or listens to lives under
//! `<base>/<device-id>/…`, plus Home Assistant's discovery topics
//! `<prefix>/<component>/<node>/<object>/config` and its birth topic `<prefix>/status`.
//!
//! | topic | retained | what |
//! |---|---|---|
//! | `…/availability` | yes | `online` / `offline` (the last will) |
//! | `…/alarm` | yes | alarm state JSON |
//! | `…/call` | yes | the most urgent active call, or `{"active":false}` |
//! | `…/last_call` | yes | the last call raised (kept after it is cleared), with latency |
//! | `…/trouble` | yes | active troubles |
//! | `…/event` | no | one message per alarm transition |
//! | `…/command/<name>` | no | commands in: `acknowledge`, `test`, `siren` |
//! | `…/command/result` | no | the answer to each command |

/// Commands are published to `…/command/<name>`; this name is Beacon's own answer topic.
pub const RESULT: &str = "result";

/// The topics of one appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `<base>/<device-id>`.
    root: String,
    discovery_prefix: String,
    node_id: String,
}

impl Topics {
    /// Topics for `device_id` under `base` (validated: non-empty levels, no wildcards), with
    /// Home Assistant discovery under `discovery_prefix`.
    pub fn new(base: &str, device_id: &str, discovery_prefix: &str) -> Topics {
        Topics {
            root: format!("{base}/{device_id}"),
            discovery_prefix: discovery_prefix.to_string(),
            node_id: node_id(device_id),
        }
    }

    /// `<base>/<device-id>`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Home Assistant's node id for this device (see [`node_id`]).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn availability(&self) -> String {
        format!("{}/availability", self.root)
    }

    pub fn alarm(&self) -> String {
        format!("{}/alarm", self.root)
    }

    pub fn call(&self) -> String {
        format!("{}/call", self.root)
    }

    pub fn last_call(&self) -> String {
        format!("{}/last_call", self.root)
    }

    /// `…/paths` (retained): per path a call comes by, its calls, last call and misses.
    pub fn paths(&self) -> String {
        format!("{}/paths", self.root)
    }

    pub fn trouble(&self) -> String {
        format!("{}/trouble", self.root)
    }

    pub fn event(&self) -> String {
        format!("{}/event", self.root)
    }

    /// `…/command/<name>`.
    pub fn command(&self, name: &str) -> String {
        format!("{}/command/{name}", self.root)
    }

    /// The subscription that receives every command (and Beacon's own results, ignored).
    pub fn command_filter(&self) -> String {
        self.command("+")
    }

    pub fn command_result(&self) -> String {
        self.command(RESULT)
    }

    /// The command name of `topic`, when it is one of this device's command topics.
    pub fn command_name<'t>(&self, topic: &'t str) -> Option<&'t str> {
        topic
            .strip_prefix(self.root.as_str())?
            .strip_prefix("/command/")
            .filter(|name| !name.contains('/'))
    }

    /// Home Assistant's birth and last-will topic.
    pub fn home_assistant_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// `<prefix>/<component>/<node>/<object>/config`.
    pub fn discovery(&self, component: &str, object_id: &str) -> String {
        format!(
            "{}/{component}/{}/{object_id}/config",
            self.discovery_prefix, self.node_id
        )
    }
}

/// Home Assistant accepts only `[a-zA-Z0-9_-]` in a discovery node id; a device id may also
/// hold `.`, which becomes `_`.
pub fn node_id(device_id: &str) -> String {
    device_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_under_base_and_device() {
        let t = Topics::new("beacon", "desk-1", "homeassistant");
        assert_eq!(t.availability(), "beacon/desk-1/availability");
        assert_eq!(t.alarm(), "beacon/desk-1/alarm");
        assert_eq!(t.call(), "beacon/desk-1/call");
        assert_eq!(t.last_call(), "beacon/desk-1/last_call");
        assert_eq!(t.trouble(), "beacon/desk-1/trouble");
        assert_eq!(t.event(), "beacon/desk-1/event");
        assert_eq!(t.command_filter(), "beacon/desk-1/command/+");
        assert_eq!(t.command_result(), "beacon/desk-1/command/result");
        assert_eq!(t.home_assistant_status(), "homeassistant/status");
        assert_eq!(
            t.discovery("binary_sensor", "emergency"),
            "homeassistant/binary_sensor/desk-1/emergency/config"
        );
    }

    #[test]
    fn command_names_are_read_only_from_this_devices_topics() {
        let t = Topics::new("site/beacon", "desk-1", "homeassistant");
        assert_eq!(
            t.command_name("site/beacon/desk-1/command/acknowledge"),
            Some("acknowledge")
        );
        assert_eq!(
            t.command_name("site/beacon/desk-2/command/acknowledge"),
            None
        );
        assert_eq!(t.command_name("site/beacon/desk-1/command/a/b"), None);
        assert_eq!(t.command_name("site/beacon/desk-1/alarm"), None);
    }

    #[test]
    fn a_dotted_device_id_becomes_a_valid_home_assistant_node_id() {
        let t = Topics::new("beacon", "hq.desk-1", "homeassistant");
        assert_eq!(t.node_id(), "hq_desk-1");
        assert_eq!(t.availability(), "beacon/hq.desk-1/availability");
        assert_eq!(
            t.discovery("button", "acknowledge"),
            "homeassistant/button/hq_desk-1/acknowledge/config"
        );
    }
}
