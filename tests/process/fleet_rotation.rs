//! Issue 17, a stolen box: two `beacon run` processes of one fleet (a main desk and a backup
//! desk, rich notifications on, one real broker, the fake Microsoft cloud) and a third member
//! that was stolen (known to both, not running). The main desk's admin rotates the fleet's
//! secrets from the settings page naming the stolen box: the fleet's subscription is made again
//! with a new clientState and a new encryption certificate, the backup desk is handed the new
//! secrets over the peer channel and takes them without a join, both forget the stolen box, and
//! an emergency posted after the rotation alarms on both from push with nothing refused. The
//! figures are printed (`--nocapture`) for the report.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use beacon::graph::fleet::{FleetSecrets, MemberAddress};

use crate::support::console::{fleet_members, Client, ADMIN};
use crate::support::notifications::emergency_message;
use crate::support::process::{
    fleet_desk, free_port, hub_and_cloud, run_logged, sigterm_and_wait, Log,
};

const CHAT: &str = "19:rotate0c1e9a2b4c7d8e9f00112233a@thread.v2";
const STOLEN: &str = "stolen-box";

#[tokio::test(flavor = "multi_thread")]
async fn rotating_hands_the_new_secrets_to_the_other_desk_and_leaves_the_stolen_box_out() {
    let (hub, cloud) = hub_and_cloud("fleet-rotation", 1).await;
    let fleet = FleetSecrets::generate();
    // The fleet's rich-notification key, as a join leaves it on every box.
    let key = beacon::graph::keys::new_key(chrono::Utc::now()).expect("key");
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let names = ["main-desk", "backup-desk"];
    let mut configs: Vec<PathBuf> = Vec::new();
    let mut addresses = Vec::new();
    for (dir, name) in dirs.iter().zip(names) {
        let (config, address) = fleet_desk(
            dir.path(),
            name,
            &hub,
            &cloud,
            &fleet,
            Some(&key),
            "rich_notifications = true\n",
        )
        .await;
        addresses.push(address);
        configs.push(config);
    }
    // Each knows the other and the stolen box (whose console is gone).
    let stolen = MemberAddress {
        name: STOLEN.into(),
        url: format!("https://127.0.0.1:{}", free_port()),
        pin: addresses[0].pin.clone(),
    };
    for (i, dir) in dirs.iter().enumerate() {
        let store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
        beacon::outputs::peers::link::remember_members(
            &store,
            names[i],
            vec![addresses[1 - i].clone(), stolen.clone()],
            true,
        )
        .expect("members");
    }

    let mut runs: Vec<(Child, Log)> = configs.iter().map(|c| run_logged(c, "info")).collect();
    for (_, log) in runs.iter_mut() {
        log.wait_for_any(
            &["subscription created", "subscription adopted"],
            Duration::from_secs(60),
        )
        .await;
    }
    let mut main_admin = Client::new(&addresses[0].url);
    main_admin.login(ADMIN.0, ADMIN.1).await;
    let mut backup_admin = Client::new(&addresses[1].url);
    backup_admin.login(ADMIN.0, ADMIN.1).await;
    let deadline = Instant::now() + Duration::from_secs(45);
    while !fleet_members(&mut main_admin).await.contains("seen at") {
        assert!(
            Instant::now() < deadline,
            "the desks never heard each other"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = cloud.subscriptions();
    assert_eq!(before.len(), 1, "one subscription for the fleet");
    assert_eq!(
        before[0].encryption_certificate_id.as_deref(),
        Some(key.id.as_str())
    );

    // The admin names the stolen box and rotates.
    let page = main_admin
        .get("/settings")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(&format!("<option value=\"{STOLEN}\">")),
        "the stolen box can be named: {page}"
    );
    let token = main_admin.csrf("/settings").await;
    let rotated = Instant::now();
    let response = main_admin
        .post(
            "/settings/fleet/rotate",
            &[("csrf", token.as_str()), ("stolen", STOLEN)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.expect("page");
    println!("rotation answered after {:?}", rotated.elapsed());
    assert!(html.contains("Handed to backup-desk."), "{html}");
    assert!(
        html.contains(&format!(
            "{STOLEN} is no longer a member here and was not given them."
        )),
        "{html}"
    );

    // Graph: the fleet's subscription made again with a new clientState and certificate.
    let after = cloud.subscriptions();
    assert_eq!(after.len(), 1, "still one subscription");
    assert_ne!(after[0].id, before[0].id, "made again");
    assert_ne!(
        after[0].client_state, before[0].client_state,
        "a new clientState"
    );
    assert_ne!(
        after[0].encryption_certificate_id, before[0].encryption_certificate_id,
        "a new encryption certificate"
    );

    // The backup desk took the new secrets, restarted its link with them and holds the new
    // subscription as the fleet's (it fits only with the new certificate).
    runs[1]
        .1
        .wait_for(
            "the fleet's secrets were rotated on another box: taken",
            Duration::from_secs(10),
        )
        .await;
    runs[1]
        .1
        .wait_for_any(
            &["subscription adopted", "subscription renewed"],
            Duration::from_secs(60),
        )
        .await;
    println!(
        "the backup desk held the new subscription {:?} after the rotation",
        rotated.elapsed()
    );
    for admin in [&mut main_admin, &mut backup_admin] {
        let table = fleet_members(admin).await;
        assert!(
            !table.contains(STOLEN),
            "the stolen box is forgotten: {table}"
        );
    }

    // An emergency after the rotation alarms on both desks, and push brings it to both (first,
    // or after the resync that follows a new subscription found it): nothing refused.
    let posted = Instant::now();
    cloud
        .post_message(
            CHAT,
            emergency_message("u-7", "Ana Lima", "2 Harbour Rd, Hull"),
        )
        .await;
    for (_, log) in runs.iter_mut() {
        log.wait_for("emergency call recognised", Duration::from_secs(30))
            .await;
    }
    println!("both desks alarmed {:?} after the post", posted.elapsed());
    for (_, log) in runs.iter_mut() {
        let text = log.text();
        if !text.contains("source=\"chat_notification\"") {
            log.wait_for("also=\"chat_notification\"", Duration::from_secs(30))
                .await;
        }
    }
    println!(
        "push reported it on both {:?} after the post",
        posted.elapsed()
    );
    for (_, log) in &runs {
        let text = log.text();
        let since = text.rfind("the fleet's secrets").unwrap_or(0);
        assert!(
            !text[since..].contains("notification refused"),
            "nothing refused after the rotation:\n{}",
            &text[since..]
        );
    }
    for (mut run, _) in runs {
        sigterm_and_wait(&mut run, Duration::from_secs(30)).await;
    }
}
