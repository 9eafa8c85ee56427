//! The subscription keeper: carries out [`super::schedule`]'s decisions against Graph — create
//! (`POST /subscriptions`), renew (`PATCH`), reauthorize, reconcile with the paged list — and
//! turns creation failures into sentences that name the fix (graph-teams.md B.4, B.5, B.8, G26).
//!
//! Every box of a fleet ([`super::fleet`]) runs a keeper, leaderless: each creates the fleet's
//! subscription when it is missing, adopts it on a `409 Conflict` or from the list when it is
//! the fleet's, and renews it on its own schedule — a renewal by several boxes only moves the
//! expiry forward, so any one living box keeps it alive. Graph returns no `clientState` after
//! creation (B.8), so "the fleet's" is checked on what Graph does return: the resource, the
//! Event Hub it delivers to and, for rich notifications, the fleet's certificate id; the
//! notifications themselves then prove it (a wrong clientState on it is refused and a
//! trouble, [`super::client_state`]). A keeper deletes only subscriptions the fleet itself
//! created and no longer wants, never one it cannot verify.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify};

use super::client::{GraphClient, GraphError};
use super::client_state::ClientStates;
use super::crypto::KeyRing;
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
    /// Ask for rich notifications, encrypted for the ring's current certificate (a rotation
    /// changes it: the next subscription made uses the new one).
    pub rich: Option<KeyRing>,
    /// The lifetime to ask for, in minutes ([`schedule::LIFETIME_MINUTES`] unless shortened).
    pub lifetime_minutes: i64,
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
        event_hub_url(&self.namespace, &self.hub, &self.hub_tenant)
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
        if let Some(key) = self.rich.as_ref().and_then(KeyRing::current) {
            body["includeResourceData"] = json!(true);
            body["encryptionCertificate"] = json!(key.certificate_base64());
            body["encryptionCertificateId"] = json!(key.id);
        }
        body
    }

    /// Whether a subscription as Graph lists or gets it is the one these settings ask for: the
    /// same resource, delivered to the same hub, and (rich) encrypted for the same certificate.
    /// This is all Graph shows of a subscription that could tell the fleet's from another's.
    pub fn fits(&self, listed: &Value) -> bool {
        let text = |key: &str| listed.get(key).and_then(Value::as_str).unwrap_or_default();
        let same_resource = text("resource").eq_ignore_ascii_case(&self.resource());
        let same_hub = text("notificationUrl").eq_ignore_ascii_case(&self.notification_url());
        let same_certificate = match &self.rich {
            Some(ring) => ring
                .current()
                .is_some_and(|key| text("encryptionCertificateId") == key.id),
            None => true,
        };
        same_resource && same_hub && same_certificate
    }
}

/// The `notificationUrl` of Event Hubs delivery (B.4):
/// `EventHub:https://<ns>.servicebus.windows.net/eventhubname/<hub>?tenantId=<tenant>`.
pub fn event_hub_url(namespace: &str, hub: &str, tenant: &str) -> String {
    format!(
        "EventHub:https://{namespace}.servicebus.windows.net/eventhubname/{hub}?tenantId={tenant}"
    )
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
        // Listing shows this app's subscriptions for this user only (B.8): the fleet's, and
        // those of Beacons outside the fleet signed in as the same account.
        let listed = self.graph.get_all("/subscriptions", 1000).await?;
        let mut state = self.state.lock().await;
        let known = state.subscription.as_ref().map(|s| s.id.clone());
        let id_of = |item: &Value| {
            item.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        // The one to keep: ours if it still fits, otherwise one that fits (another box made it).
        let keep = listed
            .iter()
            .filter(|item| self.settings.fits(item))
            .max_by_key(|item| {
                (
                    known.as_deref() == Some(id_of(item).as_str()),
                    self.client_states.knows(&id_of(item)),
                )
            })
            .map(|item| Subscription {
                id: id_of(item),
                resource: self.settings.resource(),
                expires_at: expiry_of(item).unwrap_or(now),
                renewed_at: state
                    .subscription
                    .as_ref()
                    .filter(|s| s.id == id_of(item))
                    .map_or(now, |s| s.renewed_at),
            });
        for item in &listed {
            let id = id_of(item);
            if keep.as_ref().is_some_and(|k| k.id == id) {
                continue;
            }
            let resource = item
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if super::emergency_events::is_resource(resource) {
                // The emergency-event subscriptions are the call-event keeper's (app-only), and
                // carry the fleet's clientState too: never this keeper's to delete.
                continue;
            }
            if !self.client_states.knows(&id) {
                // Not verifiably the fleet's (another hub, another resource, another Beacon):
                // never deleted.
                tracing::info!(
                    id,
                    "leaving alone a subscription this fleet cannot verify as its own"
                );
                continue;
            }
            // The fleet's own, no longer wanted (settings changed): delete it.
            tracing::info!(
                id,
                "deleting a subscription of this fleet that is no longer wanted"
            );
            match self
                .graph
                .send(Method::DELETE, &format!("/subscriptions/{id}"), None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
            self.forget(&id);
        }
        let listed_ids: Vec<String> = listed.iter().map(id_of).collect();
        for id in self.client_states.subscriptions() {
            if !listed_ids.contains(&id) {
                self.forget(&id);
            }
        }
        if let Some(kept) = &keep {
            if known.as_deref() != Some(kept.id.as_str()) {
                tracing::info!(id = kept.id, expires_at = %kept.expires_at, "subscription adopted (the fleet's, listed by Graph)");
            }
            self.remember(&kept.id)?;
        }
        state.removed = keep.is_none();
        state.subscription = keep.or(state.subscription.take());
        state.last_reconcile = Some(now);
        Ok(())
    }

    /// Records a subscription as the fleet's (before its first notification can arrive).
    fn remember(&self, id: &str) -> Result<(), GraphError> {
        self.client_states
            .adopt(&self.store, id)
            .map_err(|e| GraphError::Body(e.to_string()))
    }

    fn forget(&self, id: &str) {
        if let Err(e) = self.client_states.forget(&self.store, id) {
            tracing::error!(id, error = %e, "cannot forget a subscription");
        }
    }

    async fn create(&self, now: DateTime<Utc>) -> Result<(), GraphError> {
        let client_state = self
            .client_states
            .client_state()
            .ok_or_else(|| GraphError::Body("the fleet's clientState is unreadable".into()))?;
        let expires = schedule::expiry_after(now, self.settings.lifetime_minutes);
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
                self.remember(&id)?;
                let expires_at = expiry_of(&created).unwrap_or(expires);
                self.keep(&id, expires_at, now).await;
                tracing::info!(id, %expires_at, "subscription created");
                Ok(())
            }
            Err(e) if e.status() == Some(409) => {
                // "Subscription Id <id> already exists for the requested combination" (B.5):
                // another box of the fleet made it first, or someone else did. Adopt it when
                // Graph shows it is the one we ask for; never delete it.
                let Some(id) = conflict_id(&e) else {
                    return Err(e);
                };
                let existing = match self.graph.get(&format!("/subscriptions/{id}")).await {
                    Ok(existing) => existing,
                    // Gone meanwhile (expired, deleted): the next step creates again.
                    Err(gone) if gone.status() == Some(404) => return Ok(()),
                    Err(other) => return Err(other),
                };
                if !self.settings.fits(&existing) {
                    tracing::warn!(
                        id,
                        "the service account's subscription is not this fleet's: left alone"
                    );
                    return Err(e);
                }
                self.remember(&id)?;
                let expires_at = expiry_of(&existing).unwrap_or(now);
                self.keep(&id, expires_at, now).await;
                tracing::info!(id, %expires_at, "subscription adopted (the fleet's, made by another box)");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `id` the subscription kept; forgets the one it replaces.
    async fn keep(&self, id: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) {
        let old = {
            let mut state = self.state.lock().await;
            let old = state.subscription.replace(Subscription {
                id: id.to_string(),
                resource: self.settings.resource(),
                expires_at,
                renewed_at: now,
            });
            state.removed = false;
            state.reauthorize_requested = false;
            old
        };
        if let Some(old) = old.filter(|o| o.id != id) {
            self.forget(&old.id);
        }
    }

    async fn renew(&self, id: &str, now: DateTime<Utc>) -> Result<(), GraphError> {
        let expires = schedule::expiry_after(now, self.settings.lifetime_minutes);
        let body =
            json!({"expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Millis, true)});
        match self
            .graph
            .send(Method::PATCH, &format!("/subscriptions/{id}"), Some(&body))
            .await
        {
            Ok((_, renewed)) => {
                let expires_at = expiry_of(&renewed).unwrap_or(expires);
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

    /// Gives the fleet a new clientState and peer key (a stolen box holds them) and replaces
    /// the fleet's subscription with one carrying them: Graph does not let a subscription's
    /// clientState or certificate change (B.8), so the fleet's own subscription is deleted and
    /// created again at once — for the ring's current certificate, so the caller rotates the
    /// rich-notification key first ([`super::keys::rotate`]). The previous state stays accepted
    /// for notifications already on their way. The other boxes are handed the new secrets by
    /// the caller (`outputs::peers`).
    pub async fn rotate_fleet_secrets(&self, now: DateTime<Utc>) -> Result<(), GraphError> {
        let rotated = self
            .client_states
            .secrets()
            .ok_or_else(|| GraphError::Body("the fleet's secrets are unreadable".into()))?
            .rotated(now);
        self.client_states
            .replace(&self.store, rotated)
            .map_err(|e| GraphError::Body(e.to_string()))?;
        self.replace_subscription(now).await.map(|_| ())
    }

    /// Deletes the subscription this box keeps and creates it again with the fleet's current
    /// clientState. For a rotation, and for an admin's deliberate choice on the settings page
    /// when the subscription is a stray whose clientState was lost (it fits, so it is adopted,
    /// but every notification of it is refused). Returns the deleted subscription's id.
    pub async fn replace_subscription(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, GraphError> {
        let old = self.state.lock().await.subscription.clone();
        if let Some(old) = &old {
            match self
                .graph
                .send(Method::DELETE, &format!("/subscriptions/{}", old.id), None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
            tracing::warn!(id = old.id, "subscription deleted to be made again");
            self.forget(&old.id);
            self.state.lock().await.removed = true;
        }
        let result = self.create(now).await;
        self.wake.notify_one();
        result.map(|()| old.map(|o| o.id))
    }

    /// Leaves the fleet: this box becomes a fleet of one with new secrets and looks at Graph's
    /// list again. The fleet's subscription is the others' and is left alone; Graph allows one
    /// per service account and resource, so this box needs its own service account (or hub)
    /// from now on. Returns the new fleet's id.
    pub async fn leave_fleet(&self) -> Result<String, GraphError> {
        let own = super::fleet::FleetSecrets::generate();
        let id = own.id.clone();
        self.client_states
            .replace(&self.store, own)
            .map_err(|e| GraphError::Body(e.to_string()))?;
        {
            let mut state = self.state.lock().await;
            state.subscription = None;
            state.removed = true;
            state.last_reconcile = None;
        }
        self.wake.notify_one();
        Ok(id)
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

/// A subscription's `expirationDateTime`.
fn expiry_of(subscription: &Value) -> Option<DateTime<Utc>> {
    subscription
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
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
            } else if *status == 409 {
                let id = conflict_id(error).unwrap_or_else(|| "?".into());
                format!("The service account already has a subscription to its chats ({id}) that this fleet cannot verify as its own: it delivers to another Event Hub or for another certificate, or a Beacon outside this fleet made it. Beacon never deletes a subscription it cannot verify. Join that Beacon to this fleet (Settings → Fleet), or make the Event Hub settings the same; Graph ends the other subscription when nobody renews it (3 days at most).")
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
            lifetime_minutes: schedule::LIFETIME_MINUTES,
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
        // What Graph lists of it (no clientState, B.8) fits these settings, and only these.
        let listed = json!({"id": "s", "resource": body["resource"], "notificationUrl": body["notificationUrl"], "clientState": null});
        assert!(settings().fits(&listed));
        let other_hub = SubscriptionSettings {
            hub: "elsewhere".into(),
            ..settings()
        };
        assert!(!other_hub.fits(&listed));
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
        assert!(explain(&api(
            409,
            "Subscription Id 7f0e-11 already exists for the requested combination"
        ))
        .contains("(7f0e-11) that this fleet cannot verify"));
        assert_eq!(
            conflict_id(&api(
                409,
                "Subscription Id 7f0e-11 already exists for the requested combination"
            )),
            Some("7f0e-11".into())
        );
    }
}
