//! API tokens for machines (`Authorization: Bearer <token>` on `/api/…` and `/metrics`):
//! an admin creates one on the settings page, sees it once, and can revoke it. Only the
//! SHA-256 of a token is stored (a token is 256 random bits, so a plain hash is enough), and
//! it is compared in constant time. A token acts with its role (guard: read and acknowledge;
//! admin: the same on the API, which has no settings) and never opens a page.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::session::{random_token, Role};
use crate::store::{Store, StoreError};

const PREFIX: &str = "api-token/";
/// What every token starts with, so a leaked one is recognisable in a scan.
pub const TOKEN_PREFIX: &str = "beacon_";

/// A stored token: its name, role and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token.
    sha256: String,
    pub created: DateTime<Utc>,
    pub created_by: String,
}

/// Why a token could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token name is 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("a token named {0} exists; revoke it first")]
    Exists(String),
    #[error("no token is named {0}")]
    Unknown(String),
    #[error("the store could not save the token: {0}")]
    Store(String),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        TokenError::Store(e.to_string())
    }
}

/// The API tokens in the store.
#[derive(Clone)]
pub struct ApiTokens {
    store: Store,
}

impl ApiTokens {
    pub fn new(store: Store) -> ApiTokens {
        ApiTokens { store }
    }

    /// Makes a token; returns it (shown once, never stored).
    pub fn create(
        &self,
        name: &str,
        role: Role,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        if !crate::config::is_name(name, 64) {
            return Err(TokenError::BadName);
        }
        let key = format!("{PREFIX}{name}");
        if self.store.settings.contains(&key)? {
            return Err(TokenError::Exists(name.to_string()));
        }
        let token = format!("{TOKEN_PREFIX}{}", random_token());
        let stored = StoredToken {
            name: name.to_string(),
            role,
            sha256: digest(&token),
            created: now,
            created_by: by.to_string(),
        };
        self.store
            .settings
            .insert(&key, &serde_json::json!(stored))?;
        self.store.flush()?;
        Ok(token)
    }

    /// Revokes the token `name`.
    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        if !self.store.settings.remove(&format!("{PREFIX}{name}"))? {
            return Err(TokenError::Unknown(name.to_string()));
        }
        self.store.flush()?;
        Ok(())
    }

    /// Every token (name, role, when, by whom), by name.
    pub fn list(&self) -> Vec<StoredToken> {
        let mut tokens: Vec<StoredToken> = self
            .store
            .settings
            .iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .filter_map(|(_, v)| v.ok())
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        tokens
    }

    /// The token `presented` belongs to, if any. Every stored hash is compared, in constant
    /// time, so the answer's timing says nothing about which one was close.
    pub fn check(&self, presented: &str) -> Option<StoredToken> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
            return None;
        }
        let wanted = digest(presented);
        let mut found = None;
        for token in self.list() {
            if token.sha256.len() == wanted.len()
                && openssl::memcmp::eq(token.sha256.as_bytes(), wanted.as_bytes())
            {
                found = Some(token);
            }
        }
        found
    }
}

fn digest(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_until_revoked_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tokens = ApiTokens::new(store.clone());
        let token = tokens
            .create("grafana", Role::Guard, "chief", Utc::now())
            .unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(tokens.check(&token).map(|t| t.role), Some(Role::Guard));
        assert!(tokens.check(&format!("{token}x")).is_none());
        assert!(tokens.check("beacon_").is_none());
        let stored = store.settings.get("api-token/grafana").unwrap().unwrap();
        assert!(!stored.to_string().contains(&token[TOKEN_PREFIX.len()..]));
        assert_eq!(
            tokens.create("grafana", Role::Admin, "chief", Utc::now()),
            Err(TokenError::Exists("grafana".into()))
        );
        assert_eq!(
            tokens.create("bad name", Role::Guard, "chief", Utc::now()),
            Err(TokenError::BadName)
        );
        tokens.revoke("grafana").unwrap();
        assert!(tokens.check(&token).is_none());
        assert_eq!(
            tokens.revoke("grafana"),
            Err(TokenError::Unknown("grafana".into()))
        );
    }
}
