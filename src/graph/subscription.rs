//! The subscription keeper: carries out [`super::schedule`]'s decisions against Graph — create
//! (`POST /subscriptions`), renew (`PATCH`), reauthorize, reconcile with the paged list (adopt
//! ours, delete this app's strays) — and turns creation failures into sentences that name the
//! fix (graph-teams.md B.4, B.5, B.8, G26).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify};

use super::client::{GraphClient, GraphError};
use super::client_state::ClientStates;
use super::crypto::EncryptionKey;
use super::notification::LifecycleEvent;
use super::schedule::{self, Action, KeeperState, Subscription};
use crate::secret::Secret;
use crate::store::Store;

const STATE_KEY: &str = "graph/subscription";

/// What to subscribe to, and where Graph should deliver.
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// Object id of the service account (`GET /me`).
    pub service_account_id: String,
    /// Event Hubs namespace (without `.servicebus.windows.net`).
    pub namespace: String,
    pub hub: String,
    /// The `tenantId` query parameter: the domain of the tenant that owns the hub (B.4).
    pub hub_tenant: String,
    /// Append `?model=B` (metered; no 500-message evaluation quota).
    pub model_b: bool,
    /// Ask for rich notifications with this certificate.
    pub rich: Option<EncryptionKey>,
}

impl SubscriptionSettings {
    /// `/users/{id}/chats/getAllMessages[?model=B]`
    pub fn resource(&self) -> String {
        let model = if self.model_b { "?model=B" } else { "" };
        format!(
            "/users/{}/chats/getAllMessages{model}",
            self.service_account_id
        )
    }

    /// `EventHub:https://<ns>.servicebus.windows.net/eventhubname/<hub>?tenantId=<tenant>`
    pub fn notification_url(&self) -> String {
        format!(
            "EventHub:https://{}.servicebus.windows.net/eventhubname/{}?tenantId={}",
            self.namespace, self.hub, self.hub_tenant
        )
    }

    /// The body of `POST /subscriptions` (B.5, B.7).
    pub fn create_body(&self, client_state: &Secret, expires: DateTime<Utc>) -> Value {
        let url = self.notification_url();
        let mut body = json!({
            "changeType": "created,updated",
            "notificationUrl": url,
            "lifecycleNotificationUrl": url,
            "resource": self.resource(),
            "expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Millis, true),
            "clientState": client_state.expose(),
            "latestSupportedTlsVersion": "v1_2",
        });
        if let Some(key) = &self.rich {
            body["includeResourceData"] = json!(true);
            body["encryptionCertificate"] = json!(key.certificate_base64());
            body["encryptionCertificateId"] = json!(key.id);
        }
        body
    }
}

/// For the web page and the health supervisor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubscriptionStatus {
    pub subscription_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_renewal: Option<DateTime<Utc>>,
    /// The last failure, in words, and since when it has been failing.
    pub problem: Option<String>,
    pub problem_since: Option<DateTime<Utc>>,
    /// A standing warning about Microsoft's quota, when it applies (B.1, G11).
    pub quota_warning: Option<String>,
}

/// The evaluation-mode warning (subscriptions without `?model=B`).
pub const EVALUATION_QUOTA_WARNING: &str = "The subscription runs in Microsoft's evaluation mode: after 500 notified messages a month Graph stops notifying without a word. Keep the service account's chats to emergency notifications, or set graph.model_b = true (metered). Until then Beacon's chat poll finds what is no longer notified, up to one poll interval later.";

/// See the module docs.
pub struct SubscriptionKeeper {
    graph: GraphClient,
    store: Store,
    client_states: ClientStates,
    settings: SubscriptionSettings,
    state: Mutex<KeeperState>,
    status: watch::Sender<SubscriptionStatus>,
    /// Wakes [`SubscriptionKeeper::run`] when a lifecycle event changed what is due.
    wake: Notify,
}

impl SubscriptionKeeper {
    pub fn new(
        graph: GraphClient,
        store: Store,
        client_states: ClientStates,
        settings: SubscriptionSettings,
    ) -> Arc<Self> {
        let state: KeeperState = store
            .settings
            .get(STATE_KEY)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        // Whatever was stored, look at Graph's list first after a start.
        let state = KeeperState {
            last_reconcile: None,
            ..state
        };
        let mut status = status_of(&state, None, None);
        status.quota_warning = (!settings.model_b).then(|| EVALUATION_QUOTA_WARNING.to_string());
        Arc::new(SubscriptionKeeper {
            graph,
            store,
            client_states,
            settings,
            state: Mutex::new(state),
            status: watch::channel(status).0,
            wake: Notify::new(),
        })
    }

    pub fn status(&self) -> watch::Receiver<SubscriptionStatus> {
        self.status.subscribe()
    }

    /// What it subscribes to and where notifications go.
    pub fn settings(&self) -> &SubscriptionSettings {
        &self.settings
    }

    /// A copy of what the keeper knows.
    pub async fn state(&self) -> KeeperState {
        self.state.lock().await.clone()
    }

    /// Reacts to a lifecycle event from the hub.
    pub async fn lifecycle(&self, subscription_id: &str, event: LifecycleEvent) {
        let mut state = self.state.lock().await;
        let ours = state
            .subscription
            .as_ref()
            .is_some_and(|s| s.id == subscription_id);
        match event {
            LifecycleEvent::ReauthorizationRequired if ours => state.reauthorize_requested = true,
            LifecycleEvent::SubscriptionRemoved if ours => state.removed = true,
            // `missed` (Outlook only) and events for subscriptions we no longer hold: a
            // reconcile sorts it out.
            _ => state.last_reconcile = None,
        }
        drop(state);
        // The schedule may be asleep until the next renewal (days): act on the event now.
        self.wake.notify_one();
    }

    /// Does the next due step, if any. Returns what it did (or when it next wants to run).
    pub async fn step(&self, now: DateTime<Utc>) -> Result<Action, GraphError> {
        let action = {
            let state = self.state.lock().await;
            schedule::next_action(now, &state)
        };
        let result = match &action {
            Action::WaitUntil(_) => Ok(()),
            Action::Reconcile => self.reconcile(now).await,
            Action::Create => self.create(now).await,
            Action::Renew { id } => self.renew(id, now).await,
            Action::Reauthorize { id } => self.reauthorize(id, now).await,
        };
        let state = self.state.lock().await.clone();
        if let Err(e) = self
            .store
            .settings
            .insert(STATE_KEY, &json!(state))
            .and_then(|_| self.store.flush())
        {
            tracing::error!(error = %e, "cannot save the subscription state");
        }
        let previous = self.status.borrow().clone();
        let mut status = match &result {
            Ok(()) => status_of(&state, None, None),
            Err(e) => {
                let sentence = explain(e);
                tracing::error!(?action, problem = sentence, "subscription keeper");
                let since = previous.problem_since.unwrap_or(now);
                status_of(&state, Some(sentence), Some(since))
            }
        };
        status.quota_warning = previous.quota_warning;
        self.status.send_replace(status);
        result.map(|()| action)
    }

    async fn reconcile(&self, now: DateTime<Utc>) -> Result<(), GraphError> {
        let listed = self.graph.get_all("/subscriptions", 1000).await?;
        let resource = self.settings.resource().to_ascii_lowercase();
        let mut state = self.state.lock().await;
        let known = state.subscription.as_ref().map(|s| s.id.clone());
        let mut adopted = None;
        for item in &listed {
            let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
            let item_resource = item
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let expires = item
                .get("expirationDateTime")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
            let ours = known.as_deref() == Some(id) || self.client_states.knows(id);
            let same_resource = item_resource.to_ascii_lowercase() == resource;
            if ours && same_resource && adopted.is_none() {
                adopted = Some(Subscription {
                    id: id.to_string(),
                    resource: item_resource.to_string(),
                    expires_at: expires.unwrap_or(now),
                    renewed_at: state
                        .subscription
                        .as_ref()
                        .filter(|s| s.id == id)
                        .map_or(now, |s| s.renewed_at),
                });
            } else {
                // Listing shows only this app's subscriptions for this user (B.8): anything
                // that is not the one we keep is a stray from an earlier install or a race.
                tracing::info!(id, "deleting a stray subscription of this app");
                match self
                    .graph
                    .send(Method::DELETE, &format!("/subscriptions/{id}"), None)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
                let _ = self.client_states.remove(&self.store, id);
            }
        }
        state.removed = adopted.is_none();
        state.subscription = adopted.or(state.subscription.take());
        state.last_reconcile = Some(now);
        Ok(())
    }

    async fn create(&self, now: DateTime<Utc>) -> Result<(), GraphError> {
        let client_state = new_client_state();
        let expires = schedule::expiry_for(now);
        let body = self.settings.create_body(&client_state, expires);
        match self
            .graph
            .send(Method::POST, "/subscriptions", Some(&body))
            .await
        {
            Ok((_, created)) => {
                let id = created
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| GraphError::Body("the created subscription has no id".into()))?
                    .to_string();
                // The state must be known before Graph's first notification can arrive.
                self.client_states
                    .add(&self.store, &id, client_state)
                    .map_err(|e| GraphError::Body(e.to_string()))?;
                let expires_at = created
                    .get("expirationDateTime")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map_or(expires, |d| d.with_timezone(&Utc));
                let old = {
                    let mut state = self.state.lock().await;
                    let old = state.subscription.replace(Subscription {
                        id: id.clone(),
                        resource: self.settings.resource(),
                        expires_at,
                        renewed_at: now,
                    });
                    state.removed = false;
                    state.reauthorize_requested = false;
                    old
                };
                if let Some(old) = old.filter(|o| o.id != id) {
                    let _ = self.client_states.remove(&self.store, &old.id);
                }
                tracing::info!(id, %expires_at, "subscription created");
                Ok(())
            }
            Err(e) if e.status() == Some(409) => {
                // "Subscription Id <id> already exists for the requested combination" (B.5):
                // adopt it if it is ours (we hold its clientState), otherwise replace it.
                let existing = conflict_id(&e);
                if let Some(id) = existing.filter(|id| self.client_states.knows(id)) {
                    let mut state = self.state.lock().await;
                    state.last_reconcile = None;
                    state.subscription = Some(Subscription {
                        id,
                        resource: self.settings.resource(),
                        expires_at: now,
                        renewed_at: now,
                    });
                    state.removed = false;
                    return Ok(());
                }
                if let Some(id) = conflict_id(&e) {
                    self.graph
                        .send(Method::DELETE, &format!("/subscriptions/{id}"), None)
                        .await?;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn renew(&self, id: &str, now: DateTime<Utc>) -> Result<(), GraphError> {
        let expires = schedule::expiry_for(now);
        let body =
            json!({"expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Millis, true)});
        match self
            .graph
            .send(Method::PATCH, &format!("/subscriptions/{id}"), Some(&body))
            .await
        {
            Ok((_, renewed)) => {
                let expires_at = renewed
                    .get("expirationDateTime")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map_or(expires, |d| d.with_timezone(&Utc));
                let mut state = self.state.lock().await;
                if let Some(sub) = state.subscription.as_mut() {
                    sub.expires_at = expires_at;
                    sub.renewed_at = now;
                }
                state.reauthorize_requested = false;
                tracing::info!(id, %expires_at, "subscription renewed");
                Ok(())
            }
            Err(e) if e.status() == Some(404) => {
                tracing::warn!(id, "subscription gone (404 on renew); creating a new one");
                self.state.lock().await.removed = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn reauthorize(&self, id: &str, now: DateTime<Utc>) -> Result<(), GraphError> {
        match self
            .graph
            .send(
                Method::POST,
                &format!("/subscriptions/{id}/reauthorize"),
                None,
            )
            .await
        {
            Ok(_) => {
                self.state.lock().await.reauthorize_requested = false;
                tracing::info!(id, %now, "subscription reauthorized");
                Ok(())
            }
            Err(e) if e.status() == Some(404) => {
                self.state.lock().await.removed = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Does the due steps now (list, create or renew) until only waiting is left: the setup
    /// wizard's "Create subscription". Returns the resulting status.
    pub async fn settle(&self, now: DateTime<Utc>) -> Result<SubscriptionStatus, GraphError> {
        for _ in 0..4 {
            if let Action::WaitUntil(_) = self.step(now).await? {
                break;
            }
        }
        Ok(self.status.borrow().clone())
    }

    /// Runs the schedule until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.step(Utc::now()).await {
                Ok(Action::WaitUntil(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
                Ok(_) => std::time::Duration::ZERO,
                Err(_) => std::time::Duration::from_secs(60),
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

fn status_of(
    state: &KeeperState,
    problem: Option<String>,
    since: Option<DateTime<Utc>>,
) -> SubscriptionStatus {
    SubscriptionStatus {
        subscription_id: state.subscription.as_ref().map(|s| s.id.clone()),
        expires_at: state.subscription.as_ref().map(|s| s.expires_at),
        last_renewal: state.subscription.as_ref().map(|s| s.renewed_at),
        problem_since: problem.as_ref().and(since),
        problem,
        quota_warning: None,
    }
}

/// 32 random bytes, URL-safe base64: 43 characters, under Graph's 128.
fn new_client_state() -> Secret {
    let mut bytes = [0u8; 32];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // The OpenSSL RNG does not fail on Linux; if it ever did, fall back to the clock plus
        // the address of a stack value rather than refuse to subscribe.
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(0) ^ (&bytes as *const _ as i64);
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
    }
    Secret::new(B64URL.encode(bytes))
}

/// The id in "Subscription Id <id> already exists …".
fn conflict_id(error: &GraphError) -> Option<String> {
    let GraphError::Api { message, .. } = error else {
        return None;
    };
    let rest = message.split("Subscription Id").nth(1)?;
    let id = rest
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
    (!id.is_empty()).then(|| id.to_string())
}

/// A subscription failure in words that name the fix.
pub fn explain(error: &GraphError) -> String {
    match error {
        GraphError::Api {
            status, message, ..
        } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("invalid event hub notification url") {
                "Graph rejected the Event Hub address. Check the namespace and hub names, and that tenantId is the domain of the tenant that owns the Event Hub.".into()
            } else if lower.contains("publishing validation failed") {
                "Graph could not publish into the Event Hub. Give the service principal \"Microsoft Graph Change Tracking\" the role \"Azure Event Hubs Data Sender\" on the hub, use the Standard tier or higher, and check the tenant id.".into()
            } else if *status == 403 {
                format!("Graph refused the subscription (403: {message}). The service account may have reached its subscription quota, or lacks Chat.Read consent.")
            } else if *status == 401 {
                "Graph refused the service account's token. Sign the service account in again."
                    .into()
            } else {
                format!("Graph refused the subscription request ({status}: {message}).")
            }
        }
        GraphError::Auth(e) => format!("Not signed in: {e}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SubscriptionSettings {
        SubscriptionSettings {
            service_account_id: "aaaa-bbbb".into(),
            namespace: "contoso-eh".into(),
            hub: "teams-emergency".into(),
            hub_tenant: "contoso.com".into(),
            model_b: false,
            rich: None,
        }
    }

    #[test]
    fn create_body_is_the_documented_one() {
        let expires = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let body = settings().create_body(&Secret::new("cs"), expires);
        assert_eq!(body["changeType"], "created,updated");
        assert_eq!(
            body["notificationUrl"],
            "EventHub:https://contoso-eh.servicebus.windows.net/eventhubname/teams-emergency?tenantId=contoso.com"
        );
        assert_eq!(body["lifecycleNotificationUrl"], body["notificationUrl"]);
        assert_eq!(body["resource"], "/users/aaaa-bbbb/chats/getAllMessages");
        assert_eq!(body["expirationDateTime"], "2026-12-02T10:00:00.000Z");
        assert_eq!(body["clientState"], "cs");
        assert!(body.get("includeResourceData").is_none());
        let model_b = SubscriptionSettings {
            model_b: true,
            ..settings()
        };
        assert_eq!(
            model_b.resource(),
            "/users/aaaa-bbbb/chats/getAllMessages?model=B"
        );
    }

    #[test]
    fn client_state_is_random_and_short() {
        let a = new_client_state();
        let b = new_client_state();
        assert_ne!(a, b);
        assert!(a.expose().len() <= 128 && a.expose().len() >= 40);
    }

    #[test]
    fn failures_name_the_fix() {
        let api = |status, message: &str| GraphError::Api {
            status,
            code: "InvalidRequest".into(),
            message: message.into(),
        };
        assert!(
            explain(&api(400, "Client EventHubs publishing validation failed"))
                .contains("Azure Event Hubs Data Sender")
        );
        assert!(
            explain(&api(400, "Invalid event hub notification url='EventHub:x'"))
                .contains("tenantId")
        );
        assert!(explain(&api(403, "quota")).contains("quota"));
        assert_eq!(
            conflict_id(&api(
                409,
                "Subscription Id 7f0e-11 already exists for the requested combination"
            )),
            Some("7f0e-11".into())
        );
    }
}
