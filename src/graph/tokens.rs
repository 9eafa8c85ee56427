//! The token keeper: holds the service account's access token, refreshes it at 75 % of its
//! lifetime or after a 401, persists each rotated refresh token (and flushes) *before* the new
//! access token is used, and turns `invalid_grant` and friends into a "sign-in required" state
//! with a sentence — not a retry loop. Runs the device-code sign-in on request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{watch, Mutex};

use super::auth::{self, AuthError, ClientMode, DeviceCodePrompt, OAuthSettings, Tokens};
use crate::secret::Secret;
use crate::store::Store;

const REFRESH_TOKEN: &str = "graph/refresh-token";
const MODE_KEY: &str = "graph/client-mode";
/// Backoff after a transient refresh failure.
const RETRY: Duration = Duration::from_secs(30);

/// What the web page, display and health supervisor show about sign-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthStatus {
    /// No refresh token: nobody has signed the service account in yet.
    SignedOut,
    /// A device-code sign-in is waiting for a person.
    SigningIn { prompt: DeviceCodePrompt },
    /// Tokens are valid.
    SignedIn {
        access_expires_at: DateTime<Utc>,
        refresh_at: DateTime<Utc>,
    },
    /// A person must sign in again (revoked, expired, MFA, Conditional Access…).
    SignInRequired {
        sentence: String,
        since: DateTime<Utc>,
    },
    /// Refresh failed for a passing reason; retrying.
    Retrying {
        sentence: String,
        since: DateTime<Utc>,
    },
}

struct Inner {
    tokens: Option<Tokens>,
    mode: ClientMode,
    /// Set when Microsoft refused the refresh token: no further attempts until a sign-in.
    refused: Option<AuthError>,
}

/// See the module docs. Shared as `Arc<TokenKeeper>`.
pub struct TokenKeeper {
    settings: OAuthSettings,
    http: reqwest::Client,
    store: Store,
    inner: Mutex<Inner>,
    status: watch::Sender<AuthStatus>,
}

impl TokenKeeper {
    /// Loads the remembered client mode and whether a refresh token exists.
    pub fn new(settings: OAuthSettings, store: Store) -> Result<Arc<TokenKeeper>, AuthError> {
        let http = auth::http_client()?;
        let mode = store
            .settings
            .get(MODE_KEY)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let signed_in = matches!(store.secret(REFRESH_TOKEN), Ok(Some(_)));
        let initial = if signed_in {
            AuthStatus::Retrying {
                sentence: "starting: the access token has not been fetched yet".into(),
                since: Utc::now(),
            }
        } else {
            AuthStatus::SignedOut
        };
        Ok(Arc::new(TokenKeeper {
            settings,
            http,
            store,
            inner: Mutex::new(Inner {
                tokens: None,
                mode,
                refused: None,
            }),
            status: watch::channel(initial).0,
        }))
    }

    /// Follows the sign-in state.
    pub fn status(&self) -> watch::Receiver<AuthStatus> {
        self.status.subscribe()
    }

    /// A valid access token, refreshed first when due.
    pub async fn access_token(&self) -> Result<Secret, AuthError> {
        let mut inner = self.inner.lock().await;
        let now = Utc::now();
        if let Some(tokens) = &inner.tokens {
            if now < tokens.refresh_at() {
                return Ok(tokens.access_token.clone());
            }
        }
        self.refresh_locked(&mut inner, now).await
    }

    /// Graph answered 401 to `used`: refresh before the next call (unless already done).
    pub async fn reject(&self, used: &Secret) {
        let mut inner = self.inner.lock().await;
        if let Some(tokens) = &mut inner.tokens {
            if &tokens.access_token == used {
                let now = Utc::now();
                tokens.issued_at = now - chrono::Duration::seconds(2);
                tokens.expires_at = now;
            }
        }
    }

    /// When the background loop should next refresh.
    pub async fn next_refresh(&self) -> Option<DateTime<Utc>> {
        let inner = self.inner.lock().await;
        if inner.refused.is_some() {
            return None;
        }
        Some(
            inner
                .tokens
                .as_ref()
                .map_or_else(Utc::now, Tokens::refresh_at),
        )
    }

    async fn refresh_locked(
        &self,
        inner: &mut Inner,
        now: DateTime<Utc>,
    ) -> Result<Secret, AuthError> {
        if let Some(refused) = &inner.refused {
            return Err(refused.clone());
        }
        let refresh_token = match self.store.secret(REFRESH_TOKEN) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(AuthError::SignInRequired {
                    code: None,
                    sentence: "The service account is not signed in yet.".into(),
                })
            }
            Err(e) => return Err(AuthError::Transient(e.to_string())),
        };
        match auth::refresh(&self.http, &self.settings, &refresh_token, inner.mode).await {
            Ok((tokens, mode)) => {
                self.persist(&tokens, mode)?;
                inner.mode = mode;
                let access = tokens.access_token.clone();
                self.status.send_replace(AuthStatus::SignedIn {
                    access_expires_at: tokens.expires_at,
                    refresh_at: tokens.refresh_at(),
                });
                tracing::info!(expires_at = %tokens.expires_at, "access token refreshed");
                inner.tokens = Some(tokens);
                Ok(access)
            }
            Err(e) => {
                let still_valid = inner
                    .tokens
                    .as_ref()
                    .filter(|t| now + chrono::Duration::seconds(60) < t.expires_at)
                    .map(|t| t.access_token.clone());
                if matches!(e, AuthError::Transient(_)) {
                    tracing::warn!(error = %e, "token refresh failed; will retry");
                    self.status.send_replace(AuthStatus::Retrying {
                        sentence: e.to_string(),
                        since: now,
                    });
                    return still_valid.ok_or(e);
                }
                tracing::error!(error = %e, "sign-in required");
                self.status.send_replace(AuthStatus::SignInRequired {
                    sentence: e.to_string(),
                    since: now,
                });
                inner.tokens = None;
                inner.refused = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Stores the rotated refresh token and the working mode, durably, before anything uses
    /// the new access token.
    fn persist(&self, tokens: &Tokens, mode: ClientMode) -> Result<(), AuthError> {
        let io = |e: crate::store::StoreError| {
            AuthError::Transient(format!("cannot save the sign-in: {e}"))
        };
        if let Some(refresh) = &tokens.refresh_token {
            self.store.set_secret(REFRESH_TOKEN, refresh).map_err(io)?;
        }
        self.store
            .settings
            .insert(MODE_KEY, &serde_json::json!(mode))
            .map_err(io)?;
        self.store.flush().map_err(io)
    }

    /// Runs a device-code sign-in. `show` receives the code to display; `cancel` ends the
    /// wait early. On success the keeper is signed in.
    pub async fn sign_in<S, C>(&self, show: S, cancel: C) -> Result<(), AuthError>
    where
        S: FnOnce(&DeviceCodePrompt),
        C: Future<Output = ()>,
    {
        let (prompt, details) =
            auth::start_device_code(&self.http, &self.settings, Utc::now()).await?;
        show(&prompt);
        let before = self.status.send_replace(AuthStatus::SigningIn { prompt });
        let mode = self.inner.lock().await.mode;
        let result = tokio::select! {
            r = auth::finish_device_code(&self.http, &self.settings, &details, mode) => r,
            _ = cancel => Err(AuthError::Cancelled),
        };
        match result {
            Ok((tokens, mode)) => {
                self.persist(&tokens, mode)?;
                let mut inner = self.inner.lock().await;
                inner.mode = mode;
                inner.refused = None;
                self.status.send_replace(AuthStatus::SignedIn {
                    access_expires_at: tokens.expires_at,
                    refresh_at: tokens.refresh_at(),
                });
                inner.tokens = Some(tokens);
                tracing::info!("service account signed in");
                Ok(())
            }
            Err(e) => {
                self.status.send_replace(before);
                Err(e)
            }
        }
    }

    /// Keeps the token fresh until `shutdown` resolves. A refresh made elsewhere (a 401 seen by
    /// the Graph client, a sign-in) changes the status, and the loop computes its wake-up time
    /// again from the new token: a shorter-lived token must not wait for the old one's time.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut changes = self.status.subscribe();
        loop {
            changes.borrow_and_update();
            let wait = match self.next_refresh().await {
                Some(at) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                // Refused: nothing to do until someone signs in; look again now and then.
                None => Duration::from_secs(60),
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                // The keeper holds the sender, so this never ends with an error.
                _ = changes.changed() => continue,
            }
            if self.next_refresh().await.is_some() && self.access_token().await.is_err() {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}
