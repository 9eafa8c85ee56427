//! The `[call_events]` section: which emergency calling policies to watch through Graph's
//! emergency call events (graph-teams.md B.10), how the app registration proves itself, and
//! where Graph should deliver them.

use serde::{Deserialize, Serialize};

use super::super::config::GraphConfig;

/// How the app registration signs in for its app-only token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A certificate the appliance makes; its public part is uploaded in Entra (the default:
    /// nothing secret leaves the box).
    #[default]
    Certificate,
    /// `[graph].client_secret`.
    Secret,
}

/// `[call_events]`: Graph emergency call events, the second source. Empty `policies` (the
/// default) turns it off: the chat path alone, as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallEventsConfig {
    /// Names of the Teams emergency calling policies whose calls to watch, e.g.
    /// `["HQ-Emergency"]`. One subscription each.
    pub policies: Vec<String>,
    /// `certificate` (default) or `secret`.
    pub credential: CredentialKind,
    /// Deliver into this Event Hub instead of the chat subscription's
    /// (`EventHub:https://<namespace>.servicebus.windows.net/eventhubname/<hub>?tenantId=<domain>`),
    /// for a second hub. Absent: the same hub as the chat messages.
    pub notification_url: Option<String>,
    /// The subscription lifetime to ask for, in minutes (at most 1,439: Graph grants a day).
    /// Renewed at half of it.
    pub lifetime_minutes: i64,
}

/// Graph's one-day maximum, less a minute for clock skew.
pub const MAX_LIFETIME_MINUTES: i64 = 24 * 60 - 1;
/// Longest policy name accepted (Teams policy identities are short; this only bounds input).
const POLICY_MAX: usize = 256;

impl CallEventsConfig {
    /// Whether call events are wanted at all.
    pub fn enabled(&self) -> bool {
        !self.policies.is_empty()
    }

    /// Checks the section against `[graph]`. Returns (key, reason in words).
    pub fn validate(&self, graph: &GraphConfig) -> Result<(), (&'static str, String)> {
        let mut seen = Vec::new();
        for policy in &self.policies {
            let trimmed = policy.trim();
            if trimmed.is_empty()
                || trimmed.len() > POLICY_MAX
                || trimmed.chars().any(char::is_control)
            {
                return Err((
                    "call_events.policies",
                    format!("a policy name is 1 to {POLICY_MAX} printable characters, as the emergency calling policy is named in the Teams admin center"),
                ));
            }
            if seen.iter().any(|s: &&str| s.eq_ignore_ascii_case(trimmed)) {
                return Err((
                    "call_events.policies",
                    format!("the policy '{trimmed}' is listed twice"),
                ));
            }
            seen.push(trimmed);
        }
        if !(1..=MAX_LIFETIME_MINUTES).contains(&self.lifetime_minutes) {
            return Err((
                "call_events.lifetime_minutes",
                format!("must be 1 to {MAX_LIFETIME_MINUTES} minutes (Graph grants these subscriptions a day at most)"),
            ));
        }
        if let Some(url) = &self.notification_url {
            if !url.starts_with("EventHub:https://") || !url.contains("?tenantId=") {
                return Err((
                    "call_events.notification_url",
                    "expected EventHub:https://<namespace>.servicebus.windows.net/eventhubname/<hub>?tenantId=<tenant domain>".into(),
                ));
            }
        }
        if self.enabled() {
            if graph.tenant_id.is_none() || graph.client_id.is_none() {
                return Err((
                    "call_events.policies",
                    "emergency call events need graph.tenant_id and graph.client_id (the app registration)".into(),
                ));
            }
            if self.credential == CredentialKind::Secret && graph.client_secret.is_none() {
                return Err((
                    "call_events.credential",
                    "\"secret\" needs graph.client_secret; or use \"certificate\" (the default)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The policy names, trimmed.
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.trim().to_string()).collect()
    }
}

impl Default for CallEventsConfig {
    fn default() -> Self {
        CallEventsConfig {
            policies: Vec::new(),
            credential: CredentialKind::Certificate,
            notification_url: None,
            lifetime_minutes: MAX_LIFETIME_MINUTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn graph() -> GraphConfig {
        GraphConfig {
            tenant_id: Some("contoso.com".into()),
            client_id: Some("app".into()),
            ..GraphConfig::default()
        }
    }

    fn with(policies: &[&str]) -> CallEventsConfig {
        CallEventsConfig {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            ..CallEventsConfig::default()
        }
    }

    #[test]
    fn off_by_default_and_any_graph_passes() {
        assert!(!CallEventsConfig::default().enabled());
        assert_eq!(
            CallEventsConfig::default().validate(&GraphConfig::default()),
            Ok(())
        );
    }

    #[test]
    fn each_mistake_names_its_key() {
        let key = |c: &CallEventsConfig, g: &GraphConfig| c.validate(g).err().map(|(k, _)| k);
        assert_eq!(
            key(&with(&["HQ", "hq"]), &graph()),
            Some("call_events.policies")
        );
        assert_eq!(key(&with(&[" "]), &graph()), Some("call_events.policies"));
        assert_eq!(
            key(&with(&["HQ"]), &GraphConfig::default()),
            Some("call_events.policies")
        );
        let secret = CallEventsConfig {
            credential: CredentialKind::Secret,
            ..with(&["HQ"])
        };
        assert_eq!(key(&secret, &graph()), Some("call_events.credential"));
        let with_secret = GraphConfig {
            client_secret: Some(Secret::new("s")),
            ..graph()
        };
        assert_eq!(key(&secret, &with_secret), None);
        let url = CallEventsConfig {
            notification_url: Some("https://hooks.example".into()),
            ..with(&["HQ"])
        };
        assert_eq!(key(&url, &graph()), Some("call_events.notification_url"));
        let long = CallEventsConfig {
            lifetime_minutes: 1440,
            ..with(&["HQ"])
        };
        assert_eq!(key(&long, &graph()), Some("call_events.lifetime_minutes"));
        assert_eq!(key(&with(&["HQ-Emergency", "Branch"]), &graph()), None);
    }
}
