//! Memory of call keys already raised, so a redelivered call never alerts twice.
//!
//! Bounded: the oldest keys are forgotten past [`REMEMBERED_KEYS`]. Keys of active calls are
//! also held by the active-call map, so forgetting one here never lets an active call alert
//! again. The store's de-duplication covers anything older.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use super::persist::RememberedKey;

/// How many raised call keys are remembered (and persisted).
pub const REMEMBERED_KEYS: usize = 512;

#[derive(Debug, Clone, Default)]
pub(crate) struct RecentKeys {
    order: VecDeque<RememberedKey>,
    /// Every remembered key, and whether it is still only possible.
    possible: BTreeMap<String, bool>,
}

impl RecentKeys {
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.possible.contains_key(key)
    }

    /// Whether `key` was raised as a possible call and never confirmed.
    pub(crate) fn is_possible(&self, key: &str) -> bool {
        self.possible.get(key).copied().unwrap_or(false)
    }

    /// Remembers `key` (no-op if already known), forgetting the oldest past the bound.
    pub(crate) fn insert(&mut self, key: &str, at: DateTime<Utc>, possible: bool) {
        if self.possible.contains_key(key) {
            return;
        }
        self.possible.insert(key.to_owned(), possible);
        self.order.push_back(RememberedKey {
            key: key.to_owned(),
            at,
            possible,
        });
        while self.order.len() > REMEMBERED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.possible.remove(&old.key);
            }
        }
    }

    /// `key` is a real call now: it can no longer be upgraded.
    pub(crate) fn confirm(&mut self, key: &str) {
        if let Some(possible) = self.possible.get_mut(key) {
            *possible = false;
        }
        for remembered in self.order.iter_mut().filter(|k| k.key == key) {
            remembered.possible = false;
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<RememberedKey> {
        self.order.iter().cloned().collect()
    }

    pub(crate) fn from_remembered(keys: Vec<RememberedKey>) -> Self {
        let mut recent = Self::default();
        for k in keys {
            recent.insert(&k.key, k.at, k.possible);
        }
        recent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_possible_key_is_upgradable_once_and_survives_persistence() {
        let mut keys = RecentKeys::default();
        keys.insert("p", at(0), true);
        keys.insert("k", at(1), false);
        // Inserting again changes nothing, not even the level.
        keys.insert("p", at(2), false);
        assert!(keys.is_possible("p") && !keys.is_possible("k"));
        let restored = RecentKeys::from_remembered(keys.to_vec());
        assert!(restored.is_possible("p") && restored.contains("k"));
        keys.confirm("p");
        assert!(keys.contains("p") && !keys.is_possible("p"));
        let restored = RecentKeys::from_remembered(keys.to_vec());
        assert!(!restored.is_possible("p"), "the confirmation is persisted");
        assert!(!keys.is_possible("unknown"));
    }

    #[test]
    fn the_oldest_keys_are_forgotten_past_the_bound() {
        let mut keys = RecentKeys::default();
        for i in 0..=REMEMBERED_KEYS {
            keys.insert(&format!("k{i}"), at(0), i == 0);
        }
        assert!(!keys.contains("k0") && !keys.is_possible("k0"));
        assert!(keys.contains(&format!("k{REMEMBERED_KEYS}")));
        assert_eq!(keys.to_vec().len(), REMEMBERED_KEYS);
    }
}
