//! The app-only token for emergency call events: the OAuth 2.0 client-credentials grant
//! against `{login_url}/{tenant}/oauth2/v2.0/token` with
//! `scope=https://graph.microsoft.com/.default`, the app registration proving itself with the
//! appliance's certificate (a signed assertion, [`super::certificate`]) or the client secret.
//!
//! The token is cached and fetched again at 75 % of its life or after Graph's 401; 429, 5xx
//! and network failures are retried with [`RetryPolicy`]. Its `roles` claim says what the
//! admin consented to: without [`EMERGENCY_ROLE`] the token is not handed out, and the
//! refusal says an admin must grant consent. This token is only ever used by the call-event
//! subscriptions' Graph client ([`super::keeper`]); the service account's delegated token
//! never is, and this one never goes on a delegated call.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Mutex};

use super::certificate::{self, AppCertificate};
use crate::graph::aadsts::{self, TokenFailure};
use crate::graph::auth::AuthError;
use crate::graph::retry::{parse_retry_after, Attempt, Decision, RetryPolicy};
use crate::secret::Secret;

/// The scope of an app-only Graph token.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The application permission emergency call events need (graph-teams.md B.10).
pub const EMERGENCY_ROLE: &str = "CallEvents-Emergency.Read.All";
/// How long a token without the permission is kept before asking again (an admin may be
/// granting consent right now; asking on every call would hammer the token endpoint).
const NO_CONSENT_RECHECK: chrono::Duration = chrono::Duration::seconds(30);

/// The refusal when the admin has not consented (or revoked consent).
pub fn consent_missing() -> String {
    format!("Admin consent for the application permission {EMERGENCY_ROLE} is missing or was revoked: an Entra admin must grant it to Beacon's app registration (API permissions → Microsoft Graph → Application permissions → {EMERGENCY_ROLE}, then \"Grant admin consent\"). Until then emergency call events are not received; the chat path still works.")
}

/// How the app registration proves itself.
#[derive(Clone)]
pub enum AppCredential {
    Secret(Secret),
    Certificate(Arc<AppCertificate>),
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppCredential::Secret(_) => f.write_str("Secret(<hidden>)"),
            AppCredential::Certificate(c) => write!(f, "Certificate({})", c.thumbprint()),
        }
    }
}

/// Where and as which app registration.
#[derive(Debug, Clone)]
pub struct AppTokenSettings {
    pub login_url: String,
    pub tenant: String,
    pub client_id: String,
    pub credential: AppCredential,
}

impl AppTokenSettings {
    /// The token endpoint, which is also the assertion's audience.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url.trim_end_matches('/'),
            self.tenant
        )
    }

    /// The form of a client-credentials request at `now`.
    fn form(&self, now: DateTime<Utc>) -> Result<Vec<(&'static str, String)>, AuthError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", GRAPH_DEFAULT_SCOPE.to_string()),
        ];
        match &self.credential {
            AppCredential::Secret(secret) => {
                form.push(("client_secret", secret.expose().to_string()))
            }
            AppCredential::Certificate(cert) => {
                let assertion = cert
                    .assertion(
                        &self.client_id,
                        &self.token_url(),
                        now,
                        &certificate::new_jti(),
                    )
                    .map_err(|e| AuthError::Settings(e.to_string()))?;
                form.push((
                    "client_assertion_type",
                    certificate::ASSERTION_TYPE.to_string(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        Ok(form)
    }
}

/// What the setup page and health show of the app-only sign-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AppTokenStatus {
    /// No token asked for yet.
    NotYet,
    /// A token with the permission.
    Valid { expires_at: DateTime<Utc> },
    /// Refused (credential, consent, tenant): someone must act. The sentence says who.
    Refused {
        sentence: String,
        since: DateTime<Utc>,
    },
    /// The token endpoint could not be reached or was busy; retried.
    Retrying {
        sentence: String,
        since: DateTime<Utc>,
    },
}

struct Issued {
    token: Secret,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    consented: bool,
}

impl Issued {
    fn usable_at(&self, now: DateTime<Utc>) -> bool {
        if self.consented {
            now < self.issued_at + (self.expires_at - self.issued_at) * 3 / 4
        } else {
            now < self.issued_at + NO_CONSENT_RECHECK
        }
    }
}

/// See the module docs. Shared as `Arc<AppToken>`.
pub struct AppToken {
    settings: AppTokenSettings,
    http: reqwest::Client,
    policy: RetryPolicy,
    issued: Mutex<Option<Issued>>,
    status: watch::Sender<AppTokenStatus>,
}

impl AppToken {
    pub fn new(
        settings: AppTokenSettings,
        policy: RetryPolicy,
    ) -> Result<Arc<AppToken>, AuthError> {
        Ok(Arc::new(AppToken {
            settings,
            http: crate::graph::auth::http_client()?,
            policy,
            issued: Mutex::new(None),
            status: watch::channel(AppTokenStatus::NotYet).0,
        }))
    }

    pub fn status(&self) -> watch::Receiver<AppTokenStatus> {
        self.status.subscribe()
    }

    pub fn settings(&self) -> &AppTokenSettings {
        &self.settings
    }

    /// A token with [`EMERGENCY_ROLE`], fetched first when due.
    pub async fn access_token(&self) -> Result<Secret, AuthError> {
        let mut issued = self.issued.lock().await;
        let now = Utc::now();
        if let Some(current) = issued.as_ref().filter(|i| i.usable_at(now)) {
            return if current.consented {
                Ok(current.token.clone())
            } else {
                Err(self.refused(consent_missing(), now))
            };
        }
        match self.request(now).await {
            Ok(fresh) => {
                let consented = fresh.consented;
                let token = fresh.token.clone();
                let expires_at = fresh.expires_at;
                *issued = Some(fresh);
                if consented {
                    self.status
                        .send_replace(AppTokenStatus::Valid { expires_at });
                    tracing::info!(%expires_at, "app-only token fetched");
                    Ok(token)
                } else {
                    tracing::error!(
                        "the app-only token lacks {EMERGENCY_ROLE}: admin consent missing"
                    );
                    Err(self.refused(consent_missing(), now))
                }
            }
            Err(e @ AuthError::Transient(_)) => {
                let since = self.since(now);
                self.status.send_replace(AppTokenStatus::Retrying {
                    sentence: e.to_string(),
                    since,
                });
                // A token still valid for a minute serves while the endpoint is away.
                issued
                    .as_ref()
                    .filter(|i| i.consented && now + chrono::Duration::seconds(60) < i.expires_at)
                    .map(|i| i.token.clone())
                    .ok_or(e)
            }
            Err(e) => {
                *issued = None;
                Err(self.refused(e.to_string(), now))
            }
        }
    }

    /// Graph answered 401 to `used`: fetch a new token for the next call.
    pub async fn reject(&self, used: &Secret) {
        let mut issued = self.issued.lock().await;
        if issued.as_ref().is_some_and(|i| &i.token == used) {
            *issued = None;
        }
    }

    fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &*self.status.borrow() {
            AppTokenStatus::Refused { since, .. } | AppTokenStatus::Retrying { since, .. } => {
                *since
            }
            _ => now,
        }
    }

    fn refused(&self, sentence: String, now: DateTime<Utc>) -> AuthError {
        let since = match &*self.status.borrow() {
            AppTokenStatus::Refused { since, sentence: s } if *s == sentence => *since,
            _ => now,
        };
        self.status.send_replace(AppTokenStatus::Refused {
            sentence: sentence.clone(),
            since,
        });
        AuthError::SignInRequired {
            code: None,
            sentence,
        }
    }

    /// One client-credentials request, retried on 429, 5xx and network errors.
    async fn request(&self, now: DateTime<Utc>) -> Result<Issued, AuthError> {
        let url = self.settings.token_url();
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A fresh assertion (new jti, new times) for every attempt.
            let form = self.settings.form(Utc::now())?;
            let outcome = self.http.post(&url).form(&form).send().await;
            let (result, last) = match outcome {
                Err(e) => (
                    Attempt::Network,
                    format!(
                        "cannot reach Microsoft's sign-in service: {}",
                        e.without_url()
                    ),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, Utc::now()));
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let decision =
                        self.policy
                            .decide(attempt, Attempt::Status(status, retry_after), jitter());
                    if decision == Decision::Accept {
                        return answer(status, &body, now);
                    }
                    (
                        Attempt::Status(status, retry_after),
                        "Microsoft's sign-in service is busy or unavailable".to_string(),
                    )
                }
            };
            match self.policy.decide(attempt, result, jitter()) {
                Decision::RetryAfter(wait) => tokio::time::sleep(wait).await,
                Decision::GiveUp | Decision::Accept => return Err(AuthError::Transient(last)),
            }
        }
    }
}

/// A final answer of the token endpoint: the token, or the refusal in words.
fn answer(status: u16, body: &Value, now: DateTime<Utc>) -> Result<Issued, AuthError> {
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    if (200..300).contains(&status) {
        let token = text("access_token").ok_or_else(|| {
            AuthError::Transient("Microsoft's token answer has no access_token".into())
        })?;
        let lifetime = body
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(3600);
        return Ok(Issued {
            consented: roles(token).iter().any(|r| r == EMERGENCY_ROLE),
            token: Secret::new(token),
            issued_at: now,
            expires_at: now + chrono::Duration::seconds(lifetime.min(86_400) as i64),
        });
    }
    let error = text("error").unwrap_or("unknown_error");
    match aadsts::classify_app(error, text("error_description")) {
        TokenFailure::SignInRequired { sentence, .. } => Err(AuthError::SignInRequired {
            code: None,
            sentence,
        }),
        TokenFailure::Transient { sentence } => Err(AuthError::Transient(sentence)),
        // Secret-presence codes belong to the device-code sign-in; here they mean the
        // registration is not set up for an app credential.
        TokenFailure::SecretForbidden | TokenFailure::SecretRequired => {
            Err(AuthError::SignInRequired {
                code: None,
                sentence: format!("Microsoft refused the app registration's credential ({error}); check the certificate or secret on the setup page."),
            })
        }
    }
}

/// The `roles` claim of an access token (a JWT). The token comes straight from the token
/// endpoint over TLS, so it is read, not verified; an opaque token has no roles.
pub fn roles(token: &str) -> Vec<String> {
    let Some(payload) = token.split('.').nth(1) else {
        return Vec::new();
    };
    URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| {
            claims.get("roles").and_then(Value::as_array).map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn jitter() -> f64 {
    f64::from(Utc::now().timestamp_subsec_nanos() % 1000) / 1000.0
}

/// How long to wait after the app-only sign-in failed before the keeper tries again.
pub const RETRY_AFTER_REFUSAL: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token_with(claims: Value) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn roles_are_read_from_the_token() {
        let with = token_with(json!({"roles": ["User.Read.All", EMERGENCY_ROLE]}));
        assert!(roles(&with).iter().any(|r| r == EMERGENCY_ROLE));
        assert!(roles(&token_with(json!({"scp": "x"}))).is_empty());
        assert!(roles("opaque").is_empty());
    }

    #[test]
    fn a_token_without_the_permission_is_consent_missing() {
        let now = Utc::now();
        let body = json!({"access_token": token_with(json!({"roles": []})), "expires_in": 3599, "token_type": "Bearer"});
        let issued = answer(200, &body, now).expect("issued");
        assert!(!issued.consented);
        assert!(issued.usable_at(now + chrono::Duration::seconds(29)));
        assert!(!issued.usable_at(now + chrono::Duration::seconds(31)));
        let refused = answer(
            401,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
            now,
        );
        assert!(
            matches!(refused, Err(AuthError::SignInRequired { sentence, .. }) if sentence.contains("client secret"))
        );
    }
}
