//! `Blobs`: a sled tree of raw bytes keyed by strings, for values that are not JSON (uploaded
//! images) kept beside the JSON that describes them; several keys are written in one atomic
//! batch, so a reader never sees a description without its bytes.

use super::StoreError;

/// A raw view of one tree.
#[derive(Clone)]
pub struct Blobs {
    tree: sled::Tree,
}

impl Blobs {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Blobs { tree }
    }

    /// The bytes under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    /// Every (key, bytes) whose key starts with `prefix`, in key order.
    pub fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) every key of `changes` at once.
    pub fn write(&self, changes: &[(&str, Option<&[u8]>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in changes {
            match value {
                Some(bytes) => batch.insert(*key, *bytes),
                None => batch.remove(*key),
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sets_and_removes_together_and_prefixes_list() -> Result<(), StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let blobs = Blobs::new(db.open_tree("t")?);
        blobs.write(&[("plan/1", Some(b"{}")), ("image/1", Some(&[0, 255]))])?;
        assert_eq!(blobs.get("image/1")?, Some(vec![0, 255]));
        assert_eq!(
            blobs.with_prefix("plan/")?,
            vec![("plan/1".to_string(), b"{}".to_vec())]
        );
        blobs.write(&[("plan/1", None), ("image/1", None)])?;
        assert!(blobs.get("plan/1")?.is_none() && blobs.get("image/1")?.is_none());
        Ok(())
    }
}
