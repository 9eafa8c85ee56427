//! Sign-in and the Graph client against the fake Microsoft cloud (tests/support/fake_cloud,
//! written from graph-teams.md): device code, secret rules, refresh rotation across a
//! restart, revocation, 401, throttling — and no token or secret in any log line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fake_cloud::{FakeCloud, FakeOptions, GrantFailure};
use beacon::graph::auth::{AuthError, OAuthSettings};
use beacon::graph::client::GraphClient;
use beacon::graph::retry::RetryPolicy;
use beacon::graph::tokens::{AuthStatus, TokenKeeper};
use beacon::store::Store;

const SECRET: &str = "fake-client-secret-value-7Q";

fn options() -> FakeOptions {
    FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    }
}

fn settings(cloud: &FakeCloud, secret: Option<&str>) -> OAuthSettings {
    crate::support::signed_in::oauth(cloud, secret)
}

/// Signs in, approving the code as the person at the browser would.
async fn sign_in(cloud: &FakeCloud, keeper: &TokenKeeper) -> Result<(), AuthError> {
    let shown = Arc::new(Mutex::new(None));
    let seen = shown.clone();
    let approve = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let code = shown
                .lock()
                .ok()
                .and_then(|c: std::sync::MutexGuard<Option<String>>| c.clone());
            if let Some(code) = code {
                assert!(
                    cloud.approve(&code),
                    "the code shown is the one Microsoft issued"
                );
                return;
            }
        }
    };
    let (result, ()) = tokio::join!(
        keeper.sign_in(
            move |prompt| {
                assert!(prompt.verification_uri.starts_with("http"));
                assert!(prompt.message.is_some());
                if let Ok(mut c) = seen.lock() {
                    *c = Some(prompt.user_code.clone());
                }
            },
            std::future::pending()
        ),
        approve
    );
    result
}

/// Does `act` to the first device code the fake issues.
async fn on_first_code(cloud: &FakeCloud, act: impl Fn(&str) -> bool) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(code) = cloud.pending_user_codes().first() {
            act(code);
            return;
        }
    }
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("data")).expect("store")
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_sign_in_then_me_and_refresh_rotation_survives_a_restart() {
    let cloud = FakeCloud::start(options()).await;
    let dir = tempfile::tempdir().expect("dir");
    let first_refresh_token;
    {
        let store = store(&dir);
        let keeper = TokenKeeper::new(settings(&cloud, None), store.clone()).expect("keeper");
        assert!(matches!(*keeper.status().borrow(), AuthStatus::SignedOut));
        sign_in(&cloud, &keeper).await.expect("signed in");
        assert!(matches!(
            *keeper.status().borrow(),
            AuthStatus::SignedIn { .. }
        ));
        first_refresh_token = store
            .secret("graph/refresh-token")
            .expect("read")
            .expect("persisted");
        let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
            .expect("client");
        let account = beacon::graph::account::fetch_and_store(&graph, &store)
            .await
            .expect("/me");
        assert_eq!(account.id, cloud.options().user.id);
        assert_eq!(
            account.upn.as_deref(),
            Some(cloud.options().user.user_principal_name.as_str())
        );
    }
    // After a restart the keeper refreshes with the stored token and stores the rotated one.
    let store = store(&dir);
    let keeper = TokenKeeper::new(settings(&cloud, None), store.clone()).expect("keeper");
    let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
        .expect("client");
    let me = graph.get("/me").await.expect("/me after restart");
    assert_eq!(me["id"], cloud.options().user.id.as_str());
    let rotated = store
        .secret("graph/refresh-token")
        .expect("read")
        .expect("still there");
    assert_ne!(
        rotated, first_refresh_token,
        "the rotated refresh token replaced the old one"
    );
    // Public client: no secret was ever sent.
    assert!(cloud
        .requests_to("/")
        .iter()
        .all(|r| !r.body.contains("client_secret")));
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_and_expired_codes_say_so() {
    let cloud = FakeCloud::start(options()).await;
    let dir = tempfile::tempdir().expect("dir");
    let keeper = TokenKeeper::new(settings(&cloud, None), store(&dir)).expect("keeper");
    let decline = on_first_code(&cloud, |code| cloud.decline(code));
    let (result, ()) = tokio::join!(keeper.sign_in(|_| {}, std::future::pending()), decline);
    assert_eq!(result, Err(AuthError::Declined));
    assert!(matches!(*keeper.status().borrow(), AuthStatus::SignedOut));

    let expire = on_first_code(&cloud, |code| cloud.expire_device_code(code));
    let (result, ()) = tokio::join!(keeper.sign_in(|_| {}, std::future::pending()), expire);
    assert_eq!(result, Err(AuthError::Expired));

    let cancelled = keeper
        .sign_in(|_| {}, tokio::time::sleep(Duration::from_millis(300)))
        .await;
    assert_eq!(cancelled, Err(AuthError::Cancelled));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_is_sent_only_when_the_tenant_demands_it_and_the_mode_is_remembered() {
    let cloud = FakeCloud::start(FakeOptions {
        public_client_flows: false,
        client_secret: Some(SECRET.into()),
        ..options()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir);
    let keeper = TokenKeeper::new(settings(&cloud, Some(SECRET)), store.clone()).expect("keeper");
    sign_in(&cloud, &keeper)
        .await
        .expect("signed in after switching to a confidential client");
    assert_eq!(
        store.settings.get("graph/client-mode").expect("read"),
        Some(serde_json::json!("confidential"))
    );
    // Without a secret configured, the tenant's demand becomes a sentence.
    let dir2 = tempfile::tempdir().expect("dir");
    let keeper = TokenKeeper::new(
        settings(&cloud, None),
        Store::open(&dir2.path().join("d")).expect("store"),
    )
    .expect("keeper");
    let result = sign_in_without_approval(&keeper).await;
    assert_eq!(result, Err(AuthError::SecretNeeded));
    assert!(AuthError::SecretNeeded
        .to_string()
        .contains("public client flows"));
}

async fn sign_in_without_approval(keeper: &TokenKeeper) -> Result<(), AuthError> {
    keeper
        .sign_in(|_| {}, tokio::time::sleep(Duration::from_secs(20)))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_means_sign_in_required_not_a_retry_loop() {
    let cloud = FakeCloud::start(options()).await;
    let dir = tempfile::tempdir().expect("dir");
    let keeper = TokenKeeper::new(settings(&cloud, None), store(&dir)).expect("keeper");
    sign_in(&cloud, &keeper).await.expect("signed in");
    let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
        .expect("client");
    cloud.revoke_session(GrantFailure::PasswordChanged);
    cloud.expire_access_tokens();
    let error = graph.get("/me").await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("revoked"), "{text}");
    match &*keeper.status().borrow() {
        AuthStatus::SignInRequired { sentence, .. } => {
            assert!(sentence.contains("Sign it in again"), "{sentence}")
        }
        other => panic!("{other:?}"),
    }
    let token_calls = cloud
        .requests_to(&format!(
            "/{}/oauth2/v2.0/token",
            cloud.options().tenant_domain
        ))
        .len();
    for _ in 0..3 {
        assert!(keeper.access_token().await.is_err());
    }
    let after = cloud
        .requests_to(&format!(
            "/{}/oauth2/v2.0/token",
            cloud.options().tenant_domain
        ))
        .len();
    assert_eq!(
        token_calls, after,
        "no further refresh attempts until someone signs in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_refreshes_once_and_throttling_waits_for_retry_after() {
    let cloud = FakeCloud::start(options()).await;
    let dir = tempfile::tempdir().expect("dir");
    let keeper = TokenKeeper::new(settings(&cloud, None), store(&dir)).expect("keeper");
    sign_in(&cloud, &keeper).await.expect("signed in");
    let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
        .expect("client");
    cloud.expire_access_tokens();
    graph.get("/me").await.expect("refreshed after the 401");

    cloud.throttle("/v1.0/me", 2, 1);
    let started = Instant::now();
    graph
        .get("/me")
        .await
        .expect("answered after the throttling");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited Retry-After twice: {:?}",
        started.elapsed()
    );
    let me_calls: Vec<_> = cloud
        .requests_to("/v1.0/me")
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert_eq!(me_calls.len(), 2);

    cloud.server_error("/v1.0/me", 1, 503);
    graph.get("/me").await.expect("a 5xx is retried");
}

/// A 401 forces a refresh whose new token lives shorter than the old one: the background
/// loop must wake for the new token's renewal, not sleep until the old one's — otherwise the
/// token expires while the box is idle and a false "not renewed" trouble follows.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_401_forced_refresh_the_keeper_renews_the_new_token_in_time() {
    let cloud = FakeCloud::start(options()).await;
    let dir = tempfile::tempdir().expect("dir");
    let keeper = TokenKeeper::new(settings(&cloud, None), store(&dir)).expect("keeper");
    sign_in(&cloud, &keeper).await.expect("signed in");
    let running = tokio::spawn(keeper.clone().run(std::future::pending::<()>()));
    let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
        .expect("client");
    // Idle for a moment: the loop now sleeps until the first token's renewal (~45 min).
    tokio::time::sleep(Duration::from_millis(300)).await;
    cloud.set_access_token_lifetime(Duration::from_secs(4));
    cloud.expire_access_tokens();
    graph.get("/me").await.expect("refreshed after the 401");
    // The new token expires 4 s after the 401; nobody calls Graph meanwhile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status = keeper.status().borrow().clone();
    let AuthStatus::SignedIn {
        access_expires_at, ..
    } = status
    else {
        panic!("still signed in: {status:?}");
    };
    assert!(
        access_expires_at > chrono::Utc::now(),
        "the keeper renewed the short-lived token while idle (it expired at {access_expires_at})"
    );
    running.abort();
}

/// Collects everything logged while it is the default subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_secret_reaches_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cloud = FakeCloud::start(FakeOptions {
        public_client_flows: false,
        client_secret: Some(SECRET.into()),
        ..options()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir);
    let keeper = TokenKeeper::new(settings(&cloud, Some(SECRET)), store.clone()).expect("keeper");
    sign_in(&cloud, &keeper).await.expect("signed in");
    let graph = GraphClient::new(&cloud.graph_url(), keeper.clone(), RetryPolicy::default())
        .expect("client");
    cloud.throttle("/v1.0/me", 1, 0);
    cloud.expire_access_tokens();
    graph.get("/me").await.expect("/me");
    let access = keeper.access_token().await.expect("token");
    let refresh = store
        .secret("graph/refresh-token")
        .expect("read")
        .expect("stored");
    cloud.revoke_session(GrantFailure::MfaRequired);
    cloud.expire_access_tokens();
    let _ = graph.get("/me").await;

    let log = String::from_utf8_lossy(&captured.0.lock().map(|b| b.clone()).unwrap_or_default())
        .into_owned();
    assert!(log.contains("graph call"), "the calls were logged: {log}");
    for (name, secret) in [
        ("access token", access.expose()),
        ("refresh token", refresh.expose()),
        ("client secret", SECRET),
    ] {
        assert!(!log.contains(secret), "{name} in the log");
    }
}
