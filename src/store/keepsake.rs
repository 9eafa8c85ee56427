//! The keepsake: what a damaged store must not take with it — the device id and what the
//! setup wizard chose — copied into one small JSON file beside the store (`keepsake.json`),
//! written by write-fsync-rename so that a power cut leaves either the old file or the new
//! one, never a torn one. (The alarm's latched state has a file of its own, written before
//! anything else of an alarm step: [`super::StateFile`].)
//!
//! The store refreshes it at every [`super::Store::flush`] when one of the [`KEPT_SETTINGS`]
//! changed (a flush that changed none of them costs a few reads). When the store cannot be
//! opened and is replaced by a fresh one (`super::recovery`), the kept settings are written
//! into the fresh store before anything reads it, so the device keeps its name and its setup.
//!
//! Secrets are never kept in `keepsake.json`: only the *names* of the secrets the store held,
//! so that `beacon check-config` can say which settings the wizard overrides without opening
//! the store (which the running service holds locked). The values of the few secrets that
//! keep the cloud link whole — the fleet's clientState, the rich-notification keys, the app
//! certificate and the sign-in ([`KEPT_SECRETS`]) — go into a file of their own,
//! `keepsake-secrets.json` (0600, written the same way). Without them a fresh store after
//! damage took every later notification of the fleet's own subscription for a stranger's and
//! let it be, committed: the power-cut campaign lost 212 emergencies that way.

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
/// device id (`app::core`) and the wizard's choices (`cloud_settings`; their secrets stay in
/// the store). The alarm's latched state is not a setting: it has a file of its own beside
/// the store, written before anything else of a step (`super::StateFile`). A keepsake of an
/// older Beacon may still hold it as `alarm/state`; recovery brings it back like the others.
pub const KEPT_SETTINGS: &[&str] = &[
    "device_id",
    "wizard/oauth",
    "wizard/eventhub",
    "wizard/subscribe",
];

/// The secrets' file's name in the data directory (mode 0600, like the store).
pub const SECRETS_FILE_NAME: &str = "keepsake-secrets.json";

/// The secrets whose values are kept beside the store, by the names their owners store them
/// under (a trailing `/` keeps every secret under that prefix): the fleet's clientState
/// (`graph::fleet`), the rich-notification keys (`graph::crypto`), the app certificate of the
/// emergency call events (`graph::call_events`) and the sign-in (`graph::tokens`).
pub const KEPT_SECRETS: &[&str] = &[
    "fleet/secrets",
    "rich-key/",
    "app-credential/certificate",
    "graph/refresh-token",
    "graph/client-mode",
];

/// Whether the secret `name` is one of the [`KEPT_SECRETS`].
pub fn is_kept_secret(name: &str) -> bool {
    KEPT_SECRETS
        .iter()
        .any(|kept| match kept.strip_suffix('/') {
            Some(prefix) => name.starts_with(prefix) && name[prefix.len()..].starts_with('/'),
            None => name == *kept,
        })
}

/// The kept secrets' values in `dir`, by name; empty when there is no such file.
pub fn read_secrets(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join(SECRETS_FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|_| format!("{}: unreadable", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

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
    last_secrets: Mutex<Option<BTreeMap<String, String>>>,
    /// The stored bytes the keepsakes were last refreshed from (`Store::flush` compares).
    fingerprint: Mutex<Option<Vec<u8>>>,
}

impl Keeper {
    /// A keeper for the keepsake in `dir`, starting from what the file holds now.
    pub fn new(dir: &Path) -> Keeper {
        Keeper {
            dir: dir.to_path_buf(),
            last: Mutex::new(Keepsake::read(dir).ok().flatten()),
            last_secrets: Mutex::new(read_secrets(dir).ok()),
            fingerprint: Mutex::new(None),
        }
    }

    /// The fingerprint of the last refresh, locked: the caller reads the store, refreshes and
    /// sets it while holding it, so refreshes happen one at a time in the order of the store.
    pub(super) fn fingerprint(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.fingerprint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the kept secrets' values (durably, 0600) unless the file already holds them.
    pub fn refresh_secrets(&self, current: BTreeMap<String, String>) -> std::io::Result<bool> {
        let mut last = self
            .last_secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.as_ref() == Some(&current) {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(&current).map_err(std::io::Error::other)?;
        write_durably(&self.dir.join(SECRETS_FILE_NAME), &bytes)?;
        *last = Some(current);
        Ok(true)
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
            settings: BTreeMap::from([("device_id".to_string(), serde_json::json!(state))]),
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
        assert_eq!(read.settings["device_id"], serde_json::json!("b"));
        assert_eq!(read.saved_at, Some(now));
        assert!(!dir.path().join("keepsake.json.tmp").exists());
        // A new keeper (a restart) knows what the file holds.
        assert!(!Keeper::new(dir.path())
            .refresh(sample("b"), now)
            .expect("same"));
    }

    #[test]
    fn the_kept_secrets_are_written_0600_only_when_they_change() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let keeper = Keeper::new(dir.path());
        let secrets = BTreeMap::from([("fleet/secrets".to_string(), "{}".to_string())]);
        assert!(keeper.refresh_secrets(secrets.clone()).expect("write"));
        assert!(!keeper.refresh_secrets(secrets.clone()).expect("same"));
        assert_eq!(read_secrets(dir.path()), Ok(secrets));
        let mode = std::fs::metadata(dir.path().join(SECRETS_FILE_NAME))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(is_kept_secret("rich-key/beacon-1"));
        assert!(is_kept_secret("graph/refresh-token"));
        assert!(!is_kept_secret("rich-keys"));
        assert!(!is_kept_secret("wizard/graph.client_secret"));
    }

    #[test]
    fn an_unreadable_keepsake_is_an_error_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Keepsake::read(dir.path()), Ok(None));
        std::fs::write(dir.path().join(FILE_NAME), b"{torn").expect("write");
        assert!(Keepsake::read(dir.path()).is_err());
    }
}
