//! De-duplication keys (pure). The same notification, redelivered by Kafka or sent twice by
//! Graph, maps to the same key; a genuinely new event maps to a new one.
//!
//! * `created` / `deleted`: chat id + message id + change type. A message is created once.
//! * `updated`: a message can be edited many times. With rich content the message's
//!   `lastModifiedDateTime` tells edits apart; a basic notification carries nothing of the
//!   kind, so its record position is used: a Kafka redelivery (same partition and offset) is
//!   dropped, while a second edit is handed on. Downstream handling of an update is idempotent
//!   (it re-reads the message and never raises a second alarm), so a Graph-side duplicate of a
//!   basic update costs one extra fetch, not a second alarm.
//! * emergency call events: event id + `callEventType` + `eventDateTime`.
//! * lifecycle events: subscription + event + position (each one asks for an action).

use crate::graph::notification::{ChangeType, LifecycleEvent};

/// Separator that cannot occur in Graph ids.
const SEP: char = '\u{1f}';

/// Key for a chat-message change.
pub fn message_key(
    chat_id: &str,
    message_id: &str,
    change_type: ChangeType,
    last_modified: Option<&str>,
    position: &str,
) -> String {
    match change_type {
        ChangeType::Created | ChangeType::Deleted => {
            format!(
                "msg{SEP}{chat_id}{SEP}{message_id}{SEP}{}",
                change_type.as_str()
            )
        }
        ChangeType::Updated => {
            let version = last_modified.map_or_else(|| format!("@{position}"), str::to_string);
            format!("msg{SEP}{chat_id}{SEP}{message_id}{SEP}updated{SEP}{version}")
        }
    }
}

/// Key for an emergency call event: the event's id, what happened and when. Graph sends one
/// event once; a redelivery of it maps to the same key, a `callEnded` of the same call to
/// another.
pub fn call_event_key(event_id: &str, event_type: &str, at: &str) -> String {
    format!("event{SEP}{event_id}{SEP}{event_type}{SEP}{at}")
}

/// Key for a lifecycle event.
pub fn lifecycle_key(subscription_id: &str, event: LifecycleEvent, position: &str) -> String {
    format!("life{SEP}{subscription_id}{SEP}{event:?}{SEP}{position}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_ignores_position_updated_does_not() {
        let a = message_key("c", "m", ChangeType::Created, None, "t/0@1");
        let b = message_key("c", "m", ChangeType::Created, None, "t/1@9");
        assert_eq!(a, b);
        let u1 = message_key("c", "m", ChangeType::Updated, None, "t/0@2");
        let u2 = message_key("c", "m", ChangeType::Updated, None, "t/0@3");
        assert_ne!(u1, u2);
        assert_ne!(a, u1);
        let r1 = message_key(
            "c",
            "m",
            ChangeType::Updated,
            Some("2025-01-01T00:00:01Z"),
            "t/0@2",
        );
        let r2 = message_key(
            "c",
            "m",
            ChangeType::Updated,
            Some("2025-01-01T00:00:01Z"),
            "t/1@7",
        );
        assert_eq!(r1, r2);
    }

    #[test]
    fn ids_cannot_collide_across_fields() {
        let a = message_key("c1", "m", ChangeType::Created, None, "");
        let b = message_key("c", "1m", ChangeType::Created, None, "");
        assert_ne!(a, b);
    }
}
