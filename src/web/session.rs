//! Logins: roles, the in-memory session table (token → user, role, CSRF token, expiry), and
//! the cookies that carry a session. Tokens are 256 random bits; a session ends after
//! `session_minutes` without a request, at logout, or when the process restarts.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "beacon_session";

/// What a user may do. An admin may do everything a guard may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Dashboard, acknowledge, call history.
    Guard,
    /// Also settings and users.
    Admin,
}

impl Role {
    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }

    /// The role in words.
    pub fn name(self) -> &'static str {
        match self {
            Role::Guard => "guard",
            Role::Admin => "admin",
        }
    }
}

/// One logged-in browser (or API client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

/// The live sessions.
pub struct Sessions {
    lifetime: Duration,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session; returns its token (the cookie value) and the session.
    pub fn create(&self, user: &str, role: Role, now: DateTime<Utc>) -> (String, Session) {
        let token = random_token();
        let session = Session {
            user: user.to_string(),
            role,
            csrf: random_token(),
            expires: now + self.lifetime,
        };
        let mut live = self.lock();
        live.retain(|_, s| s.expires > now);
        live.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The session of `token` when it is live; each use extends it.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut live = self.lock();
        match live.get_mut(token) {
            Some(session) if session.expires > now => {
                session.expires = now + self.lifetime;
                Some(session.clone())
            }
            Some(_) => {
                live.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Ends every session of `user` (password changed, user removed).
    pub fn remove_user(&self, user: &str) {
        self.lock().retain(|_, s| s.user != user);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave the map half-updated: keep using it.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // OpenSSL's generator failing is not recoverable; refuse to hand out guessable tokens.
        panic!("no random numbers from OpenSSL");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `Set-Cookie` value for `name=value`: HttpOnly, SameSite=Strict, Path=/, Secure when the
/// console is served over HTTPS. `max_age` `None` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let age = max_age.map(|d| d.num_seconds()).unwrap_or(0);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{secure}")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute)
    }

    #[test]
    fn a_session_lives_while_used_and_ends_after_its_idle_lifetime() {
        let sessions = Sessions::new(Duration::minutes(10));
        let (token, _) = sessions.create("ana", Role::Guard, at(0));
        assert!(sessions.get(&token, at(9)).is_some());
        assert!(sessions.get(&token, at(18)).is_some(), "use extends it");
        assert!(sessions.get(&token, at(29)).is_none(), "idle too long");
        assert!(sessions.get("forged", at(0)).is_none());
    }

    #[test]
    fn logout_and_user_removal_end_sessions() {
        let sessions = Sessions::new(Duration::minutes(10));
        let (a, _) = sessions.create("ana", Role::Admin, at(0));
        let (b, _) = sessions.create("bo", Role::Guard, at(0));
        sessions.remove(&a);
        assert!(sessions.get(&a, at(1)).is_none());
        sessions.remove_user("bo");
        assert!(sessions.get(&b, at(1)).is_none());
    }

    #[test]
    fn admin_includes_guard_but_not_the_reverse() {
        assert!(Role::Admin.allows(Role::Guard));
        assert!(!Role::Guard.allows(Role::Admin));
    }

    #[test]
    fn cookies_are_strict_http_only_and_secure_over_https() {
        let c = set_cookie("beacon_session", "t", Some(Duration::minutes(1)), true);
        assert_eq!(
            c,
            "beacon_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            cookie(Some("a=1; beacon_session=xyz; b=2"), "beacon_session"),
            Some("xyz")
        );
        assert_eq!(cookie(Some("beacon_sessionx=1"), "beacon_session"), None);
    }
}
