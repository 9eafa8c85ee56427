//! Opening a store that an abrupt stop damaged, without ever leaving the appliance dark.
//!
//! sled 0.34 can refuse to open after a power cut (`Corruption`, an I/O error on a torn file,
//! or a panic inside its page cache; upstream reports spacejam/sled #1533, #1527, #1509, #1166)
//! — or, worse, open a log whose first page is torn as an empty database, without an error
//! (seen in `tests/local/store_recovery.rs`); the keepsake tells that apart from a new store.
//! [`Store::open_or_recover`] then:
//! 1. moves aside what those reports name as the cause — stray `snap.*.generating` files of
//!    an interrupted snapshot — and opens again;
//! 2. failing that, moves the whole damaged database aside (kept for diagnosis), opens a fresh
//!    store and writes the keepsake's settings into it (the device id, the wizard's choices;
//!    see [`super::keepsake`]). The alarm's latched state is in a file of its own beside the
//!    store ([`super::StateFile`]) and stays where it is.
//!
//! Either way it says what happened ([`Recovery`]), and the record of it stays in the store
//! (`store/recovered`) so the appliance can keep showing it as a trouble after a restart.
//! What is never treated as damage: a store held by another process (the lock), a directory
//! it may not read, a full disk, and a store written by a newer Beacon — moving those aside
//! would destroy good data.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keepsake::Keepsake;
use super::{Store, StoreError};
use crate::hw::failsafe;

/// The settings key the last recovery is recorded under.
const RECOVERED_KEY: &str = "store/recovered";

/// What was done to open a damaged store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub at: DateTime<Utc>,
    /// Why the store did not open, in sled's words (no stored values).
    pub cause: String,
    pub action: RecoveryAction,
}

/// The two ways out, mildest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Leftovers of an interrupted snapshot were moved to `to`; nothing was lost.
    MovedAside { files: Vec<PathBuf>, to: PathBuf },
    /// The damaged database was moved to `kept_at`; a fresh one holds `restored` (the names
    /// of the settings and secrets brought back from the keepsake, and
    /// [`super::ALARM_STATE`] when the alarm's state file was there to be kept).
    FreshStore {
        kept_at: PathBuf,
        restored: Vec<String>,
    },
}

impl Recovery {
    /// What a person at the desk reads (trouble text, log).
    pub fn describe(&self) -> String {
        match &self.action {
            RecoveryAction::MovedAside { to, .. } => format!(
                "the store did not open after an abrupt stop ({}); leftovers of an interrupted \
                 snapshot were moved to {} and it opened: nothing was lost",
                self.cause,
                to.display()
            ),
            RecoveryAction::FreshStore { kept_at, restored } => {
                let kept = |names: &[&str]| restored.iter().any(|n| names.contains(&n.as_str()));
                let alarm = match (
                    kept(&[super::ALARM_STATE, "alarm/state"]),
                    kept(&["device_id"]),
                ) {
                    (true, true) => "the alarm state and device id were kept",
                    (true, false) => "the alarm state was kept; the device id is new",
                    (false, true) => "the device id was kept; no saved alarm state was found",
                    (false, false) => "no saved alarm state or device id was found",
                };
                let signed_in = restored.iter().any(|name| name == "graph/refresh-token");
                let todo = if signed_in {
                    "the sign-in and the subscription's secrets were kept too; re-enter on the \
                     setup page what was set there (Event Hub connection string, client secret)"
                } else {
                    "sign the service account in again, and re-enter on the setup page what \
                     was set there (Event Hub connection string, client secret)"
                };
                format!(
                    "the store was damaged ({}) and is kept in {} for diagnosis; Beacon started \
                     with a new store ({alarm}): {todo}",
                    self.cause,
                    kept_at.display()
                )
            }
        }
    }
}

impl Store {
    /// Opens the store in `dir`, recovering from damage as described in the module doc.
    /// Returns the store and, when it had to recover, what it did.
    pub fn open_or_recover(
        dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<(Store, Option<Recovery>), StoreError> {
        let cause = match attempt(dir, true) {
            Ok(store) => return Ok((store, None)),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Damaged(cause)) => cause,
        };
        tracing::error!(%cause, dir = %dir.display(), "the store does not open: recovering");
        let aside = dir.join(format!("damaged-{}", now.format("%Y%m%dT%H%M%SZ")));
        let leftovers = stray_snapshots(&dir.join("db"));
        if !leftovers.is_empty() {
            let files = move_into(&leftovers, &aside)?;
            if let Ok(store) = attempt(dir, true) {
                let recovery = Recovery {
                    at: now,
                    cause,
                    action: RecoveryAction::MovedAside { files, to: aside },
                };
                store.record(&recovery)?;
                return Ok((store, Some(recovery)));
            }
        }
        let kept = Keepsake::read(dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the keepsake is unreadable too");
            None
        });
        create_dir(&aside)?;
        let kept_at = aside.join("db");
        std::fs::rename(dir.join("db"), &kept_at).map_err(|e| StoreError::Directory {
            path: kept_at.clone(),
            reason: format!("cannot move the damaged store aside: {e}"),
        })?;
        let store = match attempt(dir, false) {
            Ok(store) => store,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Damaged(reason)) => {
                return Err(StoreError::Directory {
                    path: dir.to_path_buf(),
                    reason: format!("a fresh store does not open either: {reason}"),
                })
            }
        };
        let mut restored = Vec::new();
        if store.state_file(super::ALARM_STATE).exists() {
            restored.push(super::ALARM_STATE.to_string());
        }
        for (name, value) in kept.map(|k| k.settings).unwrap_or_default() {
            store.settings.insert(&name, &value)?;
            restored.push(name);
        }
        // The fleet's clientState, the keys and the sign-in: the subscription's notifications
        // are still this box's, and still readable.
        let secrets = super::keepsake::read_secrets(dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the kept secrets are unreadable");
            Default::default()
        });
        for (name, value) in secrets {
            store.set_secret(&name, &crate::secret::Secret::new(value))?;
            restored.push(name);
        }
        let recovery = Recovery {
            at: now,
            cause,
            action: RecoveryAction::FreshStore { kept_at, restored },
        };
        store.record(&recovery)?;
        Ok((store, Some(recovery)))
    }

    /// The last recovery this store records (the fresh store of a recovery records its own).
    pub fn last_recovery(&self) -> Option<Recovery> {
        self.settings
            .get(RECOVERED_KEY)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    fn record(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.settings
            .insert(RECOVERED_KEY, &serde_json::json!(recovery))?;
        self.flush()
    }
}

enum Failure {
    /// Not damage: report it and stop (the lock, permissions, a full disk, a newer schema).
    Fatal(StoreError),
    /// Damage, in words.
    Damaged(String),
}

/// One open, with sled's panics on damaged pages caught. With `expect_data`, a store that
/// opens empty while its keepsake shows it held data is damage too: sled 0.34 opens a log
/// whose first page is torn as an empty database, without an error.
fn attempt(dir: &Path, expect_data: bool) -> Result<Store, Failure> {
    match failsafe::contain(|| Store::open_reporting_new(dir)) {
        Ok(Ok((store, true))) if expect_data && held_data(dir) => {
            drop(store);
            Err(Failure::Damaged(
                "it opened empty, but its keepsake shows it held data: the database lost it".into(),
            ))
        }
        Ok(Ok((store, _))) => Ok(store),
        Ok(Err(e)) if is_damage(&e) => Err(Failure::Damaged(damage_words(&e))),
        Ok(Err(e)) => Err(Failure::Fatal(e)),
        Err(panic) => Err(Failure::Damaged(format!("sled panicked: {panic}"))),
    }
}

/// Whether the keepsake beside the store lists kept settings (the store held data).
fn held_data(dir: &Path) -> bool {
    Keepsake::read(dir).is_ok_and(|k| k.is_some_and(|k| !k.settings.is_empty()))
}

/// Whether an open failure is damage to the files (and not the lock, permissions, space …).
fn is_damage(error: &StoreError) -> bool {
    use std::io::ErrorKind;
    match error {
        StoreError::Sled(sled::Error::Corruption { .. })
        | StoreError::Sled(sled::Error::ReportableBug(_))
        | StoreError::Sled(sled::Error::Unsupported(_)) => true,
        StoreError::Sled(sled::Error::Io(io)) => matches!(
            io.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::InvalidData | ErrorKind::InvalidInput
        ),
        // A value the store cannot read back (its own settings at open).
        StoreError::Corrupt { .. } => true,
        _ => false,
    }
}

/// The damage in words (sled's own Display of `Corruption` prints an empty backtrace).
fn damage_words(error: &StoreError) -> String {
    match error {
        StoreError::Sled(sled::Error::Corruption { .. }) => "sled found corrupted data".into(),
        StoreError::Sled(sled::Error::ReportableBug(what)) => format!("sled failed: {what}"),
        StoreError::Sled(sled::Error::Unsupported(what)) => format!("sled refused: {what}"),
        other => other.to_string(),
    }
}

/// `snap.*.generating` files in the database directory.
fn stray_snapshots(db: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(db) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .collect();
    found.sort();
    found
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Directory {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Moves `files` into `to` (created 0700); returns their new paths.
fn move_into(files: &[PathBuf], to: &Path) -> Result<Vec<PathBuf>, StoreError> {
    create_dir(to)?;
    files
        .iter()
        .map(|file| {
            let target = to.join(file.file_name().unwrap_or_default());
            std::fs::rename(file, &target).map_err(|e| StoreError::Directory {
                path: file.clone(),
                reason: format!("cannot move aside: {e}"),
            })?;
            Ok(target)
        })
        .collect()
}
