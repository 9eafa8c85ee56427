//! A value that must outlive whatever sled loses, kept in a small JSON file of its own beside
//! the store and written by write-fsync-rename: when [`StateFile::write`] returns, the file
//! holds the new value durably, and a power cut at any moment leaves the old value or the new
//! one, never a torn file.
//!
//! The alarm's latched state lives here ([`ALARM_STATE`], owned by `alarm_task`). It used to
//! be a setting in sled, written in one transaction with the alarm's audit records. The
//! power-cut campaign found that sled 0.34 does not keep such a transaction whole: after a cut
//! one tenth of a second after a raise, the raise's audit record came back and the state that
//! remembers the raised key did not, so the next boot raised the same call again. sled writes
//! nodes larger than 128 KiB as blob files of their own, and its log can reach the disk before
//! them; the alarm's state (up to 512 remembered keys) makes its node that large. A file that
//! is durable *before* anything about the raise is written to sled cannot be overtaken.
//!
//! A fresh store after damage (`super::recovery`) leaves these files where they are.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::keepsake::write_durably;

/// The alarm's latched state (`alarm_task`'s `PersistedState`).
pub const ALARM_STATE: &str = "alarm-state.json";

/// One value in its own file in the data directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file `name` in the data directory `dir`.
    pub fn new(dir: &Path, name: &str) -> StateFile {
        StateFile {
            path: dir.join(name),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it has been written.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// The value; `Ok(None)` when the file was never written. An error says which file and
    /// why, never what it holds.
    pub fn read<T: DeserializeOwned>(&self) -> Result<Option<T>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: unreadable: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Replaces the value; durable when this returns (file and directory fsynced).
    pub fn write<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        write_durably(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_value_reads_back_and_a_torn_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::new(dir.path(), ALARM_STATE);
        assert_eq!(file.read::<Vec<String>>(), Ok(None), "never written");
        file.write(&vec!["chat/1".to_string()]).expect("write");
        assert_eq!(file.read::<Vec<String>>(), Ok(Some(vec!["chat/1".into()])));
        assert!(
            !dir.path().join("alarm-state.json.tmp").exists(),
            "no temporary file is left behind"
        );
        std::fs::write(file.path(), b"[\"chat/").expect("tear");
        let error = file.read::<Vec<String>>().expect_err("torn");
        assert!(error.contains("alarm-state.json: unreadable"), "{error}");
    }
}
