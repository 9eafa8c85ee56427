//! The `[ingest]` section: the durable stage between the hub and recognition.

use serde::{Deserialize, Serialize};

/// `[ingest]`: the durable stage between the hub and recognition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Notifications waiting for recognition before the consumer is slowed down.
    pub queue: usize,
    /// How long a de-duplication key is kept (the hub keeps events at most 7 days on Standard).
    pub dedupe_days: u32,
    /// Records taken from the hub before one flush and commit.
    pub max_batch: usize,
    /// Seconds within which two sources' reports of one caller are one call (the chat message
    /// and the Graph emergency call event: the first alarms, the second enriches), and after
    /// which a path held to every call (chat notifications, call events) that has not reported
    /// it counts as missed by that path and is a trouble.
    pub path_window_secs: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue: 1024,
            dedupe_days: 30,
            max_batch: 500,
            path_window_secs: 180,
        }
    }
}
