//! `beacon run` as the service runs it, against the fake Microsoft cloud and the real broker:
//! after `beacon login`, it creates the subscription by itself, consumes the hub, fetches and
//! recognises an emergency, and after SIGTERM the store holds the call and an alarm that is
//! still alerting (it will come back alarming after a restart).

use std::time::Duration;

use crate::support::notifications::emergency_message;
use crate::support::process::{
    hub_and_cloud, run_logged, sign_in, sigterm_and_wait, write_cloud_config,
};

const CHAT: &str = "19:run0c1e9a2b4c7d8e9f00112233aabb@thread.v2";

#[tokio::test(flavor = "multi_thread")]
async fn the_service_subscribes_consumes_recognises_and_keeps_the_alarm() {
    let (hub, cloud) = hub_and_cloud("run-hub", 2).await;
    let dir = tempfile::tempdir().expect("dir");
    let (config, data) = write_cloud_config(dir.path(), "run-test", &hub, &cloud);

    // `beacon login`, approved by the person at the browser; then the service.
    sign_in(&config, &cloud).await;
    let (mut run, mut log) = run_logged(&config, "info");
    log.wait_for("subscription created", Duration::from_secs(30))
        .await;
    assert_eq!(cloud.subscriptions().len(), 1);
    assert_eq!(cloud.subscriptions()[0].hub, hub);

    let id = cloud
        .post_message(
            CHAT,
            emergency_message("u-9", "Kim Park", "1 Main St, Springfield"),
        )
        .await;
    let line = log
        .wait_for("emergency call recognised", Duration::from_secs(30))
        .await;
    assert!(line.contains(&id), "{line}");

    // SIGTERM: a clean stop.
    let status = sigterm_and_wait(&mut run, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");

    let store = beacon::store::Store::open(&data).expect("store");
    let key = format!("{CHAT}/{id}");
    let record = store
        .calls
        .get(&key)
        .expect("read")
        .expect("the call is recorded");
    assert_eq!(record["call"]["caller"]["display_name"], "Kim Park");
    let alarm = beacon::alarm_task::stored_state(&store).expect("alarm state persisted");
    assert_eq!(alarm.calls.len(), 1, "still alerting: {alarm:?}");
    assert_eq!(store.inbox.len(), 0, "nothing left pending");
}
