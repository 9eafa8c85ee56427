//! Why the appliance could not start, or a command failed.

use crate::eventhub::connection::ConnectionError;
use crate::eventhub::consumer::ConsumerError;
use crate::graph::crypto::KeyError;
use crate::store::StoreError;

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
