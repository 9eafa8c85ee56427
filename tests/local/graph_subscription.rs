//! The subscription keeper against the fake Microsoft cloud: the documented create body,
//! renewal at half-life, re-creation after removal or a 404, reconcile (adopt ours, delete
//! strays), failures in words — and an emergency posted in the fake cloud flowing through
//! the real broker into the appliance's calls and alarm.

use std::sync::Arc;

use crate::support::fake_cloud::{CreateFault, FakeCloud, FakeOptions};
use beacon::graph::client::GraphClient;
use beacon::graph::client_state::ClientStates;
use beacon::graph::notification::LifecycleEvent;
use beacon::graph::schedule::{Action, LIFETIME_MINUTES};
use beacon::graph::subscription::{SubscriptionKeeper, SubscriptionSettings};
use beacon::store::Store;
use chrono::Utc;

struct Setup {
    cloud: FakeCloud,
    _dir: tempfile::TempDir,
    store: Store,
    states: ClientStates,
    graph: GraphClient,
}

async fn setup(options: FakeOptions) -> Setup {
    let cloud = FakeCloud::start(FakeOptions {
        poll_interval_secs: 1,
        ..options
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (_tokens, graph) = crate::support::signed_in::sign_in(&cloud, &store).await;
    let states = ClientStates::load(&store).expect("states");
    Setup {
        cloud,
        _dir: dir,
        store,
        states,
        graph,
    }
}

fn sub_settings(cloud: &FakeCloud, hub: &str) -> SubscriptionSettings {
    crate::support::signed_in::subscription(cloud, hub)
}

fn keeper(s: &Setup, hub: &str) -> Arc<SubscriptionKeeper> {
    SubscriptionKeeper::new(
        s.graph.clone(),
        s.store.clone(),
        s.states.clone(),
        sub_settings(&s.cloud, hub),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_with_the_documented_body_and_renews_at_half_life() {
    let s = setup(FakeOptions::default()).await;
    let keeper = keeper(&s, "teams-emergency");
    let now = Utc::now();
    assert_eq!(
        keeper.step(now).await.expect("reconcile"),
        Action::Reconcile
    );
    assert_eq!(keeper.step(now).await.expect("create"), Action::Create);
    let subs = s.cloud.subscriptions();
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(
        sub.resource,
        format!("/users/{}/chats/getAllMessages", s.cloud.options().user.id)
    );
    assert_eq!(sub.change_type, "created,updated");
    assert_eq!(
        sub.notification_url,
        "EventHub:https://beacon-test.servicebus.windows.net/eventhubname/teams-emergency?tenantId=contoso.com"
    );
    assert_eq!(
        sub.lifecycle_notification_url.as_deref(),
        Some(sub.notification_url.as_str())
    );
    let lifetime = sub.expiration - now;
    assert!(
        lifetime > chrono::Duration::minutes(4_200) && lifetime <= chrono::Duration::minutes(4_320),
        "{lifetime}"
    );
    let state = sub.client_state.clone().expect("clientState sent");
    assert!(state.len() <= 128);
    assert_eq!(
        s.states.verify(Some(&state)),
        beacon::graph::client_state::Verdict::Accepted
    );
    let body: serde_json::Value = serde_json::from_str(
        &s.cloud
            .requests_to("/v1.0/subscriptions")
            .last()
            .expect("request")
            .body,
    )
    .expect("json");
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "changeType",
            "clientState",
            "expirationDateTime",
            "latestSupportedTlsVersion",
            "lifecycleNotificationUrl",
            "notificationUrl",
            "resource"
        ]
    );

    // Nothing to do until half-life (or the hourly reconcile).
    assert!(matches!(
        keeper.step(Utc::now()).await.expect("wait"),
        Action::WaitUntil(_)
    ));
    // Half a lifetime later (the stored state is moved back, Graph's clock is real): after a
    // restart the keeper reconciles, adopts its subscription, and renews it.
    backdate(&s.store, LIFETIME_MINUTES / 2 + 1);
    let restarted = keeper_again(&s, "teams-emergency");
    assert_eq!(
        restarted.step(Utc::now()).await.expect("reconcile"),
        Action::Reconcile
    );
    assert_eq!(
        restarted.step(Utc::now()).await.expect("renew"),
        Action::Renew { id: sub.id.clone() }
    );
    assert_eq!(
        s.cloud.subscription(&sub.id).expect("still there").renewals,
        1
    );
    assert!(matches!(
        restarted.step(Utc::now()).await.expect("wait"),
        Action::WaitUntil(_)
    ));
}

/// Moves the stored subscription's last renewal `minutes` into the past.
fn backdate(store: &Store, minutes: i64) {
    let mut state: serde_json::Value = store
        .settings
        .get("graph/subscription")
        .expect("read")
        .expect("stored");
    let renewed = Utc::now() - chrono::Duration::minutes(minutes);
    state["subscription"]["renewed_at"] = serde_json::json!(renewed);
    store
        .settings
        .insert("graph/subscription", &state)
        .expect("write");
}

fn keeper_again(s: &Setup, hub: &str) -> Arc<SubscriptionKeeper> {
    keeper(s, hub)
}

#[tokio::test(flavor = "multi_thread")]
async fn recreated_after_removal_or_a_404_and_reauthorized_on_request() {
    let s = setup(FakeOptions::default()).await;
    let keeper = keeper(&s, "teams-emergency");
    let now = Utc::now();
    keeper.step(now).await.expect("reconcile");
    keeper.step(now).await.expect("create");
    let first = s.cloud.subscriptions()[0].id.clone();

    keeper
        .lifecycle(&first, LifecycleEvent::ReauthorizationRequired)
        .await;
    assert_eq!(
        keeper.step(now).await.expect("reauth"),
        Action::Reauthorize { id: first.clone() }
    );
    assert_eq!(
        s.cloud.subscription(&first).expect("sub").reauthorizations,
        1
    );

    s.cloud.remove_subscription(&first).await;
    keeper
        .lifecycle(&first, LifecycleEvent::SubscriptionRemoved)
        .await;
    assert_eq!(keeper.step(now).await.expect("create"), Action::Create);
    let second = s.cloud.subscriptions()[0].id.clone();
    assert_ne!(first, second);
    assert!(!s.states.knows(&first), "the old clientState is forgotten");

    // Gone without a word between two steps: the renewal's 404 says so, and a new one is made.
    backdate(&s.store, LIFETIME_MINUTES / 2 + 1);
    let restarted = keeper_again(&s, "teams-emergency");
    assert_eq!(
        restarted.step(Utc::now()).await.expect("reconcile"),
        Action::Reconcile
    );
    assert!(s.cloud.expire_subscription(&second));
    assert_eq!(
        restarted.step(Utc::now()).await.expect("renew"),
        Action::Renew { id: second.clone() }
    );
    assert_eq!(
        restarted.step(Utc::now()).await.expect("create"),
        Action::Create
    );
    assert_eq!(s.cloud.subscriptions().len(), 1);
    assert_ne!(s.cloud.subscriptions()[0].id, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_adopts_ours_and_deletes_strays() {
    let s = setup(FakeOptions::default()).await;
    // A stray of this app: created by an earlier install whose clientState is lost.
    let other_dir = tempfile::tempdir().expect("dir");
    let other_store = Store::open(&other_dir.path().join("d")).expect("store");
    let stray = SubscriptionKeeper::new(
        s.graph.clone(),
        other_store.clone(),
        ClientStates::load(&other_store).expect("states"),
        SubscriptionSettings {
            hub: "old-hub".into(),
            ..sub_settings(&s.cloud, "old-hub")
        },
    );
    stray.step(Utc::now()).await.expect("reconcile");
    stray.step(Utc::now()).await.expect("create");
    let stray_id = s.cloud.subscriptions()[0].id.clone();

    let keeper = keeper(&s, "teams-emergency");
    keeper.step(Utc::now()).await.expect("reconcile");
    assert!(s.cloud.subscription(&stray_id).is_none(), "stray deleted");
    keeper.step(Utc::now()).await.expect("create");
    let ours = s.cloud.subscriptions()[0].id.clone();

    // A restart: the keeper reconciles and adopts its own subscription instead of creating one.
    let again = SubscriptionKeeper::new(
        s.graph.clone(),
        s.store.clone(),
        s.states.clone(),
        sub_settings(&s.cloud, "teams-emergency"),
    );
    assert_eq!(
        again.step(Utc::now()).await.expect("reconcile"),
        Action::Reconcile
    );
    assert_eq!(
        again.state().await.subscription.map(|x| x.id),
        Some(ours.clone())
    );
    assert!(matches!(
        again.step(Utc::now()).await.expect("wait"),
        Action::WaitUntil(_)
    ));
    assert_eq!(s.cloud.subscriptions().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_failures_become_sentences_that_name_the_fix() {
    let s = setup(FakeOptions::default()).await;
    let keeper = keeper(&s, "teams-emergency");
    keeper.step(Utc::now()).await.expect("reconcile");
    s.cloud
        .fail_subscription_creation(CreateFault::PublishingValidationFailed, 1);
    assert!(keeper.step(Utc::now()).await.is_err());
    let status = keeper.status().borrow().clone();
    let problem = status.problem.expect("a problem is shown");
    assert!(
        problem.contains("Microsoft Graph Change Tracking")
            && problem.contains("Azure Event Hubs Data Sender"),
        "{problem}"
    );
    assert!(status.problem_since.is_some());
    // The next attempt works and clears the problem; the quota warning stays (evaluation mode).
    keeper.step(Utc::now()).await.expect("create");
    let status = keeper.status().borrow().clone();
    assert!(status.problem.is_none());
    assert!(status.quota_warning.is_some_and(|w| w.contains("500")));
}

/// The running keeper acts on `subscriptionRemoved` at once: it does not sleep until its next
/// renewal (days away) with no subscription, no trouble and no resync (found by the fault
/// campaign: an emergency posted meanwhile was never found).
#[tokio::test(flavor = "multi_thread")]
async fn a_running_keeper_recreates_a_removed_subscription_at_once() {
    let s = setup(FakeOptions::default()).await;
    let keeper = keeper(&s, "wake-hub");
    let run = tokio::spawn(keeper.clone().run(std::future::pending::<()>()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.cloud.subscriptions().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "created");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first = s.cloud.subscriptions()[0].id.clone();
    assert!(s.cloud.remove_subscription(&first).await);
    keeper
        .lifecycle(&first, LifecycleEvent::SubscriptionRemoved)
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = s.cloud.subscriptions();
        if now.len() == 1 && now[0].id != first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recreated within 5 s of the lifecycle event: {:?}",
            now.iter().map(|s| &s.id).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    run.abort();
}
