//! Where the alarm's state is kept between starts: the file [`ALARM_STATE`] beside the store
//! (see [`crate::store::StateFile`] for why not in sled), read once at start and replaced at
//! every change, durably, before anything else of that change is written.
//!
//! What can go wrong is said as the trouble [`TROUBLE_COMPONENT`], never only in the log:
//! * a file that cannot be read at start is moved aside (kept for diagnosis, never
//!   overwritten by the next write) and the start goes on without it — an older Beacon's
//!   setting if there is one, else idle;
//! * a write that fails: after a restart, calls already raised could alarm again and
//!   unacknowledged ones could be forgotten. The trouble clears at the next write that works.

use chrono::{DateTime, Utc};

use crate::alarm::{Event, PersistedState};
use crate::store::{StateFile, Store, ALARM_STATE};

/// Where older Beacons kept the state: a setting in the store. Read when there is no state
/// file yet (the first start after an upgrade, or a keepsake of then restored into a fresh
/// store), and removed once the file holds the state.
const LEGACY_STATE_KEY: &str = "alarm/state";

/// The trouble that says the alarm's state is not kept.
pub const TROUBLE_COMPONENT: &str = "alarm-state";

/// The alarm's persisted state as the next start will restore it: the state file, or (none
/// written yet) the setting of an older Beacon. For looking (tests, the power-cut ledger);
/// the alarm task itself reads it with [`SavedState::open`].
pub fn stored_state(store: &Store) -> Option<PersistedState> {
    match store.state_file(ALARM_STATE).read() {
        Ok(Some(state)) => Some(state),
        Ok(None) => legacy_state(store),
        Err(error) => {
            tracing::error!(%error, "the alarm's state file is unreadable");
            legacy_state(store)
        }
    }
}

fn legacy_state(store: &Store) -> Option<PersistedState> {
    store
        .settings
        .get(LEGACY_STATE_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// The alarm task's side of the file.
pub(super) struct SavedState {
    file: StateFile,
    store: Store,
    /// An older Beacon's state setting is still in the store (removed after the first write).
    legacy_setting: bool,
    /// The file was unreadable at this start (in words; held until the next start).
    unreadable: Option<String>,
    /// The last write failed (in words; until a write works).
    unwritable: Option<String>,
    /// The trouble's detail as the alarm holds it now.
    raised: Option<String>,
}

impl SavedState {
    /// Reads the state for the start. An unreadable file is moved aside and becomes the
    /// trouble (see the module doc).
    pub(super) fn open(store: &Store, now: DateTime<Utc>) -> (SavedState, Option<PersistedState>) {
        let file = store.state_file(ALARM_STATE);
        let mut unreadable = None;
        let state = match file.read() {
            Ok(Some(state)) => Some(state),
            Ok(None) => legacy_state(store),
            Err(error) => {
                let aside = file
                    .path()
                    .with_extension(format!("unreadable-{}", now.format("%Y%m%dT%H%M%SZ")));
                let kept = match std::fs::rename(file.path(), &aside) {
                    Ok(()) => format!("kept as {}", aside.display()),
                    Err(e) => format!("could not be moved aside: {e}"),
                };
                let words = format!(
                    "the saved alarm state was unreadable at the start ({error}; {kept}): calls \
                     that were alarming before may not be, and a call already raised may alarm \
                     again if it is handed in again"
                );
                tracing::error!(problem = %words, "alarm state");
                unreadable = Some(words);
                legacy_state(store)
            }
        };
        let saved = SavedState {
            file,
            store: store.clone(),
            legacy_setting: matches!(store.settings.get(LEGACY_STATE_KEY), Ok(Some(_))),
            unreadable,
            unwritable: None,
            raised: None,
        };
        (saved, state)
    }

    /// Replaces the state durably, waiting on the blocking pool (the relay and display tasks
    /// share the executor threads with the alarm task and must not wait for the disk).
    pub(super) async fn write(&mut self, state: PersistedState) {
        let file = self.file.clone();
        let written = tokio::task::spawn_blocking(move || file.write(&state))
            .await
            .unwrap_or_else(|panic| Err(std::io::Error::other(panic.to_string())));
        match written {
            Ok(()) => {
                if self.legacy_setting {
                    match self.store.settings.remove(LEGACY_STATE_KEY) {
                        Ok(_) => self.legacy_setting = false,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot remove the old alarm state setting")
                        }
                    }
                }
                self.unwritable = None;
            }
            Err(e) => {
                let words = format!(
                    "cannot write the alarm state to {} ({e}): after a restart, calls already \
                     raised may alarm again and unacknowledged ones may be forgotten",
                    self.file.path().display()
                );
                tracing::error!(problem = %words, "alarm state");
                self.unwritable = Some(words);
            }
        }
    }

    /// The trouble event that brings the alarm in line with what is wrong now, if any.
    pub(super) fn trouble_event(&mut self) -> Option<Event> {
        let now = self
            .unwritable
            .as_ref()
            .or(self.unreadable.as_ref())
            .cloned();
        if now == self.raised {
            return None;
        }
        self.raised = now.clone();
        Some(match now {
            Some(detail) => Event::TroubleRaised {
                component: TROUBLE_COMPONENT.to_string(),
                detail,
            },
            None => Event::TroubleCleared {
                component: TROUBLE_COMPONENT.to_string(),
            },
        })
    }
}
