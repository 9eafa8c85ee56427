//! Silent drops of chat notifications (graph-teams.md B.11): Graph now and then does not
//! publish the notification of a message — no `missed` lifecycle event, nothing in the hub —
//! while the message itself is in the chat and Graph's GETs and lists return it as usual.

use super::publish::Published;

/// Drops the notifications of the next changes, as many as asked for.
#[derive(Default)]
pub struct Drops {
    /// Changes whose notifications are still to be dropped.
    pending: u32,
    /// The changes dropped so far: (chat id, message id, change type).
    pub dropped: Vec<(String, String, String)>,
    /// The records that were not published, for a test that delivers them late after all.
    held: Vec<Published>,
    /// Messages (chat id, message id) whose next notification is dropped, whatever else is
    /// posted meanwhile (a placed call's chat message, [`super::calls`]).
    targeted: Vec<(String, String)>,
}

impl Drops {
    pub fn drop_next(&mut self, changes: u32) {
        self.pending += changes;
    }

    /// Whether the notifications of this change are dropped (every subscription's: Graph
    /// loses the change, not one delivery).
    pub fn take(&mut self, chat_id: &str, message_id: &str, change_type: &str) -> bool {
        let target = (chat_id.to_string(), message_id.to_string());
        if let Some(at) = self.targeted.iter().position(|t| *t == target) {
            self.targeted.remove(at);
        } else if self.pending == 0 {
            return false;
        } else {
            self.pending -= 1;
        }
        self.dropped
            .push((chat_id.into(), message_id.into(), change_type.into()));
        true
    }

    /// The next notification of this one message is dropped.
    pub fn drop_message(&mut self, chat_id: &str, message_id: &str) {
        self.targeted.push((chat_id.into(), message_id.into()));
    }

    /// Keeps the records of a dropped change.
    pub fn hold(&mut self, records: Vec<Published>) {
        self.held.extend(records);
    }

    /// The records held so far, handed out once.
    pub fn release(&mut self) -> Vec<Published> {
        std::mem::take(&mut self.held)
    }
}
