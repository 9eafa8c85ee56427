//! The keepsake: what a damaged store must not take with it — the alarm's latched state, the
//! device id and what the setup wizard chose — copied into one small JSON file beside the
//! store (`keepsake.json`), written by write-fsync-rename so that a power cut leaves either
//! the old file or the new one, never a torn one.
//!
//! The store refreshes it at every [`super::Store::flush`] when one of the [`KEPT_SETTINGS`]
//! changed (the alarm's state changes a few times per call; a flush that changed none of them
//! costs a few reads). When the store cannot be opened and is replaced by a fresh one
//! (`super::recovery`), the kept settings are written into the fresh store before anything
//! reads it, so an unacknowledged call alarms again and the device keeps its name.
//!
//! Secrets are never kept here: only the *names* of the secrets the store held, so that
//! `beacon check-config` can say which settings the wizard overrides without opening the
//! store (which the running service holds locked).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "keepsake.json";

/// The settings copied into the keepsake, by the names their owners store them under: the
/// device id (`app::core`), the alarm's persisted state (`alarm_task`) and the wizard's
/// choices (`cloud_settings`; their secrets stay in the store).
pub const KEPT_SETTINGS: &[&str] = &[
    "device_id",
    "alarm/state",
    "wizard/oauth",
    "wizard/eventhub",
    "wizard/subscribe",
];

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Keepsake {
    /// When it was written.
    pub saved_at: Option<DateTime<Utc>>,
    /// The kept settings that were present, by name.
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Names of the secrets the store held (never their values).
    #[serde(default)]
    pub secrets_set: Vec<String>,
}

impl Keepsake {
    /// Reads the keepsake in `dir`; `Ok(None)` when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<Keepsake>, String> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: unreadable: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Whether the two hold the same settings and secret names (the time aside).
    fn same_content(&self, other: &Keepsake) -> bool {
        self.settings == other.settings && self.secrets_set == other.secrets_set
    }
}

/// Writes the keepsake when its content changed; one writer at a time, so an older content
/// can never replace a newer one.
#[derive(Debug)]
pub struct Keeper {
    dir: PathBuf,
    last: Mutex<Option<Keepsake>>,
}

impl Keeper {
    /// A keeper for the keepsake in `dir`, starting from what the file holds now.
    pub fn new(dir: &Path) -> Keeper {
        Keeper {
            dir: dir.to_path_buf(),
            last: Mutex::new(Keepsake::read(dir).ok().flatten()),
        }
    }

    /// Writes `current` (durably) unless the file already holds the same content.
    pub fn refresh(&self, mut current: Keepsake, now: DateTime<Utc>) -> std::io::Result<bool> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.as_ref().is_some_and(|l| l.same_content(&current)) {
            return Ok(false);
        }
        current.saved_at = Some(now);
        let bytes = serde_json::to_vec_pretty(&current).map_err(std::io::Error::other)?;
        write_durably(&self.dir.join(FILE_NAME), &bytes)?;
        *last = Some(current);
        Ok(true)
    }
}

/// Write to a temporary file, fsync it, rename it over `path`, fsync the directory: after a
/// power cut `path` holds the old content or the new one.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: &str) -> Keepsake {
        Keepsake {
            saved_at: None,
            settings: BTreeMap::from([("alarm/state".to_string(), serde_json::json!(state))]),
            secrets_set: vec!["wizard/graph.client_secret".into()],
        }
    }

    #[test]
    fn refresh_writes_only_when_the_content_changes_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keeper = Keeper::new(dir.path());
        let now = Utc::now();
        assert!(keeper.refresh(sample("a"), now).expect("write"));
        assert!(
            !keeper.refresh(sample("a"), now).expect("same"),
            "unchanged"
        );
        assert!(keeper.refresh(sample("b"), now).expect("changed"));
        let read = Keepsake::read(dir.path()).expect("read").expect("present");
        assert_eq!(read.settings["alarm/state"], serde_json::json!("b"));
        assert_eq!(read.saved_at, Some(now));
        assert!(!dir.path().join("keepsake.json.tmp").exists());
        // A new keeper (a restart) knows what the file holds.
        assert!(!Keeper::new(dir.path())
            .refresh(sample("b"), now)
            .expect("same"));
    }

    #[test]
    fn an_unreadable_keepsake_is_an_error_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Keepsake::read(dir.path()), Ok(None));
        std::fs::write(dir.path().join(FILE_NAME), b"{torn").expect("write");
        assert!(Keepsake::read(dir.path()).is_err());
    }
}
