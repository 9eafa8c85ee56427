//! The subscription keeper against the fake Microsoft cloud: the documented create body,
//! renewal at half-life, re-creation after removal or a 404, reconcile (adopt the fleet's,
//! delete only the fleet's own obsolete ones), several boxes of one fleet keeping one
//! subscription (409 → adopt, never delete what cannot be verified), failures in words — and an emergency posted in the fake cloud flowing through
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
        s.states.verify(&sub.id, Some(&state)),
        beacon::graph::client_state::Verdict::Accepted
    );
    assert_eq!(
        Some(beacon::secret::Secret::new(state)),
        s.states.client_state()
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
    assert!(!s.states.knows(&first), "the old subscription is forgotten");
    assert!(s.states.knows(&second));

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
async fn reconcile_adopts_ours_and_deletes_only_the_fleets_own_obsolete_ones() {
    let s = setup(FakeOptions::default()).await;
    // This box subscribed into another hub before (its settings changed since).
    let before = keeper(&s, "old-hub");
    before.step(Utc::now()).await.expect("reconcile");
    before.step(Utc::now()).await.expect("create");
    let obsolete = s.cloud.subscriptions()[0].id.clone();

    let keeper = keeper(&s, "teams-emergency");
    keeper.step(Utc::now()).await.expect("reconcile");
    assert!(
        s.cloud.subscription(&obsolete).is_none(),
        "the fleet's own obsolete subscription is deleted"
    );
    keeper.step(Utc::now()).await.expect("create");
    let ours = s.cloud.subscriptions()[0].id.clone();

    // A restart: the keeper reconciles and adopts its own subscription instead of creating one.
    let again = keeper_again(&s, "teams-emergency");
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

/// Another box signed in as the same service account, on its own store: with `fleet`, the
/// same fleet secrets as `s` (what joining the fleet gives it).
async fn second_box(
    s: &Setup,
    fleet: bool,
    hub: &str,
) -> (tempfile::TempDir, ClientStates, Arc<SubscriptionKeeper>) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (_tokens, graph) = crate::support::signed_in::sign_in(&s.cloud, &store).await;
    let states = ClientStates::load(&store).expect("states");
    if fleet {
        states
            .replace(&store, s.states.secrets().expect("fleet secrets"))
            .expect("join");
    }
    let keeper = SubscriptionKeeper::new(graph, store, states.clone(), sub_settings(&s.cloud, hub));
    (dir, states, keeper)
}

/// Two boxes of one fleet start together: both find nothing, both create; Graph's 409 makes
/// the second adopt the first's subscription (never delete it); both renew the one subscription.
#[tokio::test(flavor = "multi_thread")]
async fn two_boxes_of_one_fleet_keep_one_subscription() {
    let s = setup(FakeOptions::default()).await;
    let a = keeper(&s, "teams-emergency");
    let (_dir, b_states, b) = second_box(&s, true, "teams-emergency").await;
    let now = Utc::now();
    a.step(now).await.expect("a reconciles");
    b.step(now).await.expect("b reconciles");
    assert_eq!(a.step(now).await.expect("a creates"), Action::Create);
    let id = s.cloud.subscriptions()[0].id.clone();
    assert_eq!(b.step(now).await.expect("b adopts"), Action::Create);
    assert_eq!(
        s.cloud.subscriptions().len(),
        1,
        "one subscription for the fleet"
    );
    assert_eq!(b.state().await.subscription.map(|x| x.id), Some(id.clone()));
    assert!(b.status().borrow().problem.is_none());
    let deletes = s
        .cloud
        .requests_to(&format!("/v1.0/subscriptions/{id}"))
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 0, "nobody deletes the fleet's subscription");
    // Both boxes accept its notifications: they carry the fleet's clientState.
    let state = s
        .cloud
        .subscription(&id)
        .and_then(|x| x.client_state)
        .expect("state");
    assert_eq!(
        b_states.verify(&id, Some(&state)),
        beacon::graph::client_state::Verdict::Accepted
    );
    assert_eq!(
        b_states.verify(&id, Some("a stranger's")),
        beacon::graph::client_state::Verdict::Mismatch
    );

    // Either box renews it (each at its own half-life); the renewals only move the expiry on.
    let before = s.cloud.subscription(&id).expect("sub").expiration;
    backdate(&s.store, LIFETIME_MINUTES / 2 + 1);
    let a_again = keeper_again(&s, "teams-emergency");
    a_again.step(Utc::now()).await.expect("reconcile");
    assert_eq!(
        a_again.step(Utc::now()).await.expect("renew"),
        Action::Renew { id: id.clone() }
    );
    assert_eq!(s.cloud.subscription(&id).expect("sub").renewals, 1);
    assert!(s.cloud.subscription(&id).expect("sub").expiration >= before);
}

/// A Beacon outside the fleet on the same service account, delivering elsewhere: on 409 it
/// cannot verify the subscription as its own, leaves it alone and says so in words.
#[tokio::test(flavor = "multi_thread")]
async fn a_beacon_outside_the_fleet_never_deletes_the_fleets_subscription() {
    let s = setup(FakeOptions::default()).await;
    let a = keeper(&s, "teams-emergency");
    a.step(Utc::now()).await.expect("reconcile");
    a.step(Utc::now()).await.expect("create");
    let id = s.cloud.subscriptions()[0].id.clone();

    let (_dir, outsider_states, outsider) = second_box(&s, false, "another-hub").await;
    outsider
        .step(Utc::now())
        .await
        .expect("reconcile leaves it alone");
    assert!(outsider.step(Utc::now()).await.is_err(), "409, not adopted");
    let subs = s.cloud.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].id, id, "the fleet's subscription is still there");
    let problem = outsider
        .status()
        .borrow()
        .problem
        .clone()
        .expect("a problem in words");
    assert!(
        problem.contains("cannot verify as its own") && problem.contains(&id),
        "{problem}"
    );
    // Its notifications are foreign to the outsider: not a trouble there.
    let state = subs[0].client_state.clone().expect("state");
    assert_eq!(
        outsider_states.verify(&id, Some(&state)),
        beacon::graph::client_state::Verdict::Foreign
    );
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

/// Rotating the fleet's secrets (a stolen box): the fleet's subscription is replaced by one
/// carrying the new clientState (Graph cannot change it in place); the old state stays
/// accepted for what is already on its way; a box that did not join again refuses the new
/// subscription's notifications (a trouble there, in words, until it joins again).
#[tokio::test(flavor = "multi_thread")]
async fn rotating_replaces_the_subscription_with_the_new_client_state() {
    let s = setup(FakeOptions::default()).await;
    let a = keeper(&s, "teams-emergency");
    a.step(Utc::now()).await.expect("reconcile");
    a.step(Utc::now()).await.expect("create");
    let old = s.cloud.subscriptions()[0].clone();
    let old_state = old.client_state.clone().expect("state");
    let (_dir, b_states, b) = second_box(&s, true, "teams-emergency").await;
    b.step(Utc::now()).await.expect("b adopts from the list");

    a.rotate_fleet_secrets(Utc::now()).await.expect("rotated");
    let subs = s.cloud.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_ne!(subs[0].id, old.id, "replaced");
    let new_state = subs[0].client_state.clone().expect("state");
    assert_ne!(new_state, old_state);
    assert_eq!(
        s.states.client_state().map(|c| c.expose().to_string()),
        Some(new_state.clone())
    );
    use beacon::graph::client_state::Verdict;
    assert_eq!(
        s.states.verify(&subs[0].id, Some(&new_state)),
        Verdict::Accepted
    );
    assert_eq!(
        s.states.verify(&old.id, Some(&old_state)),
        Verdict::Accepted,
        "in flight"
    );
    // Box b, not joined again, adopts the new subscription on its next round and refuses it.
    assert_eq!(
        b.step(Utc::now() + chrono::Duration::minutes(61))
            .await
            .expect("b reconciles"),
        Action::Reconcile
    );
    assert!(
        b_states.knows(&subs[0].id),
        "b keeps the fleet's subscription alive"
    );
    assert_eq!(
        b_states.verify(&subs[0].id, Some(&new_state)),
        Verdict::Mismatch
    );
}

/// Leaving the fleet: the box gets a fleet of its own and never deletes the fleet's
/// subscription; on the same service account it then refuses the fleet's notifications (a
/// trouble that says to give it its own account or join again).
#[tokio::test(flavor = "multi_thread")]
async fn leaving_the_fleet_leaves_its_subscription_alone() {
    let s = setup(FakeOptions::default()).await;
    let a = keeper(&s, "teams-emergency");
    a.step(Utc::now()).await.expect("reconcile");
    a.step(Utc::now()).await.expect("create");
    let fleet_sub = s.cloud.subscriptions()[0].clone();
    let fleet_state = fleet_sub.client_state.clone().expect("state");
    let (_dir, b_states, b) = second_box(&s, true, "teams-emergency").await;
    b.step(Utc::now()).await.expect("b adopts");
    let old_fleet = b_states.fleet_id();

    let new_fleet = b.leave_fleet().await.expect("left");
    assert_ne!(new_fleet, old_fleet);
    assert_eq!(b_states.fleet_id(), new_fleet);
    assert_eq!(
        b.step(Utc::now()).await.expect("b reconciles"),
        Action::Reconcile
    );
    let subs = s.cloud.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].id, fleet_sub.id,
        "the fleet's subscription is untouched"
    );
    use beacon::graph::client_state::Verdict;
    assert_eq!(
        b_states.verify(&fleet_sub.id, Some(&fleet_state)),
        Verdict::Mismatch
    );
    assert_eq!(
        s.states.verify(&fleet_sub.id, Some(&fleet_state)),
        Verdict::Accepted,
        "the fleet is not disturbed"
    );
}

/// A stray: the fleet's subscription fits (same resource, hub, certificate) but its clientState
/// is lost (the only box holding it was reset). It is adopted and every notification of it
/// refused; an admin's deliberate "delete it and make it again" replaces it with one carrying
/// the clientState this box holds.
#[tokio::test(flavor = "multi_thread")]
async fn a_stray_subscription_is_deleted_and_made_again_only_when_asked() {
    use beacon::graph::client_state::Verdict;
    let s = setup(FakeOptions::default()).await;
    let a = keeper(&s, "teams-emergency");
    a.step(Utc::now()).await.expect("reconcile");
    a.step(Utc::now()).await.expect("create");
    let stray = s.cloud.subscriptions()[0].clone();
    let lost_state = stray.client_state.clone().expect("state");
    // The box is reset: a fleet of one with new secrets, the same service account and hub.
    s.states
        .replace(&s.store, beacon::graph::fleet::FleetSecrets::generate())
        .expect("reset");
    let b = keeper_again(&s, "teams-emergency");
    b.step(Utc::now()).await.expect("reconcile");
    assert_eq!(
        b.state().await.subscription.map(|x| x.id),
        Some(stray.id.clone()),
        "adopted: it fits"
    );
    assert_eq!(
        s.states.verify(&stray.id, Some(&lost_state)),
        Verdict::Mismatch,
        "and refused"
    );
    assert_eq!(s.cloud.subscriptions().len(), 1, "nothing deleted unasked");

    let deleted = b.replace_subscription(Utc::now()).await.expect("replaced");
    assert_eq!(deleted, Some(stray.id.clone()));
    let subs = s.cloud.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_ne!(subs[0].id, stray.id);
    let new_state = subs[0].client_state.clone().expect("state");
    assert_eq!(
        s.states.verify(&subs[0].id, Some(&new_state)),
        Verdict::Accepted,
        "its notifications are accepted again"
    );
    assert_eq!(
        b.state().await.subscription.map(|x| x.id),
        Some(subs[0].id.clone())
    );
}
