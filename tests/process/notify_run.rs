//! `beacon run` with `[notify]`: an emergency posted in Teams travels through the fake
//! Microsoft cloud and the real broker, alarms, and reaches the webhook and PagerDuty fakes;
//! SIGTERM still stops the service cleanly (the notifier gives its alarm handle back), the
//! outbox records the deliveries, and the log holds none of the notification secrets. An
//! emergency still in the inbox when the service died is recognised at the next start and
//! e-mailed then.

use crate::support::campaign::outputs as smtp_sink;

use std::time::Duration;

use crate::support::fake_channels::{FakeChannels, Peer, PAGERDUTY_KEY};
use crate::support::notifications::emergency_message;
use crate::support::process::{
    cloud_sections, hub_and_cloud, run_logged, sign_in, sigterm_and_wait,
};

const CHAT: &str = "19:notify0c1e9a2b4c7d8e9f00112233aa@thread.v2";
const HMAC: &str = "run-hmac-secret-0f3c";

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_reaches_the_webhook_and_pagerduty_and_sigterm_still_stops() {
    let (hub, cloud) = hub_and_cloud("notify-hub", 1).await;
    let fake = FakeChannels::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = dir.path().join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"notify-run\"\ndata_dir = \"{}\"\n{}\
             [notify]\nwebhook_url = \"{}\"\nwebhook_secret = \"{HMAC}\"\npagerduty_url = \"{}\"\npagerduty_routing_key = \"{PAGERDUTY_KEY}\"\n\
             [[notify.recipients]]\nchannel = \"webhook\"\n\
             [[notify.recipients]]\nchannel = \"pagerduty\"\n",
            data.display(),
            cloud_sections(&hub, &cloud),
            fake.webhook_url(),
            fake.pagerduty_url(),
        ),
    )
    .expect("config");
    sign_in(&config, &cloud).await;
    let (mut run, mut log) = run_logged(&config, "debug");
    log.wait_for("subscription created", Duration::from_secs(30))
        .await;
    cloud
        .post_message(
            CHAT,
            emergency_message("u-9", "Kim Park", "1 Main St, Springfield"),
        )
        .await;

    let hooks = fake
        .wait_accepted(Peer::Webhook, 1, Duration::from_secs(30))
        .await;
    assert_eq!(hooks.len(), 1, "the webhook got the alarm");
    let body = hooks[0].json();
    assert_eq!(body["event"], "alarm");
    assert_eq!(body["caller"], "Kim Park");
    assert!(body["location"]
        .as_str()
        .is_some_and(|l| l.contains("1 Main St")));
    let pd = fake
        .wait_accepted(Peer::PagerDuty, 1, Duration::from_secs(30))
        .await;
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0].json()["event_action"], "trigger");

    let status = sigterm_and_wait(&mut run, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");

    let store = beacon::store::Store::open(&data).expect("store");
    let statuses: Vec<_> = store
        .outbox
        .iter()
        .filter_map(|(_, v)| v.ok())
        .map(|v| {
            (
                v["channel"].clone(),
                v["status"].clone(),
                v["call_key"].clone(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, s, _)| s == "delivered"),
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|(_, _, k)| k.as_str().is_some_and(|k| k.starts_with(CHAT))));
    let log = log.text();
    assert!(log.contains("notification delivered"), "the log says so");
    for secret in [PAGERDUTY_KEY, HMAC, "hook-url-token-93e1"] {
        assert!(!log.contains(secret), "a notification secret is in the log");
    }
}

/// Waits until `run` has exited (SIGKILL sent by the caller); the log thread ends with it.
async fn reap(run: &mut std::process::Child) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while run.try_wait().expect("wait").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "beacon did not die");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_left_in_the_inbox_by_a_crash_is_emailed_after_the_restart() {
    let (hub, cloud) = hub_and_cloud("inbox-hub", 1).await;
    let sink = smtp_sink::SmtpSink::start();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = dir.path().join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"inbox-run\"\ndata_dir = \"{}\"\n{}\
             [notify]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_security = \"none\"\nsmtp_from = \"Beacon <beacon@inbox.test>\"\n\
             [[notify.recipients]]\nchannel = \"email\"\nto = \"{}\"\n",
            data.display(),
            cloud_sections(&hub, &cloud),
            sink.port,
            smtp_sink::RECIPIENT,
        ),
    )
    .expect("config");
    sign_in(&config, &cloud).await;

    // First life: Graph answers every message fetch with 503, so the emergency's notification
    // is taken from the hub into the inbox but cannot be read; then the service is killed.
    let (mut run, mut log) = run_logged(&config, "debug");
    log.wait_for("subscription created", Duration::from_secs(30))
        .await;
    cloud.server_error("/v1.0/chats", 10_000, 503);
    cloud
        .post_message(
            CHAT,
            emergency_message("u-4", "Ana Lima", "9 Harbour Rd, Springfield"),
        )
        .await;
    log.wait_for("message not fetched; will retry", Duration::from_secs(30))
        .await;
    run.kill().expect("SIGKILL");
    reap(&mut run).await;
    assert!(
        sink.messages().is_empty(),
        "nothing could be sent before the message was read"
    );

    // Second life: Graph answers again; the inbox entry is recognised at start and e-mailed.
    cloud.clear_faults();
    let (mut run, mut log) = run_logged(&config, "debug");
    log.wait_for("emergency call recognised", Duration::from_secs(30))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mails = loop {
        let mails = sink.messages();
        if !mails.is_empty() || tokio::time::Instant::now() >= deadline {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    run.kill().expect("SIGKILL");
    reap(&mut run).await;
    assert_eq!(mails.len(), 1, "one e-mail for the one emergency");
    assert!(mails[0].contains("Ana Lima"), "{}", mails[0]);
    assert!(mails[0].contains("9 Harbour Rd"), "{}", mails[0]);
}
