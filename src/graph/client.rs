//! The Microsoft Graph HTTP client (reqwest + rustls): bearer token from the token keeper,
//! timeouts on every call, `Retry-After` honoured on 429/503, exponential backoff with jitter
//! on 5xx and network errors ([`super::retry`]), one token refresh on a 401, paging through
//! `@odata.nextLink`, and a log line per call that never contains a token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use serde_json::Value;

use super::auth::AuthError;
use super::call_events::app_token::AppToken;
use super::retry::{parse_retry_after, Attempt, Decision, RetryPolicy};
use super::tokens::TokenKeeper;

/// A Graph error in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error body (`{"error": {"code", "message"}}`).
    #[error("Graph {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Still failing (throttled, 5xx, network) after every retry.
    #[error("Graph did not answer usefully after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("sign-in: {0}")]
    Auth(#[from] AuthError),
    #[error("Graph answered something that is not JSON: {0}")]
    Body(String),
    #[error("refusing to follow a link outside the Graph base URL")]
    ForeignLink,
}

impl GraphError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Whose token a client sends: the service account's (delegated: chats, subscriptions to
/// them) or the app registration's own (app-only: emergency call events). One client never
/// sends the other's.
#[derive(Clone)]
enum Bearer {
    Delegated(Arc<TokenKeeper>),
    AppOnly(Arc<AppToken>),
}

impl Bearer {
    async fn access_token(&self) -> Result<crate::secret::Secret, AuthError> {
        match self {
            Bearer::Delegated(keeper) => keeper.access_token().await,
            Bearer::AppOnly(app) => app.access_token().await,
        }
    }

    async fn reject(&self, used: &crate::secret::Secret) {
        match self {
            Bearer::Delegated(keeper) => keeper.reject(used).await,
            Bearer::AppOnly(app) => app.reject(used).await,
        }
    }
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    tokens: Bearer,
    policy: RetryPolicy,
}

impl GraphClient {
    /// `base` is e.g. `https://graph.microsoft.com/v1.0`.
    pub fn new(
        base: &str,
        tokens: Arc<TokenKeeper>,
        policy: RetryPolicy,
    ) -> Result<GraphClient, GraphError> {
        GraphClient::with_bearer(base, Bearer::Delegated(tokens), policy)
    }

    /// A client that sends the app registration's app-only token (emergency call events).
    pub fn app_only(
        base: &str,
        app: Arc<AppToken>,
        policy: RetryPolicy,
    ) -> Result<GraphClient, GraphError> {
        GraphClient::with_bearer(base, Bearer::AppOnly(app), policy)
    }

    /// Whether this client sends the app-only token.
    pub fn is_app_only(&self) -> bool {
        matches!(self.tokens, Bearer::AppOnly(_))
    }

    fn with_bearer(
        base: &str,
        tokens: Bearer,
        policy: RetryPolicy,
    ) -> Result<GraphClient, GraphError> {
        let http = crate::trust::current()
            .reqwest_builder()
            .map_err(|e| GraphError::Body(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| GraphError::Body(e.to_string()))?;
        Ok(GraphClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            tokens,
            policy,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` (relative to the base, starting with `/`) and parse JSON.
    pub async fn get(&self, path: &str) -> Result<Value, GraphError> {
        self.call(Method::GET, &self.url(path), None)
            .await
            .map(|(_, v)| v)
    }

    /// Any method, with an optional JSON body. Returns (status, body; `Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), GraphError> {
        self.call(method, &self.url(path), body).await
    }

    /// GET every page of a collection, following `@odata.nextLink`, up to `max_items`.
    pub async fn get_all(&self, path: &str, max_items: usize) -> Result<Vec<Value>, GraphError> {
        let mut items = Vec::new();
        let mut url = self.url(path);
        loop {
            let (_, page) = self.call(Method::GET, &url, None).await?;
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            let next = page.get("@odata.nextLink").and_then(Value::as_str);
            match next {
                Some(next) if items.len() < max_items => {
                    if !next.starts_with(&self.base) {
                        return Err(GraphError::ForeignLink);
                    }
                    url = next.to_string();
                }
                _ => break,
            }
        }
        items.truncate(max_items);
        Ok(items)
    }

    /// An `@odata.nextLink` as a path for [`GraphClient::get`]; `None` for a link outside the
    /// Graph base URL (never followed).
    pub fn relative(&self, link: &str) -> Option<String> {
        link.strip_prefix(&self.base)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), GraphError> {
        let mut attempt = 0;
        let mut refreshed = false;
        // Only the path goes to the log: query strings may carry filters with user content.
        let shown = url
            .strip_prefix(&self.base)
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        loop {
            attempt += 1;
            let token = self.tokens.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .header("Prefer", "include-unknown-enum-members");
            let mut bearer =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    GraphError::Auth(AuthError::Transient(
                        "the access token is not a valid header value".into(),
                    ))
                })?;
            bearer.set_sensitive(true);
            request = request.header(AUTHORIZATION, bearer);
            if let Some(body) = body {
                request = request.json(body);
            }
            let started = Instant::now();
            let outcome = request.send().await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let (result, last) = match outcome {
                Err(e) => {
                    let e = e.without_url().to_string();
                    tracing::warn!(%method, path = shown, attempt, elapsed_ms, error = e, "graph call failed");
                    (Attempt::Network, e)
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::debug!(%method, path = shown, status, attempt, elapsed_ms, "graph call");
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, Utc::now()));
                    let bytes = response.bytes().await.unwrap_or_default();
                    if status == 401 && !refreshed {
                        refreshed = true;
                        self.tokens.reject(&token).await;
                        attempt -= 1;
                        continue;
                    }
                    let decision =
                        self.policy
                            .decide(attempt, Attempt::Status(status, retry_after), jitter());
                    if decision == Decision::Accept {
                        return finish(status, &bytes);
                    }
                    let error = finish(status, &bytes)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    tracing::warn!(%method, path = shown, status, attempt, ?retry_after, "graph call will be retried");
                    (Attempt::Status(status, retry_after), error)
                }
            };
            match self.policy.decide(attempt, result, jitter()) {
                Decision::RetryAfter(wait) => tokio::time::sleep(wait).await,
                Decision::GiveUp | Decision::Accept => {
                    return Err(GraphError::GaveUp {
                        attempts: attempt,
                        last,
                    })
                }
            }
        }
    }
}

/// Turns a final answer into JSON or an API error.
fn finish(status: u16, bytes: &[u8]) -> Result<(u16, Value), GraphError> {
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).map_err(|e| GraphError::Body(e.to_string()))?
    };
    if (200..300).contains(&status) {
        return Ok((status, value));
    }
    let error = value.get("error");
    let text = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(500)
            .collect::<String>()
    };
    Err(GraphError::Api {
        status,
        code: text("code"),
        message: text("message"),
    })
}

/// A jitter fraction from the clock's nanoseconds: good enough to spread retries.
fn jitter() -> f64 {
    f64::from(Utc::now().timestamp_subsec_nanos() % 1000) / 1000.0
}
