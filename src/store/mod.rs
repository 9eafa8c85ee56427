//! The appliance's durable state on sled: one database, one tree per concern, JSON values.
//!
//! Trees: `seen` (de-duplication keys), `inbox` (notifications accepted from the hub and not yet
//! fully handled — the Kafka offset is committed once a notification is here *and flushed*),
//! `rejected` (records and items refused, with the reason), `unverified` (records that could
//! not be told the fleet's or a stranger's, kept whole to be read again), `calls`, `messages`, `outbox`,
//! `audit`, `settings` (including the schema version), `secrets` and `floor_plans` (raw bytes:
//! the console's floor-plan images and their descriptions). The data directory is created 0700
//! and every file in it is 0600.

mod blobs;
mod durable;
pub mod keepsake;
mod recovery;
mod state_file;
mod typed;

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

pub use blobs::Blobs;
pub use recovery::{Recovery, RecoveryAction};
pub use state_file::{StateFile, ALARM_STATE};
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

/// A record that could not be verified (the fleet's secrets were lost with a damaged store),
/// kept whole until it can be read again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unverified {
    pub at: DateTime<Utc>,
    /// Where it came from (`topic/partition@offset`).
    pub position: String,
    /// The record body as it arrived (UTF-8: Graph's notifications are JSON).
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
    pub unverified: Typed<Unverified>,
    pub calls: Typed<serde_json::Value>,
    /// Another report's key of a call → the key its record is kept under (one incident
    /// reported by two sources).
    pub call_aliases: Typed<String>,
    pub messages: Typed<serde_json::Value>,
    pub outbox: Typed<serde_json::Value>,
    pub audit: Typed<serde_json::Value>,
    pub settings: Typed<serde_json::Value>,
    /// Raw here; `web::floor_plan` reads it (images are not JSON).
    pub floor_plans: Blobs,
    secrets: sled::Tree,
    keeper: std::sync::Arc<Keeper>,
    /// sled's files made durable by [`Store::flush`] (see [`durable`]).
    durability: std::sync::Arc<durable::Durability>,
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
        let durability = durable::Durability::open(&dir.join("db"))
            .map_err(|e| dir_error(format!("cannot open the store's log to sync it: {e}")))?;
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            seen: Typed::new(tree("seen")?, "seen"),
            inbox: Typed::new(tree("inbox")?, "inbox"),
            rejected: Typed::new(tree("rejected")?, "rejected"),
            unverified: Typed::new(tree("unverified")?, "unverified"),
            calls: Typed::new(tree("calls")?, "calls"),
            call_aliases: Typed::new(tree("call_aliases")?, "call_aliases"),
            messages: Typed::new(tree("messages")?, "messages"),
            outbox: Typed::new(tree("outbox")?, "outbox"),
            audit: Typed::new(tree("audit")?, "audit"),
            settings: Typed::new(tree("settings")?, "settings"),
            floor_plans: Blobs::new(tree("floor_plans")?),
            secrets: tree("secrets")?,
            keeper: std::sync::Arc::new(Keeper::new(dir)),
            durability: std::sync::Arc::new(durability),
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
                store
                    .durability
                    .sync()
                    .map_err(|e| dir_error(e.to_string()))?;
                true
            }
        };
        Ok((store, new))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value kept in the file `name` beside the store (see [`StateFile`]).
    pub fn state_file(&self, name: &str) -> StateFile {
        StateFile::new(&self.dir, name)
    }

    /// Writes everything so far to disk (fsync). Returns when it is durable. Then refreshes
    /// the keepsake (see [`keepsake`]) when a kept setting changed: what it would hold is
    /// compared as the stored bytes first, so a flush that changed none of them (most: every
    /// batch of notifications, every call record) decodes nothing and writes nothing more.
    ///
    /// sled 0.34's flush alone does not make what it wrote durable on Linux (its log's
    /// metadata, its blob files, its snapshot renames): [`durable::Durability::sync`] does,
    /// right after it. (The power-cut campaign lost committed emergencies with sled's flush
    /// alone and with only the log fsynced: see image/README.md, Power cuts.)
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.durability.sync().map_err(|e| StoreError::Directory {
            path: self.dir.join("db"),
            reason: format!("fsync of the store's files failed: {e}"),
        })?;
        // Held while the keepsake is read and written: the newest content is written last.
        let mut last = self.keeper.fingerprint();
        let fingerprint = self.kept_fingerprint()?;
        if last.as_ref() == Some(&fingerprint) {
            return Ok(());
        }
        let current = self.keepsake()?;
        self.keeper
            .refresh(current, Utc::now())
            .map_err(|e| StoreError::Directory {
                path: self.dir.join(keepsake::FILE_NAME),
                reason: e.to_string(),
            })?;
        let secrets = self.kept_secrets()?;
        self.keeper
            .refresh_secrets(secrets)
            .map_err(|e| StoreError::Directory {
                path: self.dir.join(keepsake::SECRETS_FILE_NAME),
                reason: e.to_string(),
            })?;
        *last = Some(fingerprint);
        Ok(())
    }

    /// The stored bytes of everything the keepsakes hold (kept settings, secret names, kept
    /// secrets' values), length-prefixed: equal bytes, equal keepsakes.
    fn kept_fingerprint(&self) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        let mut push = |part: &[u8]| {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        };
        for name in KEPT_SETTINGS {
            match self.settings.tree().get(name)? {
                Some(value) => push(&value),
                None => push(b"-"),
            }
        }
        for entry in self.secrets.iter() {
            let (name, value) = entry?;
            push(&name);
            if keepsake::is_kept_secret(&String::from_utf8_lossy(&name)) {
                push(&value);
            }
        }
        Ok(bytes)
    }

    /// The values of the secrets kept beside the store ([`keepsake::KEPT_SECRETS`]).
    fn kept_secrets(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut kept = BTreeMap::new();
        for entry in self.secrets.iter() {
            let (name, value) = entry?;
            let name = String::from_utf8_lossy(&name).into_owned();
            if keepsake::is_kept_secret(&name) {
                kept.insert(name, String::from_utf8_lossy(&value).into_owned());
            }
        }
        Ok(kept)
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

    /// Keeps a record that could not be verified, whole, to be read again when the fleet's
    /// secrets are back (see `ingest::Ingest::reread_unverified`). Records larger than an
    /// Event Hub message may be (1 MiB) are not records of Graph and are refused instead.
    pub fn keep_unverified(
        &self,
        at: DateTime<Utc>,
        position: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        const LIMIT: usize = 1024 * 1024;
        if body.len() > LIMIT {
            return self.reject(
                at,
                Some(position),
                "unverifiable and larger than 1 MiB",
                body,
            );
        }
        let key = format!("{:020}", self.next_id()?);
        self.unverified.insert(
            &key,
            &Unverified {
                at,
                position: position.to_string(),
                body: String::from_utf8_lossy(body).into_owned(),
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

    /// Writes the alarm's audit records, each under a new id, in one batch. (The alarm's state
    /// is not in sled: see [`StateFile`].)
    pub fn record_audits<A: Serialize>(&self, audits: &[A]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for audit in audits {
            let key = format!("{:020}", self.next_id()?);
            let bytes = serde_json::to_vec(audit).map_err(|e| self.corrupt("audit", &key, e))?;
            batch.insert(key.as_bytes(), bytes);
        }
        self.audit.tree().apply_batch(batch)?;
        Ok(())
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
    fn the_keepsake_follows_kept_settings_and_secrets_and_only_them() {
        let tmp = tempfile::tempdir().expect("dir");
        let store = open(tmp.path());
        let kept = || {
            Keepsake::read(tmp.path())
                .expect("readable")
                .unwrap_or_default()
        };
        store
            .settings
            .insert("wizard/oauth", &serde_json::json!({"tenant": "one"}))
            .expect("state");
        store.flush().expect("flush");
        let first = kept();
        assert_eq!(
            first.settings.get("wizard/oauth"),
            Some(&serde_json::json!({"tenant": "one"}))
        );
        // Writes the keepsake holds nothing of: flushed, the file is left as it was.
        store
            .calls
            .insert("call-1", &serde_json::json!({"caller": "x"}))
            .expect("call");
        store.flush().expect("flush");
        assert_eq!(kept().saved_at, first.saved_at, "rewritten for nothing");
        // A kept setting changes: the keepsake follows at the next flush.
        store
            .settings
            .insert("wizard/oauth", &serde_json::json!({"tenant": "two"}))
            .expect("state");
        store.flush().expect("flush");
        assert_eq!(
            kept().settings.get("wizard/oauth"),
            Some(&serde_json::json!({"tenant": "two"}))
        );
        // So does a kept secret, and the names of the others.
        store
            .set_secret("fleet/secrets", &Secret::new("fleet-state"))
            .expect("secret");
        store
            .set_secret("wizard/graph.client_secret", &Secret::new("s"))
            .expect("secret");
        store.flush().expect("flush");
        let secrets = keepsake::read_secrets(tmp.path()).expect("secrets");
        assert_eq!(
            secrets.get("fleet/secrets").map(String::as_str),
            Some("fleet-state")
        );
        assert!(!secrets.contains_key("wizard/graph.client_secret"));
        assert!(kept()
            .secrets_set
            .contains(&"wizard/graph.client_secret".to_string()));
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
