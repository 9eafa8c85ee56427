//! The appliance's durable state on sled: one database, one tree per concern, JSON values.
//!
//! Trees: `seen` (de-duplication keys), `inbox` (notifications accepted from the hub and not yet
//! fully handled — the Kafka offset is committed once a notification is here *and flushed*),
//! `rejected` (records and items refused, with the reason), `calls`, `messages`, `outbox`,
//! `audit`, `settings` (including the schema version) and `secrets`. The data directory is
//! created 0700 and every file in it is 0600.

pub mod keepsake;
mod recovery;
mod typed;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

pub use recovery::{Recovery, RecoveryAction};
pub use typed::Typed;

use keepsake::{Keeper, Keepsake, KEPT_SETTINGS};

use crate::secret::Secret;

/// Version of the layout of keys and values. Bumped with a migration when it changes.
pub const SCHEMA_VERSION: u64 = 1;

const SCHEMA_KEY: &str = "schema_version";
/// sled's page cache (its default is 1 GiB); the store holds megabytes, not gigabytes.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Something went wrong with the store. Never contains a stored value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {path}: {reason}")]
    Directory { path: PathBuf, reason: String },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: a value under '{key}' in tree '{tree}' is unreadable: {reason}")]
    Corrupt {
        tree: String,
        key: String,
        reason: String,
    },
    #[error("store: the data was written by a newer Beacon (schema {found}, this one knows {SCHEMA_VERSION}); install the newer version again")]
    NewerSchema { found: u64 },
}

/// First sighting of a de-duplication key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Seen {
    pub at: DateTime<Utc>,
}

/// A record or item that was refused, kept for inspection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub at: DateTime<Utc>,
    /// Where it came from (`topic/partition@offset`, `replay:file:line`).
    pub position: Option<String>,
    pub reason: String,
    /// The record body, lossily decoded and cut at 64 KiB.
    pub body: String,
}

/// The open store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    dir: PathBuf,
    pub seen: Typed<Seen>,
    /// Raw here; `ingest::inbox` reads it as inbox entries (the store knows no domain types).
    pub inbox: Typed<serde_json::Value>,
    pub rejected: Typed<Rejected>,
    pub calls: Typed<serde_json::Value>,
    pub messages: Typed<serde_json::Value>,
    pub outbox: Typed<serde_json::Value>,
    pub audit: Typed<serde_json::Value>,
    pub settings: Typed<serde_json::Value>,
    secrets: sled::Tree,
    keeper: std::sync::Arc<Keeper>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_reporting_new(dir).map(|(store, _)| store)
    }

    /// [`Store::open`], and whether the store was new (it had no schema version yet).
    fn open_reporting_new(dir: &Path) -> Result<(Store, bool), StoreError> {
        let dir_error = |reason: String| StoreError::Directory {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| dir_error(e.to_string()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| dir_error(e.to_string()))?;
        // sled's default page cache is 1 GiB: a quarter of a Pi 4's memory for a store of a
        // few megabytes (and, over the service's memory limit, an error line at every start).
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(CACHE_BYTES)
            .open()?;
        restrict(&dir.join("db")).map_err(|e| dir_error(e.to_string()))?;
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            seen: Typed::new(tree("seen")?, "seen"),
            inbox: Typed::new(tree("inbox")?, "inbox"),
            rejected: Typed::new(tree("rejected")?, "rejected"),
            calls: Typed::new(tree("calls")?, "calls"),
            messages: Typed::new(tree("messages")?, "messages"),
            outbox: Typed::new(tree("outbox")?, "outbox"),
            audit: Typed::new(tree("audit")?, "audit"),
            settings: Typed::new(tree("settings")?, "settings"),
            secrets: tree("secrets")?,
            keeper: std::sync::Arc::new(Keeper::new(dir)),
            dir: dir.to_path_buf(),
            db,
        };
        let new = match store.settings.get(SCHEMA_KEY)?.and_then(|v| v.as_u64()) {
            Some(found) if found > SCHEMA_VERSION => return Err(StoreError::NewerSchema { found }),
            Some(_) => false,
            None => {
                store
                    .settings
                    .insert(SCHEMA_KEY, &serde_json::json!(SCHEMA_VERSION))?;
                // Not `flush`: that would refresh the keepsake from a store that may have
                // opened empty after damage, before recovery has read the keepsake.
                store.db.flush()?;
                true
            }
        };
        Ok((store, new))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes everything so far to disk (fsync). Returns when it is durable. Then refreshes
    /// the keepsake (see [`keepsake`]) when a kept setting changed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        let current = self.keepsake()?;
        self.keeper
            .refresh(current, Utc::now())
            .map_err(|e| StoreError::Directory {
                path: self.dir.join(keepsake::FILE_NAME),
                reason: e.to_string(),
            })?;
        Ok(())
    }

    /// What the keepsake should hold now.
    fn keepsake(&self) -> Result<Keepsake, StoreError> {
        let mut kept = Keepsake::default();
        for name in KEPT_SETTINGS {
            if let Some(value) = self.settings.get(name)? {
                kept.settings.insert(name.to_string(), value);
            }
        }
        for name in self.secrets.iter().keys() {
            kept.secrets_set
                .push(String::from_utf8_lossy(&name?).into_owned());
        }
        Ok(kept)
    }

    /// A unique, increasing id (for audit and rejected keys).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Keeps a refused record or item.
    pub fn reject(
        &self,
        at: DateTime<Utc>,
        position: Option<&str>,
        reason: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        const LIMIT: usize = 64 * 1024;
        let body = String::from_utf8_lossy(&body[..body.len().min(LIMIT)]).into_owned();
        let key = format!("{:020}", self.next_id()?);
        self.rejected.insert(
            &key,
            &Rejected {
                at,
                position: position.map(str::to_string),
                reason: reason.to_string(),
                body,
            },
        )
    }

    /// Atomically marks `key` as seen and puts `entry` in the inbox, unless `key` was seen
    /// before. Returns whether it was new.
    pub fn admit<E: Serialize>(
        &self,
        key: &str,
        at: DateTime<Utc>,
        entry: &E,
    ) -> Result<bool, StoreError> {
        let seen = serde_json::to_vec(&Seen { at }).map_err(|e| self.corrupt("seen", key, e))?;
        let entry = serde_json::to_vec(entry).map_err(|e| self.corrupt("inbox", key, e))?;
        let result = (self.seen.tree(), self.inbox.tree()).transaction(|(seen_tx, inbox_tx)| {
            if seen_tx.get(key)?.is_some() {
                return Ok(false);
            }
            seen_tx.insert(key, seen.as_slice())?;
            inbox_tx.insert(key, entry.as_slice())?;
            Ok::<bool, ConflictableTransactionError<()>>(true)
        });
        match result {
            Ok(new) => Ok(new),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(TransactionError::Abort(())) => Ok(false),
        }
    }

    /// Forgets de-duplication keys first seen before `cutoff`. Returns how many.
    pub fn prune_seen(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (key, seen) in self.seen.iter() {
            if seen?.at < cutoff {
                self.seen.remove(&key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A secret by name.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, StoreError> {
        Ok(self
            .secrets
            .get(name)?
            .map(|v| Secret::new(String::from_utf8_lossy(&v))))
    }

    /// Stores a secret.
    pub fn set_secret(&self, name: &str, value: &Secret) -> Result<(), StoreError> {
        self.secrets.insert(name, value.expose().as_bytes())?;
        Ok(())
    }

    /// Removes a secret.
    pub fn remove_secret(&self, name: &str) -> Result<(), StoreError> {
        self.secrets.remove(name)?;
        Ok(())
    }

    /// All secrets whose name starts with `prefix`, as (name, value).
    pub fn secrets_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Secret)>, StoreError> {
        self.secrets
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    Secret::new(String::from_utf8_lossy(&v)),
                ))
            })
            .collect()
    }

    fn corrupt(&self, tree: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            tree: tree.into(),
            key: key.into(),
            reason: e.to_string(),
        }
    }
}

/// Makes every file below `path` 0600 and every directory 0700 (files made by an earlier
/// version, or before the umask was set).
fn restrict(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(path)? {
            restrict(&entry?.path())?;
        }
    } else if meta.is_file() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Store {
        match Store::open(dir) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn directory_and_files_are_private() {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string());
        let tmp = tmp
            .as_ref()
            .map(|t| t.path().join("data"))
            .unwrap_or_default();
        let store = open(&tmp);
        let _ = store.set_secret("x", &Secret::new("y"));
        let _ = store.flush();
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(&tmp), 0o700);
        let mut files = 0;
        let mut stack = vec![tmp.join("db")];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                stack.extend(
                    std::fs::read_dir(&p)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else {
                files += 1;
                assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
            }
        }
        assert!(files > 0);
    }

    #[test]
    fn schema_version_is_written_and_a_newer_one_refused() {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default();
        {
            let store = open(&dir);
            assert_eq!(
                store.settings.get(SCHEMA_KEY).ok().flatten(),
                Some(serde_json::json!(SCHEMA_VERSION))
            );
            let _ = store
                .settings
                .insert(SCHEMA_KEY, &serde_json::json!(SCHEMA_VERSION + 1));
            let _ = store.flush();
        }
        assert!(matches!(
            Store::open(&dir),
            Err(StoreError::NewerSchema { found }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn admit_is_once_per_key_and_survives_reopen() {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default();
        let entry = serde_json::json!({"notification": "lifecycle", "subscription": "sub"});
        let now = Utc::now();
        {
            let store = open(&dir);
            assert!(store.admit("k1", now, &entry).unwrap_or(false));
            assert!(!store.admit("k1", now, &entry).unwrap_or(true));
            let _ = store.flush();
        }
        let store = open(&dir);
        assert!(!store.admit("k1", now, &entry).unwrap_or(true));
        assert_eq!(store.inbox.len(), 1);
        assert_eq!(
            store.prune_seen(now + chrono::Duration::seconds(1)).ok(),
            Some(1)
        );
        assert!(store.admit("k1", now, &entry).unwrap_or(false));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wait_for_wakes_at_the_write_of_its_key_not_at_its_deadline() {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default();
        let store = open(&dir);
        let writer = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            // A longer key under the same prefix first: the wait must go on past it.
            let _ = writer
                .settings
                .insert("call/10", &serde_json::json!("other"));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let _ = writer
                .settings
                .insert("call/1", &serde_json::json!("this one"));
        });
        let started = std::time::Instant::now();
        let got = store
            .settings
            .wait_for("call/1", std::time::Duration::from_secs(30))
            .await;
        assert_eq!(got.ok().flatten(), Some(serde_json::json!("this one")));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "woke at the write, not at the 30 s deadline: {:?}",
            started.elapsed()
        );
        assert_eq!(
            store
                .settings
                .wait_for("never", std::time::Duration::from_millis(100))
                .await
                .ok(),
            Some(None),
            "a key never written is None once the time is up"
        );
    }
}
