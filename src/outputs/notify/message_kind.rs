//! What a message is about: a raised alarm, a possible emergency, a test, an escalation, an
//! acknowledgement or the all-clear (the outbox's `kind`, the templates' and the channels' choice of words).

use serde::{Deserialize, Serialize};

/// What a message is about (the outbox's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Alarm,
    /// A possible emergency: someone must read the message in Teams. Its confirmation (a
    /// guard, or a second source) sends the `alarm` message.
    Possible,
    Test,
    Escalation,
    Acknowledged,
    Cleared,
}

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Alarm => "alarm",
            MessageKind::Possible => "possible",
            MessageKind::Test => "test",
            MessageKind::Escalation => "escalation",
            MessageKind::Acknowledged => "acknowledged",
            MessageKind::Cleared => "cleared",
        }
    }
}
