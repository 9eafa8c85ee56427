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
        self.tree.iter().map_while(move |kv| match kv {
            Ok((k, v)) => {
                let key = String::from_utf8_lossy(&k).into_owned();
                let value = self.decode(&key, &v);
                Some((key, value))
            }
            Err(e) => {
                tracing::error!(tree = self.name, error = %e, "store read failed");
                None
            }
        })
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<V, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            tree: self.name.into(),
            key: key.into(),
            reason: e.to_string(),
        })
    }
}
