//! Memory of call keys already raised, so a redelivered call never alerts twice.
//!
//! Bounded: the oldest keys are forgotten past [`REMEMBERED_KEYS`]. Keys of active calls are
//! also held by the active-call map, so forgetting one here never lets an active call alert
//! again. The store's de-duplication covers anything older.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Utc};

use super::persist::RememberedKey;

/// How many raised call keys are remembered (and persisted).
pub const REMEMBERED_KEYS: usize = 512;

#[derive(Debug, Clone, Default)]
pub(crate) struct RecentKeys {
    order: VecDeque<RememberedKey>,
    set: BTreeSet<String>,
}

impl RecentKeys {
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Remembers `key` (no-op if already known), forgetting the oldest past the bound.
    pub(crate) fn insert(&mut self, key: &str, at: DateTime<Utc>) {
        if !self.set.insert(key.to_owned()) {
            return;
        }
        self.order.push_back(RememberedKey {
            key: key.to_owned(),
            at,
        });
        while self.order.len() > REMEMBERED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old.key);
            }
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<RememberedKey> {
        self.order.iter().cloned().collect()
    }

    pub(crate) fn from_remembered(keys: Vec<RememberedKey>) -> Self {
        let mut recent = Self::default();
        for k in keys {
            recent.insert(&k.key, k.at);
        }
        recent
    }
}
