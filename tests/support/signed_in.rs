//! A service account signed in against the fake Microsoft cloud, the way a person does it
//! with `beacon login`: the code is shown, the person approves it, tokens are stored.

use std::sync::Arc;
use std::time::Duration;

use beacon::graph::auth::{OAuthSettings, DEFAULT_SCOPES};
use beacon::graph::client::GraphClient;
use beacon::graph::retry::RetryPolicy;
use beacon::graph::subscription::SubscriptionSettings;
use beacon::graph::tokens::TokenKeeper;
use beacon::secret::Secret;
use beacon::store::Store;

use super::fake_cloud::FakeCloud;

/// Sign-in settings pointing at the fake.
pub fn oauth(cloud: &FakeCloud, secret: Option<&str>) -> OAuthSettings {
    OAuthSettings {
        login_url: cloud.login_url(),
        tenant: cloud.options().tenant_domain.clone(),
        client_id: cloud.options().client_id.clone(),
        client_secret: secret.map(Secret::new),
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// Approves the first device code the fake issues (the person at the browser).
pub async fn approve_first_code(cloud: &FakeCloud) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(code) = cloud.pending_user_codes().first() {
            cloud.approve(code);
            return;
        }
    }
}

/// Signs the fake's user in with a new token keeper on `store`; returns it and a Graph client.
pub async fn sign_in(cloud: &FakeCloud, store: &Store) -> (Arc<TokenKeeper>, GraphClient) {
    let tokens = TokenKeeper::new(oauth(cloud, None), store.clone()).expect("keeper");
    let (signed_in, ()) = tokio::join!(
        tokens.sign_in(|_| {}, std::future::pending()),
        approve_first_code(cloud)
    );
    signed_in.expect("signed in");
    let graph = GraphClient::new(&cloud.graph_url(), tokens.clone(), RetryPolicy::default())
        .expect("graph client");
    (tokens, graph)
}

/// A subscription into `hub` of the test namespace for the fake's user.
pub fn subscription(cloud: &FakeCloud, hub: &str) -> SubscriptionSettings {
    SubscriptionSettings {
        service_account_id: cloud.options().user.id.clone(),
        namespace: "beacon-test".into(),
        hub: hub.into(),
        hub_tenant: cloud.options().tenant_domain.clone(),
        model_b: false,
        rich: None,
        lifetime_minutes: beacon::graph::schedule::LIFETIME_MINUTES,
    }
}
