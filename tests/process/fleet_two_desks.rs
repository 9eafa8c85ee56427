//! Issue 17, members of a fleet seeing each other: two `beacon run` processes of one fleet (a
//! main desk and a backup desk) on one real broker and the fake Microsoft cloud, each with its
//! console over HTTPS and knowing where the other's is (what a join leaves; the join itself is
//! `tests/web/fleet_peers.rs`). Each console lists the other as seen and renewing the
//! subscriptions; an emergency alarms on both; an acknowledgement on the main desk's console is
//! shown on the backup desk's call page; after `kill -9` of the main desk the backup desk shows
//! it as "not seen since …"; replacing the fleet's subscription from its settings page asks
//! first and then deletes and makes it again. The figures are printed (`--nocapture`) for the
//! report.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use beacon::graph::fleet::{FleetSecrets, MemberAddress};

use crate::support::console::{fleet_members, Client, ADMIN};
use crate::support::notifications::emergency_message;
use crate::support::process::{fleet_desk, hub_and_cloud, run_logged, sigterm_and_wait, Log};

const CHAT: &str = "19:desks0c1e9a2b4c7d8e9f00112233aa@thread.v2";

struct Desk {
    name: &'static str,
    config: PathBuf,
    url: String,
}

async fn until_members_show(admin: &mut Client, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let table = fleet_members(admin).await;
        if table.contains(text) {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "the members never showed {text:?}: {table}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Presses Settings → Fleet → "Delete the subscription and make it again", with the
/// confirmation's `confirm` field when given; returns the page it answers with (200).
async fn press_replace_subscription(admin: &mut Client, confirm: Option<&str>) -> String {
    let token = admin.csrf("/settings").await;
    let mut form = vec![("csrf", token.as_str())];
    form.extend(confirm.map(|c| ("confirm", c)));
    let response = admin
        .post("/settings/fleet/replace-subscription", &form)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("page")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_desks_see_each_other_share_an_acknowledgement_and_notice_a_dead_one() {
    let (hub, cloud) = hub_and_cloud("fleet-desks", 1).await;
    let fleet = FleetSecrets::generate();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut desks = Vec::new();
    let mut pins = Vec::new();
    for (dir, name) in dirs.iter().zip(["main-desk", "backup-desk"]) {
        let (config, address) = fleet_desk(dir.path(), name, &hub, &cloud, &fleet, None, "").await;
        pins.push(address.pin);
        desks.push(Desk {
            name,
            config,
            url: address.url,
        });
    }
    // Each knows where the other is, as a join leaves it.
    for (i, dir) in dirs.iter().enumerate() {
        let other = 1 - i;
        let store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
        beacon::outputs::peers::link::remember_members(
            &store,
            desks[i].name,
            vec![MemberAddress {
                name: desks[other].name.into(),
                url: desks[other].url.clone(),
                pin: pins[other].clone(),
            }],
            true,
        )
        .expect("members");
    }

    let started = Instant::now();
    let mut runs: Vec<(Child, Log)> = desks
        .iter()
        .map(|d| run_logged(&d.config, "info"))
        .collect();
    for ((_, log), desk) in runs.iter_mut().zip(&desks) {
        log.wait_for_any(
            &["subscription created", "subscription adopted"],
            Duration::from_secs(60),
        )
        .await;
        println!("{} subscribed after {:?}", desk.name, started.elapsed());
    }
    let mut main_admin = Client::new(&desks[0].url);
    main_admin.login(ADMIN.0, ADMIN.1).await;
    let mut backup_admin = Client::new(&desks[1].url);
    backup_admin.login(ADMIN.0, ADMIN.1).await;

    // Each console lists the other: seen, renewing the subscriptions.
    let on_main = until_members_show(&mut main_admin, "seen at", Duration::from_secs(45)).await;
    let on_backup = until_members_show(&mut backup_admin, "seen at", Duration::from_secs(45)).await;
    println!(
        "both desks listed each other as seen {:?} after the start",
        started.elapsed()
    );
    assert!(on_main.contains("backup-desk"), "{on_main}");
    assert!(on_backup.contains("main-desk"), "{on_backup}");
    // Renewing: as soon as each has its subscription (told when it changes, not at the next
    // heartbeat).
    let on_main = until_members_show(
        &mut main_admin,
        "renews the subscriptions",
        Duration::from_secs(20),
    )
    .await;
    let on_backup = until_members_show(
        &mut backup_admin,
        "renews the subscriptions",
        Duration::from_secs(20),
    )
    .await;
    println!(
        "both desks listed each other as renewing {:?} after the start",
        started.elapsed()
    );
    assert!(!on_main.contains("does not renew"), "{on_main}");
    println!("the backup desk's members table: {on_backup}");

    // An emergency alarms on both; the main desk's guard acknowledges it on its console.
    let message = cloud
        .post_message(
            CHAT,
            emergency_message("u-1", "Kim Park", "1 Main St, Springfield"),
        )
        .await;
    for (_, log) in runs.iter_mut() {
        log.wait_for("emergency call recognised", Duration::from_secs(60))
            .await;
    }
    let token = main_admin.csrf("/").await;
    let acknowledged = Instant::now();
    let response = main_admin.post("/acknowledge", &[("csrf", &token)]).await;
    assert_eq!(response.status().as_u16(), 303);
    let key = format!("{CHAT}/{message}");
    let call_page = format!("/calls/{}", beacon::web::records::call_id(&key));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let html = backup_admin
            .get(&call_page)
            .await
            .text()
            .await
            .expect("page");
        if html.contains("acknowledged on main-desk by admin at") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backup desk never showed the acknowledgement"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the backup desk's call page showed the main desk's acknowledgement {:?} after it",
        acknowledged.elapsed()
    );
    runs[1]
        .1
        .wait_for("acknowledged on another desk", Duration::from_secs(5))
        .await;

    // The main desk dies: the backup desk says so, without a trouble.
    let (mut main_run, _) = runs.remove(0);
    main_run.kill().expect("kill -9");
    main_run.wait().expect("reaped");
    let killed = Instant::now();
    let table = until_members_show(
        &mut backup_admin,
        "not seen since",
        Duration::from_secs(150),
    )
    .await;
    println!(
        "the backup desk showed the main desk as not seen {:?} after the kill: {table}",
        killed.elapsed()
    );

    // Replacing the fleet's subscription from the settings page asks first: the first press
    // only names the subscription it would delete; the confirmation deletes and makes it again.
    let ids = || -> Vec<String> { cloud.subscriptions().into_iter().map(|s| s.id).collect() };
    let before = ids();
    assert_eq!(
        before.len(),
        1,
        "one subscription for the fleet: {before:?}"
    );
    let html = press_replace_subscription(&mut backup_admin, None).await;
    assert!(
        html.contains(&format!(
            "Delete subscription <code>{}</code> and make it again?",
            before[0]
        )),
        "the confirmation names the subscription: {html}"
    );
    assert_eq!(ids(), before, "nothing is deleted before the confirmation");
    let html = press_replace_subscription(&mut backup_admin, Some("yes")).await;
    assert!(
        html.contains(&format!(
            "Subscription {} deleted and made again",
            before[0]
        )),
        "{html}"
    );
    let after = ids();
    assert_eq!(after.len(), 1, "made again: {after:?}");
    assert_ne!(after, before, "a new subscription replaced the old one");

    let (mut backup_run, backup_log) = runs.remove(0);
    let status = sigterm_and_wait(&mut backup_run, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let text = backup_log.text();
    assert!(
        !text.contains(fleet.peer_key.expose()) && !text.contains(fleet.client_state.expose()),
        "a fleet secret is in the log"
    );
    assert!(
        !text.contains("fleet: message refused"),
        "a genuine member's message was refused"
    );
}
