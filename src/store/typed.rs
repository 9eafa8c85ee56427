//! `Typed<V>`: a sled tree whose values are JSON-encoded `V`, keyed by strings.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// A typed view of one tree.
pub struct Typed<V> {
    tree: sled::Tree,
    name: &'static str,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for Typed<V> {
    fn clone(&self) -> Self {
        Typed {
            tree: self.tree.clone(),
            name: self.name,
            _value: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> Typed<V> {
    pub(super) fn new(tree: sled::Tree, name: &'static str) -> Self {
        Typed {
            tree,
            name,
            _value: PhantomData,
        }
    }

    /// The same tree with its values read as `W`: the layer that owns a value type reads a
    /// tree the store keeps untyped (the store knows no domain types).
    pub fn read_as<W: Serialize + DeserializeOwned>(&self) -> Typed<W> {
        Typed::new(self.tree.clone(), self.name)
    }

    pub(super) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<V>, StoreError> {
        self.tree
            .get(key)?
            .map(|bytes| self.decode(key, &bytes))
            .transpose()
    }

    /// Sets `key` to `value`.
    pub fn insert(&self, key: &str, value: &V) -> Result<(), StoreError> {
        self.insert_as(key, value)
    }

    /// Sets `key` to any value that reads back as a `V`, serialized straight to JSON bytes
    /// (no `V` built on the way: the alarm's state goes into the settings tree this way at
    /// every change, without a `serde_json::Value` tree made and dropped each time).
    pub fn insert_as<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            tree: self.name.into(),
            key: key.into(),
            reason: e.to_string(),
        })?;
        self.tree.insert(key, bytes)?;
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.remove(key)?.is_some())
    }

    /// The value under `key`, waiting up to `within` for another task to write it (sled's
    /// subscription on the key, no polling); `None` when it was not written in time. The
    /// subscription lives only while this waits and is drained as events come: sled holds up
    /// to 1024 undelivered events per subscriber before a writer would wait on it.
    pub async fn wait_for(
        &self,
        key: &str,
        within: std::time::Duration,
    ) -> Result<Option<V>, StoreError> {
        // Subscribe before looking, so a write between the look and the wait is not missed.
        let mut written = self.tree.watch_prefix(key);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(value) = self.get(key)? {
                return Ok(Some(value));
            }
            match tokio::time::timeout_at(deadline, &mut written).await {
                // A write under the prefix (this key or a longer one): look again.
                Ok(Some(_)) => continue,
                // Time is up, or the tree is gone: one last look.
                Ok(None) | Err(_) => return self.get(key),
            }
        }
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Number of entries (walks the tree).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// All entries in key order; a value that does not decode is an `Err` item, not a stop.
    /// A storage error ends the walk and is logged (the caller sees fewer entries, never a
    /// silent success: the next write to the same store reports the same fault).
    pub fn iter(&self) -> impl Iterator<Item = (String, Result<V, StoreError>)> + '_ {
        self.tree.iter().map_while(move |kv| self.entry(kv))
    }

    /// All entries in reverse key order (the newest first, for trees keyed by
    /// [`super::Store::next_id`]); otherwise as [`Typed::iter`].
    pub fn iter_rev(&self) -> impl Iterator<Item = (String, Result<V, StoreError>)> + '_ {
        self.tree.iter().rev().map_while(move |kv| self.entry(kv))
    }

    /// One entry of a walk: `None` (logged) ends it at a storage error.
    fn entry(
        &self,
        kv: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Option<(String, Result<V, StoreError>)> {
        match kv {
            Ok((k, v)) => {
                let key = String::from_utf8_lossy(&k).into_owned();
                let value = self.decode(&key, &v);
                Some((key, value))
            }
            Err(e) => {
                tracing::error!(tree = self.name, error = %e, "store read failed");
                None
            }
        }
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<V, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            tree: self.name.into(),
            key: key.into(),
            reason: e.to_string(),
        })
    }
}
