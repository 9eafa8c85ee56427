//! The second source's cloud side against the fake Microsoft cloud: the app-only token (client
//! secret or the appliance's certificate, each refusal in words, consent read from `roles`)
//! and the keeper of the emergency-event subscriptions (one per policy, the fleet's
//! clientState and the rich certificate, 409 adopted, renewed within a day, consent revoked
//! and Event Hubs refused in words, the delegated token never used).

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_cloud::{FakeCloud, FakeOptions};
use beacon::graph::aadsts::{self, TokenFailure};
use beacon::graph::call_events::app_token::EMERGENCY_ROLE;
use beacon::graph::call_events::{
    AppCertificate, AppCredential, AppToken, AppTokenSettings, CallEventKeeper, CallEventSettings,
};
use beacon::graph::client::GraphClient;
use beacon::graph::client_state::ClientStates;
use beacon::graph::crypto::EncryptionKey;
use beacon::graph::emergency_events;
use beacon::graph::retry::RetryPolicy;
use beacon::secret::Secret;
use beacon::store::Store;
use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};

const HUB_URL: &str =
    "EventHub:https://beacon-test.servicebus.windows.net/eventhubname/teams-emergency?tenantId=contoso.com";

/// A retry policy that gives up fast (the tests check refusals, not patience).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    }
}

fn settings(cloud: &FakeCloud, credential: AppCredential) -> AppTokenSettings {
    AppTokenSettings {
        login_url: cloud.login_url(),
        tenant: cloud.options().tenant_id.clone(),
        client_id: cloud.options().client_id.clone(),
        credential,
    }
}

/// One appliance: its store, fleet, rich key and app certificate (uploaded, consent granted).
struct Box {
    _dir: tempfile::TempDir,
    store: Store,
    states: ClientStates,
    rich: EncryptionKey,
    app: Arc<AppToken>,
}

fn new_box(cloud: &FakeCloud) -> Box {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let states = ClientStates::load(&store).expect("states");
    let certificate = AppCertificate::load_or_create(&store, Utc::now()).expect("certificate");
    cloud.upload_app_certificate(certificate.certificate_pem().expect("pem").as_bytes());
    let app = AppToken::new(
        settings(cloud, AppCredential::Certificate(Arc::new(certificate))),
        quick(),
    )
    .expect("app token");
    Box {
        _dir: dir,
        store,
        states,
        rich: EncryptionKey::generate("beacon-rich", Utc::now(), 30).expect("key"),
        app,
    }
}

fn keeper(
    cloud: &FakeCloud,
    b: &Box,
    policies: &[&str],
    lifetime: chrono::Duration,
) -> Arc<CallEventKeeper> {
    CallEventKeeper::new(
        &cloud.graph_url(),
        b.app.clone(),
        b.store.clone(),
        b.states.clone(),
        CallEventSettings {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            notification_url: HUB_URL.into(),
            rich: beacon::graph::crypto::KeyRing::new(vec![b.rich.clone()]),
            lifetime,
        },
    )
    .expect("keeper")
}

fn a_day() -> chrono::Duration {
    emergency_events::MAX_LIFETIME
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_token_comes_with_a_secret_and_with_the_certificate() {
    let cloud = FakeCloud::start(FakeOptions {
        client_secret: Some("s3cret-value".into()),
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    let with_secret = AppToken::new(
        settings(&cloud, AppCredential::Secret(Secret::new("s3cret-value"))),
        quick(),
    )
    .expect("app token");
    let token = with_secret
        .access_token()
        .await
        .expect("token with the secret");
    assert!(beacon::graph::call_events::app_token::roles(token.expose())
        .iter()
        .any(|r| r == EMERGENCY_ROLE));
    // Cached: a second call does not ask again.
    with_secret.access_token().await.expect("cached");
    let b = new_box(&cloud);
    b.app
        .access_token()
        .await
        .expect("token with the certificate");
    let grants: Vec<&str> = cloud.app_grants().iter().map(|g| g.credential).collect();
    assert_eq!(grants, ["secret", "certificate"]);
    // The secret never travels in a log or status: the status says when it expires, no more.
    let status = format!("{:?}", *with_secret.status().borrow());
    assert!(
        status.contains("Valid") && !status.contains("s3cret"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_of_the_app_sign_in_is_in_words() {
    let cloud = FakeCloud::start(FakeOptions {
        client_secret: Some("right".into()),
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    let refusal = |app: Arc<AppToken>| async move {
        app.access_token().await.expect_err("refused").to_string()
    };
    let wrong_secret = AppToken::new(
        settings(&cloud, AppCredential::Secret(Secret::new("wrong"))),
        quick(),
    )
    .expect("app");
    let words = refusal(wrong_secret).await;
    assert!(
        words.contains("refused the client secret (AADSTS7000215)"),
        "{words}"
    );
    assert!(
        !words.contains("wrong"),
        "the secret is not repeated: {words}"
    );

    // A certificate nobody uploaded.
    let stranger = AppCertificate::generate(Utc::now()).expect("certificate");
    let not_uploaded = AppToken::new(
        settings(
            &cloud,
            AppCredential::Certificate(Arc::new(stranger.clone())),
        ),
        quick(),
    )
    .expect("app");
    let words = refusal(not_uploaded).await;
    assert!(
        words.contains("upload the certificate shown on the setup page"),
        "{words}"
    );

    // An unknown app registration.
    let mut unknown = settings(&cloud, AppCredential::Secret(Secret::new("right")));
    unknown.client_id = "00000000-0000-0000-0000-000000000000".into();
    let words = refusal(AppToken::new(unknown, quick()).expect("app")).await;
    assert!(
        words.contains("does not know the app registration (AADSTS700016)"),
        "{words}"
    );

    // An assertion signed ten minutes ago has expired: the fake says 700024 and Beacon's
    // words point at the clock.
    cloud.upload_app_certificate(stranger.certificate_pem().expect("pem").as_bytes());
    let token_url = format!(
        "{}/{}/oauth2/v2.0/token",
        cloud.login_url(),
        cloud.options().tenant_id
    );
    let stale = stranger
        .assertion(
            &cloud.options().client_id,
            &token_url,
            Utc::now() - chrono::Duration::minutes(10),
            "jti-1",
        )
        .expect("assertion");
    let response: Value = reqwest::Client::new()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cloud.options().client_id.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", stale.as_str()),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(response["error_codes"], json!([700024]), "{response}");
    match aadsts::classify_app(
        response["error"].as_str().unwrap_or_default(),
        response["error_description"].as_str(),
    ) {
        TokenFailure::SignInRequired { sentence, .. } => {
            assert!(sentence.contains("clock"), "{sentence}")
        }
        other => panic!("{other:?}"),
    }

    // Consent missing: a token comes, without the permission, and is not used.
    cloud.grant_app_consent(false);
    let no_consent = AppToken::new(
        settings(&cloud, AppCredential::Secret(Secret::new("right"))),
        quick(),
    )
    .expect("app");
    let words = refusal(no_consent).await;
    assert!(
        words.contains(
            "Admin consent for the application permission CallEvents-Emergency.Read.All is missing"
        ),
        "{words}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_rich_subscription_per_policy_with_the_fleets_client_state() {
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let keeper = keeper(&cloud, &b, &["HQ-Emergency", "O'Brien Branch"], a_day());
    let now = Utc::now();
    let next = keeper.step(now).await;
    let status = keeper.status().borrow().clone();
    assert!(
        status.policies.iter().all(|p| p.problem.is_none()),
        "{status:?}"
    );
    for policy in ["HQ-Emergency", "O'Brien Branch"] {
        let sub = cloud.call_event_subscription(policy).expect("subscribed");
        assert_eq!(sub.change_type, "updated");
        assert!(sub.include_resource_data);
        assert_eq!(
            sub.encryption_certificate_id.as_deref(),
            Some("beacon-rich")
        );
        assert_eq!(sub.notification_url, HUB_URL);
        assert_eq!(
            sub.client_state.as_deref(),
            b.states.client_state().as_ref().map(Secret::expose)
        );
        assert!(sub.expiration <= Utc::now() + a_day());
        assert!(b.states.knows(&sub.id), "the fleet knows its subscription");
    }
    // Half a day later at the earliest, nothing before.
    assert!(next >= now + chrono::Duration::hours(11), "{next}");
    keeper.step(Utc::now()).await;
    assert_eq!(
        cloud.subscriptions().len(),
        2,
        "no second subscription per policy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_box_made_it_adopted_and_one_delivering_elsewhere_left_alone() {
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    cloud.grant_app_consent(true);
    let first = new_box(&cloud);
    let second = new_box(&cloud);
    keeper(&cloud, &first, &["HQ-Emergency"], a_day())
        .step(Utc::now())
        .await;
    let made = cloud.call_event_subscription("HQ-Emergency").expect("made");
    let other = keeper(&cloud, &second, &["HQ-Emergency"], a_day());
    other.step(Utc::now()).await;
    let status = other.status().borrow().policies[0].clone();
    assert_eq!(
        status.subscription_id.as_deref(),
        Some(made.id.as_str()),
        "{status:?}"
    );
    assert_eq!(status.problem, None);
    assert!(second.states.knows(&made.id));
    assert_eq!(cloud.subscriptions().len(), 1);

    // A subscription for the same policy into another hub (someone else's): not ours, not
    // deleted, said in words.
    let third = new_box(&cloud);
    let elsewhere = CallEventKeeper::new(
        &cloud.graph_url(),
        third.app.clone(),
        third.store.clone(),
        third.states.clone(),
        CallEventSettings {
            policies: vec!["HQ-Emergency".into()],
            notification_url: HUB_URL.replace("teams-emergency", "other-hub"),
            rich: beacon::graph::crypto::KeyRing::new(vec![third.rich.clone()]),
            lifetime: a_day(),
        },
    )
    .expect("keeper");
    elsewhere.step(Utc::now()).await;
    let problem = elsewhere.status().borrow().policies[0]
        .problem
        .clone()
        .unwrap_or_default();
    assert!(
        problem.contains("delivers elsewhere") && problem.contains("never deletes"),
        "{problem}"
    );
    assert!(cloud.subscription(&made.id).is_some(), "left alone");
}

#[tokio::test(flavor = "multi_thread")]
async fn renewed_at_half_life_never_asking_for_more_than_a_day() {
    let cloud = FakeCloud::start(FakeOptions {
        min_subscription_lifetime: Duration::from_secs(1),
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let keeper = keeper(&cloud, &b, &["HQ-Emergency"], chrono::Duration::seconds(4));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(keeper.clone().run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let _ = stop.send(());
    running.await.expect("keeper ends");
    let sub = cloud
        .call_event_subscription("HQ-Emergency")
        .expect("alive");
    // A 4-second lifetime renewed every 2 seconds: two or three renewals in 5.5 s.
    assert!(
        (2..=3).contains(&sub.renewals),
        "renewals: {}",
        sub.renewals
    );
    assert!(sub.expiration > Utc::now(), "still alive");
    for request in cloud.requests_to("/v1.0/subscriptions") {
        if let Ok(body) = serde_json::from_str::<Value>(&request.body) {
            if let Some(asked) = body["expirationDateTime"].as_str() {
                let asked = chrono::DateTime::parse_from_rfc3339(asked).expect("time");
                assert!(
                    asked <= request.at_utc + a_day(),
                    "{asked} asked at {}",
                    request.at_utc
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_revoked_and_event_hubs_refused_are_troubles_in_words() {
    let cloud = FakeCloud::start(FakeOptions {
        min_subscription_lifetime: Duration::from_secs(1),
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let keeper = keeper(&cloud, &b, &["HQ-Emergency"], chrono::Duration::seconds(60));
    keeper.step(Utc::now()).await;
    assert!(keeper.status().borrow().policies[0].problem.is_none());

    // The admin revokes consent; once the token in hand expires, renewal cannot go on.
    cloud.grant_app_consent(false);
    cloud.expire_access_tokens();
    keeper
        .step(Utc::now() + chrono::Duration::seconds(31))
        .await;
    let status = keeper.status().borrow().policies[0].clone();
    let problem = status.problem.unwrap_or_default();
    assert!(problem.contains("Admin consent for the application permission CallEvents-Emergency.Read.All is missing or was revoked"), "{problem}");
    assert!(status.problem_since.is_some());

    // A tenant where Graph does not deliver emergency call events into Event Hubs.
    let refused = "EventHub notificationUrl is not supported for resource 'communications/calls/getEmergencyEventsByPolicy'.";
    cloud.grant_app_consent(true);
    cloud.refuse_event_hubs_for_call_events(Some(refused));
    let other = new_box(&cloud);
    let keeper = self::keeper(&cloud, &other, &["Branch-Emergency"], a_day());
    keeper.step(Utc::now()).await;
    assert_eq!(
        keeper.status().borrow().policies[0].problem.as_deref(),
        Some(
            format!("Graph refused Event Hubs delivery for emergency call events: {refused}")
                .as_str()
        )
    );
    assert!(cloud.call_event_subscription("Branch-Emergency").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delegated_token_is_never_used_for_call_events_nor_the_app_token_for_chats() {
    let cloud = FakeCloud::start(FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let (_tokens, delegated) = crate::support::signed_in::sign_in(&cloud, &b.store).await;
    let body = emergency_events::subscription_request(
        "HQ-Emergency",
        HUB_URL,
        "state",
        &b.rich.certificate_base64(),
        &b.rich.id,
        Utc::now(),
    );
    // Graph refuses the service account's token for emergency call events …
    let refused = delegated
        .send(Method::POST, "/subscriptions", Some(&body))
        .await
        .expect_err("delegated is refused");
    assert_eq!(refused.status(), Some(403));
    // … and the keeper, which holds only the app-only client, gets its subscription.
    keeper(&cloud, &b, &["HQ-Emergency"], a_day())
        .step(Utc::now())
        .await;
    assert!(cloud.call_event_subscription("HQ-Emergency").is_some());
    // The app-only token does not open the chats.
    let app_graph =
        GraphClient::app_only(&cloud.graph_url(), b.app.clone(), quick()).expect("client");
    assert!(app_graph.is_app_only() && !delegated.is_app_only());
    assert_eq!(
        app_graph
            .get("/me/chats")
            .await
            .expect_err("refused")
            .status(),
        Some(403)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chat_keeper_leaves_the_emergency_event_subscriptions_alone() {
    let cloud = FakeCloud::start(FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    })
    .await;
    cloud.grant_app_consent(true);
    // Should Graph list them to the service account too, they carry the fleet's clientState
    // and the fleet knows their ids: still never the chat keeper's to delete.
    cloud.list_call_events_to_delegated(true);
    let b = new_box(&cloud);
    keeper(&cloud, &b, &["HQ-Emergency"], a_day())
        .step(Utc::now())
        .await;
    let call_events = cloud.call_event_subscription("HQ-Emergency").expect("made");
    assert!(b.states.knows(&call_events.id));
    let (_tokens, delegated) = crate::support::signed_in::sign_in(&cloud, &b.store).await;
    let chat = beacon::graph::subscription::SubscriptionKeeper::new(
        delegated,
        b.store.clone(),
        b.states.clone(),
        crate::support::signed_in::subscription(&cloud, "teams-emergency"),
    );
    chat.settle(Utc::now())
        .await
        .expect("the chat keeper reconciles and creates");
    assert!(cloud.subscription(&call_events.id).is_some(), "left alone");
    assert_eq!(
        cloud.subscriptions().len(),
        2,
        "the chat subscription beside it"
    );
}

/// Lifecycle events of an emergency-event subscription reach its keeper (not the chat
/// keeper, which does not hold it): `reauthorizationRequired` renews it at once (Graph pauses
/// delivery until then), `subscriptionRemoved` makes it again at once — neither waits for a
/// renewal half a day away; an event of a subscription it does not hold is not its own.
#[tokio::test(flavor = "multi_thread")]
async fn reauthorization_and_removal_are_acted_on_at_once() {
    use beacon::graph::notification::LifecycleEvent;
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let keeper = keeper(&cloud, &b, &["HQ-Emergency"], a_day());
    keeper.settle(Utc::now()).await;
    let first = cloud.call_event_subscription("HQ-Emergency").expect("made");
    assert!(
        !keeper
            .lifecycle(
                "the-chat-subscription",
                LifecycleEvent::ReauthorizationRequired
            )
            .await,
        "not one of the keeper's"
    );

    assert!(
        keeper
            .lifecycle(&first.id, LifecycleEvent::ReauthorizationRequired)
            .await
    );
    keeper.settle(Utc::now()).await;
    let renewed = cloud
        .call_event_subscription("HQ-Emergency")
        .expect("alive");
    assert_eq!(renewed.id, first.id);
    assert_eq!(renewed.renewals, first.renewals + 1, "renewed at once");

    // Graph removes it and says so.
    assert!(cloud.expire_subscription(&first.id));
    assert!(
        keeper
            .lifecycle(&first.id, LifecycleEvent::SubscriptionRemoved)
            .await
    );
    keeper.settle(Utc::now()).await;
    let again = cloud
        .call_event_subscription("HQ-Emergency")
        .expect("made again at once");
    assert_ne!(again.id, first.id);
}

/// A rotation (a stolen box): the key ring gets a new current key, and the emergency-event
/// subscriptions are made again for its certificate with the fleet's new clientState — one per
/// policy still, the old ones gone (Graph lets neither change in place).
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_makes_the_emergency_event_subscriptions_again_for_the_new_key() {
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    cloud.grant_app_consent(true);
    let b = new_box(&cloud);
    let keeper = keeper(&cloud, &b, &["HQ-Emergency"], a_day());
    keeper.step(Utc::now()).await;
    let before = cloud
        .call_event_subscription("HQ-Emergency")
        .expect("subscribed");

    let now = Utc::now();
    let new_key = beacon::graph::keys::rotate(&b.store, &keeper.settings().rich, now).expect("key");
    let rotated = b.states.secrets().expect("fleet").rotated(now);
    b.states.replace(&b.store, rotated).expect("new state");
    keeper.replace_all(now).await.expect("made again");

    let after = cloud
        .call_event_subscription("HQ-Emergency")
        .expect("subscribed");
    assert_ne!(after.id, before.id, "made again");
    assert_eq!(
        after.encryption_certificate_id.as_deref(),
        Some(new_key.id.as_str())
    );
    assert_eq!(
        after.client_state.as_deref(),
        b.states.client_state().as_ref().map(Secret::expose)
    );
    assert_ne!(after.client_state, before.client_state);
    assert_eq!(cloud.subscriptions().len(), 1, "the old one is gone");
}
