//! Issue 17: three `beacon run` processes of one fleet on one real broker and one fake
//! Microsoft cloud, each its own device id and consumer group, signed in as the same service
//! account. One subscription exists however they race; every emergency alarms once on each box
//! and is recorded on all; nobody cries forgery; `kill -9` of one box does not let the
//! subscription lapse (lifetimes shortened to a minute); a stranger's clientState on the
//! fleet's subscription is refused and a trouble on every box. The figures are printed
//! (`--nocapture`) for the report.

use std::process::Child;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::support::kafka::Sender;
use crate::support::notifications::{basic, emergency_message};
use crate::support::process::{
    hub_and_cloud_with, run_logged, sign_in, sigterm_and_wait, write_cloud_config, Log,
};

const CHAT: &str = "19:fleet0c1e9a2b4c7d8e9f00112233aa@thread.v2";

struct Box_ {
    name: String,
    run: Child,
    log: Log,
    data: std::path::PathBuf,
}

#[tokio::test(flavor = "multi_thread")]
async fn three_boxes_one_subscription_every_alarm_on_each_and_no_lapse_after_a_kill() {
    let (hub, cloud) = hub_and_cloud_with("fleet-hub", 2, |o| {
        o.min_subscription_lifetime = Duration::from_secs(10);
    })
    .await;
    let fleet = beacon::graph::fleet::FleetSecrets::generate();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut configs = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let name = format!("fleet-box-{}", i + 1);
        let (config, data) = write_cloud_config(dir.path(), &name, &hub, &cloud);
        let mut text = std::fs::read_to_string(&config).expect("read");
        text.push_str("subscription_minutes = 1\n");
        std::fs::write(&config, text).expect("write");
        sign_in(&config, &cloud).await;
        // What joining the fleet leaves in the store (step 3 does it over HTTPS).
        let store = beacon::store::Store::open(&data).expect("store");
        beacon::graph::client_state::ClientStates::load(&store)
            .expect("states")
            .replace(&store, fleet.clone())
            .expect("fleet secrets");
        drop(store);
        configs.push((name, config, data));
    }

    // All three start at once: they race to create.
    let started = Instant::now();
    let mut boxes: Vec<Box_> = configs
        .into_iter()
        .map(|(name, config, data)| {
            let (run, log) = run_logged(&config, "info");
            Box_ {
                name,
                run,
                log,
                data,
            }
        })
        .collect();
    let mut creator = None;
    for (i, b) in boxes.iter_mut().enumerate() {
        let line = b
            .log
            .wait_for_any(
                &["subscription created", "subscription adopted"],
                Duration::from_secs(60),
            )
            .await;
        println!("{} after {:?}: {line}", b.name, started.elapsed());
        if line.contains("subscription created") {
            assert!(
                creator.replace(i).is_none(),
                "two boxes created a subscription"
            );
        }
    }
    let creator = creator.expect("one box created it");
    let subs = cloud.subscriptions();
    assert_eq!(subs.len(), 1, "one subscription for the fleet");
    let id = subs[0].id.clone();
    let deletes = cloud
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 0, "no box deleted another's subscription");

    // Two emergencies while all three live.
    let mut posted = Vec::new();
    for (user, caller) in [("u-1", "Kim Park"), ("u-2", "Ana Lima")] {
        posted.push(
            cloud
                .post_message(
                    CHAT,
                    emergency_message(user, caller, "1 Main St, Springfield"),
                )
                .await,
        );
    }
    for b in &mut boxes {
        for _ in &posted {
            b.log
                .wait_for("emergency call recognised", Duration::from_secs(60))
                .await;
        }
    }

    // Subscriptions over time, and kill -9 of the box that created it.
    let mut samples = Vec::new();
    let renewals_at_kill = cloud.subscription(&id).expect("live").renewals;
    let victim = boxes.remove(creator);
    println!("kill -9 {}", victim.name);
    let mut victim_run = victim.run;
    victim_run.kill().expect("kill -9");
    victim_run.wait().expect("reaped");
    let killed = Instant::now();
    let mut take_over = None;
    // Two whole lifetimes (60 s each) with only the survivors renewing.
    while killed.elapsed() < Duration::from_secs(130) {
        let now = Utc::now();
        let subs = cloud.subscriptions();
        assert_eq!(subs.len(), 1, "still one subscription: {subs:?}");
        assert_eq!(subs[0].id, id, "the same subscription");
        assert!(subs[0].expiration > now, "lapsed at {now}");
        if take_over.is_none() && subs[0].renewals > renewals_at_kill {
            take_over = Some(killed.elapsed());
        }
        samples.push((
            started.elapsed().as_secs(),
            subs.len(),
            (subs[0].expiration - now).num_seconds(),
            subs[0].renewals,
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let take_over = take_over.expect("a survivor renewed after the kill");
    println!("subscriptions after the kill (s since the kill, count, s to expiry, renewals): {samples:?}");
    println!("first renewal by a survivor {take_over:?} after the kill");
    assert!(
        take_over < Duration::from_secs(60),
        "renewed within a lifetime"
    );

    // An emergency after the kill alarms on both survivors.
    posted.push(
        cloud
            .post_message(
                CHAT,
                emergency_message("u-3", "Lee Chan", "2 Main St, Springfield"),
            )
            .await,
    );
    for b in &mut boxes {
        b.log
            .wait_for("emergency call recognised", Duration::from_secs(60))
            .await;
    }

    // A stranger with Send rights publishes on the fleet's subscription with its own state.
    let mut forged: serde_json::Value =
        serde_json::from_str(&basic("a-strangers-state", "forged-1", "created")).expect("json");
    forged["value"][0]["subscriptionId"] = serde_json::json!(id);
    let sender = Sender::new(&hub);
    sender.send(None, forged.to_string().as_bytes());
    sender.flush();
    for b in &mut boxes {
        let line = b
            .log
            .wait_for("refused-notifications", Duration::from_secs(60))
            .await;
        assert!(line.contains("trouble"), "{line}");
    }

    let mut per_box = Vec::new();
    for mut b in boxes {
        let status = sigterm_and_wait(&mut b.run, Duration::from_secs(30)).await;
        assert!(status.success(), "{}: {status:?}", b.name);
        let text = b.log.text();
        let recognised = text.matches("emergency call recognised").count();
        let refused = text.matches("notification refused").count();
        let store = beacon::store::Store::open(&b.data).expect("store");
        let recorded = posted
            .iter()
            .filter(|m| {
                store
                    .calls
                    .get(&format!("{CHAT}/{m}"))
                    .ok()
                    .flatten()
                    .is_some()
            })
            .count();
        per_box.push((b.name.clone(), recognised, recorded));
        assert_eq!(recognised, 3, "{}: each emergency alarms once", b.name);
        assert_eq!(recorded, 3, "{}: every call recorded", b.name);
        assert_eq!(
            refused, 1,
            "{}: only the stranger's notification refused",
            b.name
        );
        assert!(
            !text.contains(fleet.client_state.expose()),
            "the clientState is in a log"
        );
    }
    // The killed box: what it recorded before the kill (a call recognised just before a
    // kill -9 may still be only in its inbox and the hub, taken up at its next start).
    let victim_store = beacon::store::Store::open(&victim.data).expect("store");
    let victim_recorded = posted[..2]
        .iter()
        .filter(|m| {
            victim_store
                .calls
                .get(&format!("{CHAT}/{m}"))
                .ok()
                .flatten()
                .is_some()
        })
        .count();
    println!("alarms per box (name, recognised, recorded): {per_box:?}; killed box recorded {victim_recorded}");
}
