//! Signing the service account in with the OAuth 2.0 device authorization grant, and
//! refreshing its tokens, through the `oauth2` crate (graph-teams.md A).
//!
//! The crate runs the poll loop (`authorization_pending` keeps polling, `slow_down` adds 5 s);
//! this module adds what Microsoft's identity platform does differently: the `message` field of
//! the device-code answer, `authorization_declined` / `bad_verification_code`, and the rule
//! for the client secret (A.4): it is sent only when the tenant demands a confidential client
//! (AADSTS7000218) and never when public client flows are on (AADSTS700025). Whichever mode
//! works is reported back so the caller can remember it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationResponse, DeviceAuthorizationUrl,
    DeviceCodeErrorResponseType, EndpointNotSet, EndpointSet, ExtraDeviceAuthorizationFields,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::aadsts::{self, TokenFailure};
use crate::secret::Secret;

/// Scopes of the seed product (graph-teams.md A.2).
pub const DEFAULT_SCOPES: &[&str] = &[
    "User.Read",
    "Chat.Read",
    "Chat.ReadBasic",
    "ChatMessage.Read",
    "openid",
    "profile",
    "offline_access",
];

/// Where and as whom to sign in.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `https://login.microsoftonline.com` (or the fake's URL in tests).
    pub login_url: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
}

/// Whether the client secret is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientMode {
    /// Public client flows on: never send the secret (the documented default).
    #[default]
    Public,
    /// The tenant demands the secret on every token call.
    Confidential,
}

/// What the person at the setup page (or display, or terminal) needs to finish sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCodePrompt {
    pub user_code: String,
    pub verification_uri: String,
    pub message: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub interval: Duration,
}

impl DeviceCodePrompt {
    /// Whole minutes the code is still valid at `now`, rounded up: a 900 s code read a moment
    /// after it was issued is "15 minutes", as Microsoft's own message says, not 14.
    pub fn minutes_left(&self, now: DateTime<Utc>) -> i64 {
        let seconds = (self.expires_at - now).num_seconds().max(0);
        (seconds + 59) / 60
    }
}

/// A token set. The access token lives in memory; the refresh token is persisted.
#[derive(Clone)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// When to refresh: at 75 % of the access token's lifetime.
    pub fn refresh_at(&self) -> DateTime<Utc> {
        self.issued_at + (self.expires_at - self.issued_at) * 3 / 4
    }
}

/// Why sign-in or refresh failed, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{sentence}")]
    SignInRequired { code: Option<u32>, sentence: String },
    #[error("the sign-in was declined on the Microsoft page")]
    Declined,
    #[error("the sign-in code expired before it was entered; start again for a new code")]
    Expired,
    #[error("Microsoft did not recognise the device code; start the sign-in again")]
    BadCode,
    #[error("the sign-in was cancelled")]
    Cancelled,
    #[error("the app registration demands a client secret ('Allow public client flows' is off): enter the client secret, or turn public client flows on")]
    SecretNeeded,
    #[error("{0}")]
    Transient(String),
    #[error("sign-in settings: {0}")]
    Settings(String),
}

/// Microsoft's extra field in the device-code answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MicrosoftDeviceFields {
    #[serde(default)]
    pub message: Option<String>,
}

impl ExtraDeviceAuthorizationFields for MicrosoftDeviceFields {}

/// The device-code answer, kept between [`start_device_code`] and [`finish_device_code`].
pub type DeviceAuthorization = DeviceAuthorizationResponse<MicrosoftDeviceFields>;

type OAuthClient =
    BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(settings: &OAuthSettings, mode: ClientMode) -> Result<OAuthClient, AuthError> {
    let base = format!(
        "{}/{}/oauth2/v2.0",
        settings.login_url.trim_end_matches('/'),
        settings.tenant
    );
    let device = DeviceAuthorizationUrl::new(format!("{base}/devicecode"))
        .map_err(|e| AuthError::Settings(format!("login URL: {e}")))?;
    let token = TokenUrl::new(format!("{base}/token"))
        .map_err(|e| AuthError::Settings(format!("login URL: {e}")))?;
    let mut client = BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(device)
        .set_token_uri(token);
    if mode == ClientMode::Confidential {
        let secret = settings
            .client_secret
            .as_ref()
            .ok_or(AuthError::SecretNeeded)?;
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    Ok(client)
}

/// An HTTP client for the identity platform: timeouts, no redirects (oauth2's advice), the
/// shared trusted CAs ([`crate::trust`]).
pub fn http_client() -> Result<reqwest::Client, AuthError> {
    crate::trust::current()
        .reqwest_builder()
        .map_err(|e| AuthError::Settings(e.to_string()))?
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AuthError::Settings(e.to_string()))
}

/// Asks for a device code. Returns what to show and what to poll with.
pub async fn start_device_code(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    now: DateTime<Utc>,
) -> Result<(DeviceCodePrompt, DeviceAuthorization), AuthError> {
    // The device-code request itself never carries a secret (A.2).
    let details: DeviceAuthorization = client(settings, ClientMode::Public)?
        .exchange_device_code()
        .add_scopes(settings.scopes.iter().cloned().map(Scope::new))
        .request_async(http)
        .await
        .map_err(
            |e| match map_error(e, |t: &BasicErrorResponseType| t.as_ref().to_string()) {
                Attempt::Done(e) => e,
                Attempt::Switch(_) => AuthError::Transient(
                    "unexpected client-type error on the device-code request".into(),
                ),
            },
        )?;
    let prompt = DeviceCodePrompt {
        user_code: details.user_code().secret().clone(),
        verification_uri: details.verification_uri().to_string(),
        message: details.extra_fields().message.clone(),
        expires_at: now + chrono::Duration::from_std(details.expires_in()).unwrap_or_default(),
        interval: details.interval(),
    };
    Ok((prompt, details))
}

/// Polls until the person finished (or declined, or the code expired). Tries `mode` first
/// and switches once if the tenant says the other is needed; returns the mode that worked.
pub async fn finish_device_code(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    details: &DeviceAuthorization,
    mode: ClientMode,
) -> Result<(Tokens, ClientMode), AuthError> {
    with_mode_fallback(settings, mode, |mode| async move {
        let issued_at = Utc::now();
        let response = client(settings, mode)?
            .exchange_device_access_token(details)
            .request_async(http, tokio::time::sleep, None)
            .await
            .map_err(|e| map_error(e, |t: &DeviceCodeErrorResponseType| t.as_ref().to_string()))?;
        Ok(tokens(&response, issued_at))
    })
    .await
}

/// Redeems a refresh token (A.5). The answer carries a new (rotated) refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    refresh_token: &Secret,
    mode: ClientMode,
) -> Result<(Tokens, ClientMode), AuthError> {
    with_mode_fallback(settings, mode, |mode| async move {
        let issued_at = Utc::now();
        let response = client(settings, mode)?
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_string()))
            .add_scopes(settings.scopes.iter().cloned().map(Scope::new))
            .request_async(http)
            .await
            .map_err(|e| map_error(e, |t: &BasicErrorResponseType| t.as_ref().to_string()))?;
        Ok(tokens(&response, issued_at))
    })
    .await
}

/// Internal: a secret-presence mismatch, to switch modes on.
enum Attempt {
    Done(AuthError),
    Switch(ClientMode),
}

async fn with_mode_fallback<F, Fut>(
    settings: &OAuthSettings,
    mode: ClientMode,
    call: F,
) -> Result<(Tokens, ClientMode), AuthError>
where
    F: Fn(ClientMode) -> Fut,
    Fut: std::future::Future<Output = Result<Tokens, Attempt>>,
{
    match call(mode).await {
        Ok(t) => Ok((t, mode)),
        Err(Attempt::Done(e)) => Err(e),
        Err(Attempt::Switch(other)) => {
            if other == ClientMode::Confidential && settings.client_secret.is_none() {
                return Err(AuthError::SecretNeeded);
            }
            tracing::info!(?other, "the tenant wants the other client type; switching");
            match call(other).await {
                Ok(t) => Ok((t, other)),
                Err(Attempt::Done(e)) => Err(e),
                Err(Attempt::Switch(_)) => Err(AuthError::SecretNeeded),
            }
        }
    }
}

impl From<AuthError> for Attempt {
    fn from(e: AuthError) -> Self {
        Attempt::Done(e)
    }
}

fn tokens(response: &oauth2::basic::BasicTokenResponse, issued_at: DateTime<Utc>) -> Tokens {
    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3600));
    Tokens {
        access_token: Secret::new(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone())),
        issued_at,
        expires_at: issued_at
            + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1)),
    }
}

fn map_error<RE, T>(
    error: RequestTokenError<RE, oauth2::StandardErrorResponse<T>>,
    name: impl Fn(&T) -> String,
) -> Attempt
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponseType + std::fmt::Display,
{
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = name(response.error());
            let description = response.error_description().map(String::as_str);
            match code.as_str() {
                "authorization_declined" | "access_denied" => {
                    return Attempt::Done(AuthError::Declined)
                }
                "expired_token" => return Attempt::Done(AuthError::Expired),
                "bad_verification_code" => return Attempt::Done(AuthError::BadCode),
                _ => {}
            }
            match aadsts::classify(&code, description) {
                TokenFailure::SecretForbidden => Attempt::Switch(ClientMode::Public),
                TokenFailure::SecretRequired => Attempt::Switch(ClientMode::Confidential),
                TokenFailure::SignInRequired { code, sentence } => {
                    Attempt::Done(AuthError::SignInRequired { code, sentence })
                }
                TokenFailure::Transient { sentence } => {
                    Attempt::Done(AuthError::Transient(sentence))
                }
            }
        }
        RequestTokenError::Request(e) => Attempt::Done(AuthError::Transient(format!(
            "cannot reach Microsoft's sign-in service: {}",
            error_chain(&e)
        ))),
        // Only the path of the field: a parse message can quote the value, i.e. a token.
        RequestTokenError::Parse(e, _) => Attempt::Done(AuthError::Transient(format!(
            "unexpected answer from Microsoft's sign-in service (at `{}`)",
            e.path()
        ))),
        RequestTokenError::Other(e) => Attempt::Done(AuthError::Transient(e)),
    }
}

/// An error and its sources on one line (URLs in reqwest errors carry no secrets: token
/// requests send everything in the body).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_three_quarters_of_the_lifetime() {
        let issued_at = Utc::now();
        let t = Tokens {
            access_token: Secret::new("a"),
            refresh_token: None,
            issued_at,
            expires_at: issued_at + chrono::Duration::seconds(3600),
        };
        assert_eq!(t.refresh_at(), issued_at + chrono::Duration::seconds(2700));
        assert!(!format!("{t:?}").contains("\"a\""));
    }

    #[test]
    fn a_fifteen_minute_code_is_announced_as_fifteen_minutes() {
        let issued = Utc::now();
        let prompt = DeviceCodePrompt {
            user_code: "ABCD1234".into(),
            verification_uri: "https://microsoft.com/devicelogin".into(),
            message: None,
            expires_at: issued + chrono::Duration::seconds(900),
            interval: Duration::from_secs(5),
        };
        let shown = issued + chrono::Duration::milliseconds(350);
        assert_eq!(prompt.minutes_left(shown), 15);
        assert_eq!(
            prompt.minutes_left(issued + chrono::Duration::seconds(899)),
            1
        );
        assert_eq!(
            prompt.minutes_left(issued + chrono::Duration::seconds(960)),
            0
        );
    }
}
