//! `beacon login`: the service account's device-code sign-in from the command line.

use super::cloud_link::graph_source;
use super::{AppError, Core};
use crate::config::Config;
use crate::graph::account::Account;
use crate::graph::auth::DeviceCodePrompt;
use crate::recognise::MessageSource;

/// `beacon login`: device-code sign-in of the service account, then `GET /me`.
pub async fn login<S>(config: Config, show: S) -> Result<Account, AppError>
where
    S: FnOnce(&DeviceCodePrompt),
{
    let core = Core::open(&config)?;
    let (source, tokens) = graph_source(&config, &core.store)?;
    let (MessageSource::Graph(graph), Some(tokens)) = (source, tokens) else {
        return Err(AppError::Config(
            "graph.tenant_id and graph.client_id must be set before signing in".into(),
        ));
    };
    tokens
        .sign_in(show, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| AppError::Config(e.to_string()))?;
    crate::graph::account::fetch_and_store(&graph, &core.store)
        .await
        .map_err(|e| AppError::Config(e.to_string()))
}
