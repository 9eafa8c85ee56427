//! The `[eventhub]` section: which Azure Event Hub to read notifications from, as what.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// `[eventhub]`: where to read notifications from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventHubConfig {
    /// `Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=<hub>]`
    /// (a Listen policy is enough). Secret.
    pub connection_string: Option<Secret>,
    /// Event hub name (= Kafka topic) when the connection string has no `EntityPath`.
    pub hub: Option<String>,
    /// Kafka consumer group. Default `beacon-<device-id>`, so every appliance gets every event.
    pub consumer_group: Option<String>,
    /// `host:port` to connect to instead of `<ns>.servicebus.windows.net:9093` (tests, proxies).
    pub bootstrap_override: Option<String>,
    /// PEM file of CAs to trust instead of the system store (tests).
    pub ca_file: Option<PathBuf>,
    /// Kafka static membership (`group.instance.id` = device id). Off by default. It would
    /// spare a box the 30 s wait after a power cut (the broker gives up on the member it was
    /// only after `session.timeout.ms`; on the test broker a killed static member's successor
    /// read its first record after 6.3 s, a dynamic one's after 30.3 s), but with it on, the
    /// power-cut campaign's box stopped consuming altogether after its eleventh cut (44 boots
    /// in a row without a commit), and a static member joining a group dead dynamic members
    /// had used got no partition in 120 s. Deafness is worse than 30 s: on only where it has
    /// been tried against the real hub.
    pub static_membership: bool,
}
