//! The signed-in service account (`GET /me`): its object id (the subscription's resource and
//! "messages from the service account are never emergencies"), UPN and display name.

use serde::{Deserialize, Serialize};

use super::client::{GraphClient, GraphError};
use crate::store::Store;

const ACCOUNT_KEY: &str = "graph/account";

/// Who Beacon is signed in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub upn: Option<String>,
    pub display_name: Option<String>,
}

/// Asks Graph who we are and remembers it.
pub async fn fetch_and_store(graph: &GraphClient, store: &Store) -> Result<Account, GraphError> {
    let me = graph.get("/me").await?;
    let text = |k: &str| me.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let account = Account {
        id: text("id").ok_or_else(|| GraphError::Body("/me has no id".into()))?,
        upn: text("userPrincipalName"),
        display_name: text("displayName"),
    };
    store
        .settings
        .insert(ACCOUNT_KEY, &serde_json::json!(account))
        .and_then(|_| store.flush())
        .map_err(|e| GraphError::Body(e.to_string()))?;
    Ok(account)
}

/// The remembered account, if any.
pub fn stored(store: &Store) -> Option<Account> {
    store
        .settings
        .get(ACCOUNT_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
}
