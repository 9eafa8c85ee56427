//! The keeper of the emergency-event subscriptions, one per configured emergency calling
//! policy (graph-teams.md B.10): created with the fleet's clientState and the
//! rich-notification certificate, delivered into the Event Hub, renewed at half-life (a day
//! at most), adopted on `409 Conflict` when Graph's list shows one with our resource and our
//! notification URL (another box of the fleet made it) — and never deleted, ours or not.
//!
//! It holds only an app-only Graph client ([`GraphClient::app_only`]): these subscriptions
//! accept no delegated token, and the app-only token never serves the chat path. Failures
//! become sentences per policy in [`CallEventsStatus`]: admin consent missing (the token
//! lacks the permission, or Graph answers 403), Graph refusing Event Hubs delivery for this
//! resource (Microsoft does not document whether it accepts it), a credential refused.

use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify};

use super::app_token::{consent_missing, AppToken, RETRY_AFTER_REFUSAL};
use crate::graph::client::{GraphClient, GraphError};
use crate::graph::client_state::ClientStates;
use crate::graph::crypto::KeyRing;
use crate::graph::emergency_events::{self, MAX_LIFETIME};
use crate::graph::notification::LifecycleEvent;
use crate::graph::retry::RetryPolicy;
use crate::store::Store;

/// What to subscribe to and where Graph should deliver.
#[derive(Debug, Clone)]
pub struct CallEventSettings {
    /// The emergency calling policies, one subscription each.
    pub policies: Vec<String>,
    /// `EventHub:…` — the chat subscription's hub, or `[call_events].notification_url`.
    pub notification_url: String,
    /// The rich-notification keys: subscriptions are made for the current certificate (call
    /// events are rich only).
    pub rich: KeyRing,
    /// The lifetime to ask for (at most a day).
    pub lifetime: Duration,
}

/// One policy's subscription, for the setup page, the status page and health.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyStatus {
    pub policy: String,
    pub subscription_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_renewal: Option<DateTime<Utc>>,
    /// The last failure in words, and since when it has been failing.
    pub problem: Option<String>,
    pub problem_since: Option<DateTime<Utc>>,
}

/// Every policy's subscription. Empty when call events are off.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallEventsStatus {
    pub policies: Vec<PolicyStatus>,
}

#[derive(Debug, Clone)]
struct Held {
    id: String,
    expires_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    /// Graph asked for reauthorization: renew at the next step (a renewal reauthorizes, B.8).
    renew_now: bool,
}

/// See the module docs.
pub struct CallEventKeeper {
    graph: GraphClient,
    store: Store,
    client_states: ClientStates,
    settings: CallEventSettings,
    held: Mutex<Vec<Option<Held>>>,
    status: watch::Sender<CallEventsStatus>,
    wake: Notify,
}

impl CallEventKeeper {
    /// A keeper calling Graph at `graph_url` with the app-only token `app`.
    pub fn new(
        graph_url: &str,
        app: Arc<AppToken>,
        store: Store,
        client_states: ClientStates,
        settings: CallEventSettings,
    ) -> Result<Arc<Self>, GraphError> {
        let graph = GraphClient::app_only(graph_url, app, RetryPolicy::default())?;
        let status = CallEventsStatus {
            policies: settings
                .policies
                .iter()
                .map(|p| PolicyStatus {
                    policy: p.clone(),
                    ..PolicyStatus::default()
                })
                .collect(),
        };
        Ok(Arc::new(CallEventKeeper {
            graph,
            store,
            client_states,
            held: Mutex::new(vec![None; settings.policies.len()]),
            settings,
            status: watch::channel(status).0,
            wake: Notify::new(),
        }))
    }

    pub fn status(&self) -> watch::Receiver<CallEventsStatus> {
        self.status.subscribe()
    }

    pub fn settings(&self) -> &CallEventSettings {
        &self.settings
    }

    /// Creates or renews what is due at `now`; returns when next to run.
    pub async fn step(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut next = now + MAX_LIFETIME;
        for (index, policy) in self.settings.policies.iter().enumerate() {
            let due = self.held.lock().await[index].as_ref().map(|h| {
                if h.renew_now {
                    now
                } else {
                    emergency_events::renew_at(h.renewed_at, h.expires_at)
                }
            });
            let result = match due {
                None => self.create(index, policy, now).await,
                Some(at) if now >= at => match self.renew(index, policy, now).await {
                    // Gone (expired or deleted in Graph): make it again at once.
                    Ok(()) if self.held.lock().await[index].is_none() => {
                        self.create(index, policy, now).await
                    }
                    other => other,
                },
                Some(_) => Ok(()),
            };
            let held = self.held.lock().await[index].clone();
            let wake = match (&result, &held) {
                (Err(_), _) | (Ok(()), None) => {
                    now + Duration::from_std(RETRY_AFTER_REFUSAL).unwrap_or_default()
                }
                (Ok(()), Some(h)) => emergency_events::renew_at(h.renewed_at, h.expires_at),
            };
            next = next.min(wake);
            self.report(index, held.as_ref(), result.err(), now);
        }
        next
    }

    fn report(
        &self,
        index: usize,
        held: Option<&Held>,
        problem: Option<String>,
        now: DateTime<Utc>,
    ) {
        self.status.send_modify(|status| {
            let Some(entry) = status.policies.get_mut(index) else {
                return;
            };
            entry.subscription_id = held.map(|h| h.id.clone());
            entry.expires_at = held.map(|h| h.expires_at);
            entry.last_renewal = held.map(|h| h.renewed_at);
            entry.problem_since = problem.as_ref().map(|_| entry.problem_since.unwrap_or(now));
            // Said once when it starts or changes, not at every retry.
            match (&problem, &entry.problem) {
                (Some(new), old) if old.as_ref() != Some(new) => {
                    tracing::error!(
                        policy = entry.policy,
                        problem = new,
                        "emergency-event subscription"
                    )
                }
                (None, Some(_)) => {
                    tracing::info!(
                        policy = entry.policy,
                        "emergency-event subscription working again"
                    )
                }
                _ => {}
            }
            entry.problem = problem;
        });
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        (now + self.settings.lifetime).min(emergency_events::expiry(now))
    }

    async fn create(&self, index: usize, policy: &str, now: DateTime<Utc>) -> Result<(), String> {
        let client_state = self
            .client_states
            .client_state()
            .ok_or("the fleet's clientState is unreadable")?;
        let key = self
            .settings
            .rich
            .current()
            .ok_or("no rich-notification key: emergency call events are encrypted for it")?;
        let mut body = emergency_events::subscription_request(
            policy,
            &self.settings.notification_url,
            client_state.expose(),
            &key.certificate_base64(),
            &key.id,
            now,
        );
        body["expirationDateTime"] =
            json!(self.expiry(now).to_rfc3339_opts(SecondsFormat::Secs, true));
        match self
            .graph
            .send(Method::POST, "/subscriptions", Some(&body))
            .await
        {
            Ok((_, created)) => {
                let id = text(&created, "id")
                    .ok_or("Graph's answer to the emergency-event subscription has no id")?;
                self.hold(
                    index,
                    &id,
                    expiry_of(&created).unwrap_or_else(|| self.expiry(now)),
                    now,
                )
                .await?;
                tracing::info!(policy, id, "emergency-event subscription created");
                Ok(())
            }
            Err(e) if e.status() == Some(409) => self.adopt(index, policy, now).await,
            Err(e) => Err(explain(policy, &e)),
        }
    }

    /// On 409: the one in Graph's list with our resource and our notification URL.
    async fn adopt(&self, index: usize, policy: &str, now: DateTime<Utc>) -> Result<(), String> {
        let listed = self
            .graph
            .get_all("/subscriptions", 1000)
            .await
            .map_err(|e| explain(policy, &e))?;
        let resource = emergency_events::resource(policy);
        let ours = listed.iter().find(|item| {
            let same = |key: &str, want: &str| {
                text(item, key).is_some_and(|v| {
                    v.trim_start_matches('/')
                        .eq_ignore_ascii_case(want.trim_start_matches('/'))
                })
            };
            same("resource", &resource) && same("notificationUrl", &self.settings.notification_url)
        });
        let Some(ours) = ours else {
            return Err(format!("Graph already has an emergency-event subscription for the policy '{policy}' that delivers elsewhere (another Event Hub, or another application's). Beacon never deletes a subscription it cannot verify: make the Event Hub settings the same as the one that made it, or remove it in Graph."));
        };
        let id = text(ours, "id").ok_or("a listed subscription has no id")?;
        let expires_at = expiry_of(ours).unwrap_or(now);
        self.hold(index, &id, expires_at, now).await?;
        tracing::info!(policy, id, %expires_at, "emergency-event subscription adopted (made by another box of the fleet)");
        // It may be about to expire: renew it now rather than at half of what is left.
        if expires_at - now < self.settings.lifetime / 2 {
            return self.renew(index, policy, now).await;
        }
        Ok(())
    }

    async fn hold(
        &self,
        index: usize,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        // The fleet's from now on: its notifications carry the fleet's clientState.
        self.client_states
            .adopt(&self.store, id)
            .map_err(|e| format!("cannot record the subscription: {e}"))?;
        self.held.lock().await[index] = Some(Held {
            id: id.to_string(),
            expires_at,
            renewed_at: now,
            renew_now: false,
        });
        Ok(())
    }

    async fn renew(&self, index: usize, policy: &str, now: DateTime<Utc>) -> Result<(), String> {
        let Some(id) = self.held.lock().await[index].as_ref().map(|h| h.id.clone()) else {
            return Ok(());
        };
        let expires = self.expiry(now);
        let body =
            json!({"expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Secs, true)});
        match self
            .graph
            .send(Method::PATCH, &format!("/subscriptions/{id}"), Some(&body))
            .await
        {
            Ok((_, renewed)) => {
                let expires_at = expiry_of(&renewed).unwrap_or(expires);
                self.held.lock().await[index] = Some(Held {
                    id: id.clone(),
                    expires_at,
                    renewed_at: now,
                    renew_now: false,
                });
                tracing::info!(policy, id, %expires_at, "emergency-event subscription renewed");
                Ok(())
            }
            Err(e) if e.status() == Some(404) => {
                tracing::warn!(
                    policy,
                    id,
                    "emergency-event subscription gone (404 on renew); creating a new one"
                );
                self.held.lock().await[index] = None;
                Ok(())
            }
            Err(e) => Err(explain(policy, &e)),
        }
    }

    /// Deletes the subscriptions this keeper holds and makes them again: after a rotation (a
    /// stolen box), with the fleet's new clientState and certificate, which Graph does not let
    /// a subscription change. The old ids stay known, so events already on their way for them
    /// are still taken (with the previous clientState, while it is accepted). The error names
    /// each policy that failed; its subscription is then made at the keeper's next step.
    pub async fn replace_all(&self, now: DateTime<Utc>) -> Result<(), String> {
        let held: Vec<Option<Held>> = self.held.lock().await.clone();
        let mut problems = Vec::new();
        for (index, policy) in self.settings.policies.iter().enumerate() {
            if let Some(old) = &held[index] {
                match self
                    .graph
                    .send(Method::DELETE, &format!("/subscriptions/{}", old.id), None)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => {
                        problems.push(explain(policy, &e));
                        continue;
                    }
                }
                tracing::warn!(
                    policy,
                    id = old.id,
                    "emergency-event subscription deleted to be made again"
                );
                self.held.lock().await[index] = None;
            }
            if let Err(problem) = self.create(index, policy, now).await {
                problems.push(problem);
            }
        }
        self.wake.notify_one();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join(" "))
        }
    }

    /// Reacts to a lifecycle event from the hub; returns whether it concerned one of these
    /// subscriptions (the chat keeper gets the others). `reauthorizationRequired` renews it
    /// at once (a renewal also reauthorizes, graph-teams.md B.8; ignored, Graph pauses
    /// delivery); `subscriptionRemoved` makes it again at once; `missed` has nothing to catch
    /// up with (there is no GET for a call event: the chat path still reports the call), so
    /// it is said in the log.
    pub async fn lifecycle(&self, subscription_id: &str, event: LifecycleEvent) -> bool {
        let mut held = self.held.lock().await;
        let Some(index) = held
            .iter()
            .position(|h| h.as_ref().is_some_and(|h| h.id == subscription_id))
        else {
            return false;
        };
        let policy = self
            .settings
            .policies
            .get(index)
            .cloned()
            .unwrap_or_default();
        match event {
            LifecycleEvent::ReauthorizationRequired => {
                if let Some(h) = held[index].as_mut() {
                    h.renew_now = true;
                }
                tracing::info!(
                    policy,
                    subscription_id,
                    "emergency-event subscription needs reauthorization: renewing it now"
                );
            }
            LifecycleEvent::SubscriptionRemoved => {
                held[index] = None;
                tracing::warn!(
                    policy,
                    subscription_id,
                    "emergency-event subscription removed by Graph: making it again"
                );
            }
            LifecycleEvent::Missed => {
                tracing::warn!(policy, subscription_id, "Graph says emergency call events were missed; the chat path still reports the calls");
            }
        }
        drop(held);
        self.wake.notify_one();
        true
    }

    /// Does what is due now (the setup page's "apply"); returns the status.
    pub async fn settle(&self, now: DateTime<Utc>) -> CallEventsStatus {
        self.step(now).await;
        self.status.borrow().clone()
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let next = self.step(Utc::now()).await;
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

fn expiry_of(subscription: &Value) -> Option<DateTime<Utc>> {
    subscription
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// A failure of one policy's subscription in words that name the fix.
pub fn explain(policy: &str, error: &GraphError) -> String {
    match error {
        GraphError::Api { status: 403, .. } => consent_missing(),
        GraphError::Api {
            status: 400,
            message,
            ..
        } if refuses_event_hubs(message) => {
            format!("Graph refused Event Hubs delivery for emergency call events: {message}")
        }
        GraphError::Api {
            status, message, ..
        } => format!(
            "Graph refused the emergency-event subscription for the policy '{policy}' ({status}: {message})."
        ),
        GraphError::Auth(e) => e.to_string(),
        other => format!("emergency-event subscription for the policy '{policy}': {other}"),
    }
}

/// Whether a 400's message is about the notification URL / Event Hubs delivery.
fn refuses_event_hubs(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("notificationurl")
        || lower.contains("notification url")
        || lower.contains("event hub")
        || lower.contains("eventhub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> GraphError {
        GraphError::Api {
            status,
            code: "x".into(),
            message: message.into(),
        }
    }

    #[test]
    fn failures_are_sentences_that_name_the_fix() {
        assert!(explain("HQ", &api(403, "Forbidden")).contains("Grant admin consent"));
        assert_eq!(
            explain("HQ", &api(400, "EventHub notificationUrl is not supported for this resource.")),
            "Graph refused Event Hubs delivery for emergency call events: EventHub notificationUrl is not supported for this resource."
        );
        assert!(explain("HQ", &api(400, "expirationDateTime too far")).contains("policy 'HQ'"));
    }
}
