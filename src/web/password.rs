//! Console users and their passwords: Argon2id PHC strings (the `argon2` crate's defaults,
//! salt from OpenSSL), kept in the store's `secrets` tree under `web-user/<name>` with the
//! role. A hash never leaves this module except into the store.
//!
//! A login's check runs on tokio's blocking pool, at most [`CONCURRENT_CHECKS`] at a time:
//! each takes a core for tens of milliseconds and 19 MiB, and on the runtime's own threads a
//! burst of logins would stall everything else the console and the appliance do.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::session::Role;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

const PREFIX: &str = "web-user/";
/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// Password checks running at once; further logins wait their turn.
pub const CONCURRENT_CHECKS: usize = 2;

/// A user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    role: Role,
    hash: String,
}

/// Why a password or user was refused, in words for the page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("the password must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the two passwords differ")]
    Mismatch,
    #[error("a user name is 1 to 32 letters, digits, '.', '-' or '_'")]
    BadName,
    #[error("could not hash the password")]
    Hash,
    #[error("could not store the user: {0}")]
    Store(String),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        UserError::Store(e.to_string())
    }
}

/// Checks a new password and its confirmation.
pub fn check_new(password: &str, confirm: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(UserError::TooShort);
    }
    if password != confirm {
        return Err(UserError::Mismatch);
    }
    Ok(())
}

/// Whether `name` is an acceptable user name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Argon2id hash of `password` as a PHC string.
pub fn hash(password: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|_| UserError::Hash)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| UserError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| UserError::Hash)
}

/// Whether `password` matches the PHC string `hash` (false for an unreadable hash).
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The users in the store.
#[derive(Clone)]
pub struct Users {
    store: Store,
    checks: Arc<tokio::sync::Semaphore>,
}

impl Users {
    pub fn new(store: Store) -> Users {
        Users {
            store,
            checks: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CHECKS)),
        }
    }

    /// Creates or replaces `name` with `password` and `role`.
    pub fn set(&self, name: &str, password: &str, role: Role) -> Result<(), UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName);
        }
        let stored = StoredUser {
            role,
            hash: hash(password)?,
        };
        let json = serde_json::to_string(&stored).map_err(|_| UserError::Hash)?;
        self.store
            .set_secret(&format!("{PREFIX}{name}"), &Secret::new(json))?;
        self.store.flush()?;
        Ok(())
    }

    /// The role of `name` when `password` is right. Takes the same time whether or not the
    /// user exists (a dummy hash is checked). Runs on the blocking pool, behind the limit.
    pub async fn authenticate(&self, name: &str, password: &str) -> Option<Role> {
        let _turn = self.checks.acquire().await.ok()?;
        let users = self.clone();
        let name = name.to_string();
        let password = Secret::new(password.to_string());
        tokio::task::spawn_blocking(move || users.check(&name, password.expose()))
            .await
            .ok()
            .flatten()
    }

    /// [`Users::authenticate`] on the calling thread.
    fn check(&self, name: &str, password: &str) -> Option<Role> {
        let stored = self.get(name);
        let hash = match &stored {
            Some(user) => user.hash.as_str(),
            None => dummy_hash(),
        };
        let ok = verify(hash, password);
        stored.filter(|_| ok).map(|s| s.role)
    }

    /// The users and their roles, by name.
    pub fn list(&self) -> Vec<(String, Role)> {
        let mut users: Vec<(String, Role)> = self
            .store
            .secrets_with_prefix(PREFIX)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, value)| {
                let user: StoredUser = serde_json::from_str(value.expose()).ok()?;
                Some((name.trim_start_matches(PREFIX).to_string(), user.role))
            })
            .collect();
        users.sort();
        users
    }

    /// Whether an admin exists (if not, the console is in first-run mode).
    pub fn has_admin(&self) -> bool {
        self.list().iter().any(|(_, role)| *role == Role::Admin)
    }

    /// Removes `name`.
    pub fn remove(&self, name: &str) -> Result<(), UserError> {
        self.store.remove_secret(&format!("{PREFIX}{name}"))?;
        self.store.flush()?;
        Ok(())
    }

    fn get(&self, name: &str) -> Option<StoredUser> {
        if !valid_name(name) {
            return None;
        }
        let value = self.store.secret(&format!("{PREFIX}{name}")).ok()??;
        serde_json::from_str(value.expose()).ok()
    }
}

/// Hash of a password nobody has, checked for unknown users so timing does not tell.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&super::session::random_token()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterY"));
        assert!(!verify("not a hash", "x"));
        assert!(!verify(dummy_hash(), ""));
    }

    #[test]
    fn new_passwords_are_long_enough_and_confirmed() {
        assert_eq!(check_new("short", "short"), Err(UserError::TooShort));
        assert_eq!(
            check_new("long enough one", "long enough two"),
            Err(UserError::Mismatch)
        );
        assert_eq!(check_new("long enough", "long enough"), Ok(()));
    }

    #[tokio::test]
    async fn users_are_stored_with_their_role() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let users = Users::new(store);
        assert!(!users.has_admin());
        assert!(users.set("ana", "a long password", Role::Admin).is_ok());
        assert!(users.set("bo", "another password", Role::Guard).is_ok());
        assert_eq!(
            users.set("<b>", "another password", Role::Guard),
            Err(UserError::BadName)
        );
        assert!(users.has_admin());
        assert_eq!(
            users.authenticate("ana", "a long password").await,
            Some(Role::Admin)
        );
        assert_eq!(users.authenticate("ana", "wrong password").await, None);
        assert_eq!(users.authenticate("nobody", "a long password").await, None);
        assert_eq!(users.list().len(), 2);
    }

    /// On a runtime with one thread, a burst of password checks leaves it free: a task that
    /// counts while they run keeps counting. (Checked on the runtime thread, the count would
    /// stand still until the burst is over.)
    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_of_logins_leaves_the_runtime_free() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let users = Users::new(store);
        assert!(users.set("ana", "a long password", Role::Guard).is_ok());
        let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        let burst: Vec<_> = (0..6)
            .map(|_| {
                let users = users.clone();
                tokio::spawn(async move { users.authenticate("ana", "wrong password").await })
            })
            .collect();
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        for login in burst {
            assert_eq!(login.await.ok().flatten(), None);
        }
        let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
        counter.abort();
        assert!(
            during > 100,
            "the runtime ran {during} steps during the burst"
        );
    }
}
