//! The `[graph]` section: Microsoft Graph and the identity platform (where, which app
//! registration, which subscription model).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// `[graph]`: Microsoft Graph and the identity platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Graph base URL including the version.
    pub graph_url: String,
    /// Identity platform base URL (the tenant is appended).
    pub login_url: String,
    /// Directory (tenant) id or domain.
    pub tenant_id: Option<String>,
    /// Application (client) id of the app registration.
    pub client_id: Option<String>,
    /// Only sent when the tenant demands a confidential client. Secret.
    pub client_secret: Option<Secret>,
    /// When the client secret expires (from the Entra portal), to warn 30 days ahead.
    pub client_secret_expires: Option<chrono::NaiveDate>,
    /// `tenantId` in the Event Hub notification URL: the domain of the tenant that owns the
    /// hub. Default: `tenant_id`.
    pub hub_tenant: Option<String>,
    /// Subscribe with `?model=B` (metered; avoids the 500-messages-a-month evaluation quota
    /// after which notifications stop silently).
    pub model_b: bool,
    /// Ask Graph for rich notifications (the message encrypted in the notification) instead of
    /// fetching each message.
    pub rich_notifications: bool,
    /// The subscription lifetime to ask Graph for, in minutes (at most 4,300; Graph raises
    /// anything under 45). Each box of a fleet renews at half of it.
    pub subscription_minutes: i64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            graph_url: "https://graph.microsoft.com/v1.0".into(),
            login_url: "https://login.microsoftonline.com".into(),
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_secret_expires: None,
            hub_tenant: None,
            model_b: false,
            rich_notifications: false,
            subscription_minutes: crate::graph::schedule::LIFETIME_MINUTES,
        }
    }
}
