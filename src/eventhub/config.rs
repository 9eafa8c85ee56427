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
    /// Kafka static membership (`group.instance.id` = device id): a restart does not
    /// rebalance. Off by default.
    pub static_membership: bool,
}
