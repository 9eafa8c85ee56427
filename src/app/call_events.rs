//! The second source's cloud side, assembled from the settings in force: the app-only token
//! (the appliance's certificate, made on first use, or the client secret) and the keeper of
//! one emergency-event subscription per configured policy, delivering into the chat
//! subscription's Event Hub or `[call_events].notification_url`. No policy configured:
//! nothing is started and the chat path works alone, as before.

use std::sync::Arc;

use chrono::Utc;

use super::Core;
use crate::config::Config;
use crate::eventhub::connection::EventHubTarget;
use crate::graph::call_events::{
    AppCertificate, AppCredential, AppToken, AppTokenSettings, CallEventKeeper, CallEventSettings,
    CallEventsStatus, CredentialKind, PolicyStatus,
};
use crate::graph::retry::RetryPolicy;
use crate::graph::subscription::event_hub_url;

/// Starts nothing (`Ok(None)`) without policies; otherwise the keeper, ready to run. The
/// error says in words what is missing.
pub(crate) fn keeper(
    config: &Config,
    core: &Core,
    target: Option<&EventHubTarget>,
) -> Result<Option<Arc<CallEventKeeper>>, String> {
    let section = &config.call_events;
    if !section.enabled() {
        return Ok(None);
    }
    let graph = &config.graph;
    let (Some(tenant), Some(client_id)) = (&graph.tenant_id, &graph.client_id) else {
        return Err(
            "emergency call events need the app registration (tenant and client id)".into(),
        );
    };
    let credential = match section.credential {
        CredentialKind::Certificate => AppCredential::Certificate(Arc::new(
            AppCertificate::load_or_create(&core.store, Utc::now())
                .map_err(|e| format!("the app registration's certificate: {e}"))?,
        )),
        CredentialKind::Secret => AppCredential::Secret(
            graph
                .client_secret
                .clone()
                .ok_or("call_events.credential is \"secret\" but no client secret is set")?,
        ),
    };
    let notification_url = match (&section.notification_url, target) {
        (Some(url), _) => url.clone(),
        (None, Some(target)) => event_hub_url(
            target.namespace(),
            target.topic(),
            graph.hub_tenant.as_deref().unwrap_or(tenant),
        ),
        (None, None) => {
            return Err("emergency call events are delivered into the Event Hub: set it up first (or give call_events.notification_url)".into())
        }
    };
    let rich = core.keys.clone();
    if rich.is_empty() {
        return Err("no rich-notification key: emergency call events are encrypted for it".into());
    }
    let app = AppToken::new(
        AppTokenSettings {
            login_url: graph.login_url.clone(),
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            credential,
        },
        RetryPolicy::default(),
    )
    .map_err(|e| e.to_string())?;
    CallEventKeeper::new(
        &graph.graph_url,
        app,
        core.store.clone(),
        core.client_states.clone(),
        CallEventSettings {
            policies: section.policy_names(),
            notification_url,
            rich,
            lifetime: chrono::Duration::minutes(section.lifetime_minutes),
        },
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The status of a keeper that could not start: every policy with the reason.
pub(crate) fn not_started(config: &Config, reason: &str) -> CallEventsStatus {
    let now = Utc::now();
    CallEventsStatus {
        policies: config
            .call_events
            .policy_names()
            .into_iter()
            .map(|policy| PolicyStatus {
                policy,
                problem: Some(reason.to_string()),
                problem_since: Some(now),
                ..PolicyStatus::default()
            })
            .collect(),
    }
}
