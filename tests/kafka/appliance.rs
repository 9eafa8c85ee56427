//! The whole appliance inside the test process — the one assembly `beacon run` uses, on the
//! simulated board, fed by the cloud (the fake Microsoft cloud and the real broker) — with its
//! shutdown passed in as a future: it subscribes by itself, an emergency posted in Teams lights
//! the strobe, and after the shutdown the outputs are off and the alarm is kept in the store.

use std::time::Duration;

use beacon::calls::CallLog;

use crate::support::in_process::{
    appliance, fault_of, set_poll, start, start_with_context, subscribed,
};
use crate::support::notifications::emergency_message;
use crate::support::process::{hub_and_cloud, sign_in, write_cloud_config};

const CHAT: &str = "19:inproc0c1e9a2b4c7d8e9f00112233aab@thread.v2";

#[tokio::test(flavor = "multi_thread")]
async fn the_appliance_runs_in_process_until_its_shutdown_future_resolves() {
    let (hub, cloud) = hub_and_cloud("in-process-hub", 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, data) = write_cloud_config(dir.path(), "in-process", &hub, &cloud);
    sign_in(&path, &cloud).await;

    let appliance = appliance(&path).await;
    let lamps = appliance.lamps().cloned().expect("simulated board");
    let calls = CallLog::of(appliance.store());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(appliance.run_until(async {
        let _ = stopped.await;
    }));

    subscribed(&cloud).await;
    let id = cloud
        .post_message(
            CHAT,
            emergency_message("u-7", "Ana Lima", "4 Harbour Rd, Portsmouth"),
        )
        .await;
    let record = calls
        .wait_for(&format!("{CHAT}/{id}"), Duration::from_secs(30))
        .await
        .expect("readable")
        .expect("the call is recorded");
    assert_eq!(record.call.caller.display_name, "Ana Lima");
    assert!(record.alarmed_locally);
    assert!(
        lamps.siren.is_on(),
        "the siren sounds for the recognised call"
    );

    stop.send(()).expect("still running");
    let stopped = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops within 30 s")
        .expect("joins");
    assert!(stopped.is_ok(), "clean stop: {stopped:?}");
    assert!(
        !lamps.siren.is_on() && !lamps.strobe.is_on(),
        "outputs de-energised once the alarm has ended"
    );
    drop(calls);
    let store = beacon::store::Store::open(&data).expect("store reopens after the stop");
    let alarm = beacon::alarm_task::stored_state(&store).expect("alarm state persisted");
    assert_eq!(
        alarm.calls.len(),
        1,
        "still alerting after a restart: {alarm:?}"
    );
}

/// Graph drops the notification of an emergency (graph-teams.md B.11) and the appliance is
/// then stopped cleanly: the resync after the restart must still look back far enough to
/// find the message — a clean stop is no proof that push delivered everything before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_notification_was_lost_before_a_clean_stop_alarms_after_the_restart() {
    let (hub, cloud) = hub_and_cloud("lost-before-stop-hub", 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, _data) = write_cloud_config(dir.path(), "lost-before-stop", &hub, &cloud);
    sign_in(&path, &cloud).await;

    let (store, stop, running) = start(&path).await;
    subscribed(&cloud).await;
    cloud.set_publishing(false);
    let id = cloud
        .post_message(
            CHAT,
            emergency_message("u-9", "Jordan Rivera", "12 Quay St, Bristol"),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(()).expect("still running");
    let stopped = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops within 30 s")
        .expect("joins");
    assert!(stopped.is_ok(), "clean stop: {stopped:?}");
    assert!(
        CallLog::of(&store)
            .get(&format!("{CHAT}/{id}"))
            .ok()
            .flatten()
            .is_none(),
        "push dropped the notification: no call before the restart"
    );
    drop(store);

    cloud.set_publishing(true);
    let (store, stop, running) = start(&path).await;
    let record = CallLog::of(&store)
        .wait_for(&format!("{CHAT}/{id}"), Duration::from_secs(30))
        .await
        .expect("readable")
        .expect("the resync after the restart found the call");
    assert_eq!(record.call.caller.display_name, "Jordan Rivera");
    stop.send(()).expect("still running");
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
}

/// The poll interval the safety-net tests configure (the default is 30 s).
const POLL_EVERY: Duration = Duration::from_secs(5);
/// The window after which a call push did not report counts as missed (the default is 3 min).
const PATH_WINDOW: Duration = Duration::from_secs(10);

/// Graph drops the notification of an emergency silently (B.11: not published, no `missed`
/// event, the message still in the chat): the reconciliation poll finds it and the alarm
/// sounds within one poll interval; the call says the poll found it. Also measures what the
/// poll costs in Graph requests.
#[tokio::test(flavor = "multi_thread")]
async fn a_silently_dropped_emergency_alarms_from_the_poll_within_one_interval() {
    let (hub, cloud) = hub_and_cloud("silent-drop-hub", 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, _data) = write_cloud_config(dir.path(), "silent-drop", &hub, &cloud);
    set_poll(&path, POLL_EVERY, PATH_WINDOW);
    sign_in(&path, &cloud).await;

    let (store, context, stop, running) = start_with_context(&path).await;
    subscribed(&cloud).await;
    // An ordinary message, notified: push works, and the poll does not report it again.
    let pushed = cloud
        .post_message(
            CHAT,
            emergency_message("u-3", "Sam Okafor", "1 Mill Lane, Leeds"),
        )
        .await;
    let record = CallLog::of(&store)
        .wait_for(&format!("{CHAT}/{pushed}"), Duration::from_secs(30))
        .await
        .expect("readable")
        .expect("the notified call is recorded");
    assert_eq!(
        record.first_path(),
        Some(beacon::calls::Path::ChatNotification)
    );

    cloud.drop_next_notifications(1);
    let posted = std::time::Instant::now();
    let id = cloud
        .post_message(
            CHAT,
            emergency_message("u-9", "Jordan Rivera", "12 Quay St, Bristol"),
        )
        .await;
    assert_eq!(cloud.dropped_notifications().len(), 1, "Graph dropped it");
    let record = CallLog::of(&store)
        .wait_for(&format!("{CHAT}/{id}"), POLL_EVERY * 3)
        .await
        .expect("readable")
        .expect("the poll found the call whose notification was dropped");
    let took = posted.elapsed();
    println!("silent drop → call recorded by the poll: {took:?} (poll every {POLL_EVERY:?})");
    assert!(record.alarmed_locally, "the call alarms");
    assert_eq!(record.first_path(), Some(beacon::calls::Path::ChatPoll));
    assert!(
        took <= POLL_EVERY + Duration::from_secs(1),
        "alarmed within one poll interval: {took:?}"
    );

    // What the poll costs: Graph requests over a few idle intervals (the last message is in
    // the look-back window, so its chat is read too).
    let window = POLL_EVERY * 4;
    let from = chrono::Utc::now();
    tokio::time::sleep(window).await;
    let reads: Vec<_> = cloud
        .requests_to("/v1.0/")
        .into_iter()
        .filter(|r| r.at_utc >= from && r.method == "GET")
        .filter(|r| r.path == "/v1.0/me/chats" || r.path.ends_with("/messages"))
        .collect();
    let lists = reads.iter().filter(|r| r.path == "/v1.0/me/chats").count();
    println!(
        "poll cost: {} Graph requests in {window:?} ({lists} chat lists, {} message lists) = {:.0} per hour at this interval",
        reads.len(),
        reads.len() - lists,
        reads.len() as f64 * 3600.0 / window.as_secs_f64()
    );
    assert!(lists >= 3, "the poll kept polling: {lists} lists");

    // Supervision: push did not report the call within the window — a trouble naming the path
    // and the call; the figures per path on the status (and so /api/health).
    let trouble = fault_of(&context, "chat-notifications", Duration::from_secs(30))
        .await
        .expect("a trouble names the path that missed the call");
    assert!(
        trouble
            .detail
            .starts_with("chat notifications did not report the call of Jordan Rivera at "),
        "{}",
        trouble.detail
    );
    let status = beacon::web::status::read(&context, chrono::Utc::now());
    let line = |name: &str| {
        status
            .lines
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.text.clone())
            .unwrap_or_default()
    };
    let pushed_line = line("Calls by chat notification");
    assert!(
        pushed_line.starts_with("1 calls, last ") && pushed_line.ends_with(", 1 missed"),
        "{pushed_line}"
    );
    let polled_line = line("Calls by chat poll");
    assert!(polled_line.starts_with("1 calls, last "), "{polled_line}");
    let poll_line = line("Chat poll");
    assert!(
        poll_line.starts_with("every 5 s, last read "),
        "{poll_line}"
    );

    let raised = context.alarm.view().borrow().clone();

    // Graph delivers the notification late after all (past the window): a duplicate, never a
    // second alarm; the call notes that push reported it.
    assert_eq!(cloud.deliver_dropped_late().await, 1);
    let key = format!("{CHAT}/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let record = CallLog::of(&store)
            .get(&key)
            .expect("readable")
            .expect("recorded");
        if record
            .seen_by(beacon::calls::Path::ChatNotification)
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late notification is noted on the call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        context.alarm.view().borrow().display.calls.len(),
        raised.display.calls.len(),
        "the late notification raised nothing"
    );

    stop.send(()).expect("still running");
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
}

/// Graph sends a `missed` lifecycle event (C.4: "some notifications not delivered"): the
/// chats are read at once, not at the next poll (here 5 minutes away).
#[tokio::test(flavor = "multi_thread")]
async fn a_missed_lifecycle_event_reads_the_chats_at_once() {
    let (hub, cloud) = hub_and_cloud("missed-event-hub", 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, _data) = write_cloud_config(dir.path(), "missed-event", &hub, &cloud);
    set_poll(&path, Duration::from_secs(300), PATH_WINDOW);
    sign_in(&path, &cloud).await;
    let (store, stop, running) = start(&path).await;
    subscribed(&cloud).await;
    // Let the start's read finish, so what follows is the lifecycle event's doing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cloud.drop_next_notifications(1);
    let id = cloud
        .post_message(
            CHAT,
            emergency_message("u-5", "Alex Chen", "9 Dock Rd, Hull"),
        )
        .await;
    let subscription = cloud.subscriptions()[0].id.clone();
    assert!(
        cloud
            .send_lifecycle(
                &subscription,
                crate::support::fake_cloud::LifecycleEvent::Missed
            )
            .await,
        "the missed event is published"
    );
    let record = CallLog::of(&store)
        .wait_for(&format!("{CHAT}/{id}"), Duration::from_secs(20))
        .await
        .expect("readable")
        .expect("the read after the missed event found the call");
    assert_eq!(record.first_path(), Some(beacon::calls::Path::ChatPoll));
    stop.send(()).expect("still running");
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
}

/// The sign-in is revoked while nothing happens (password changed; Graph refuses the access
/// token at once): the poll's next read notices, and it is the sign-in trouble in words —
/// not found out at the next emergency.
#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_revoked_while_idle_becomes_a_trouble() {
    let (hub, cloud) = hub_and_cloud("revoked-idle-hub", 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let (path, _data) = write_cloud_config(dir.path(), "revoked-idle", &hub, &cloud);
    set_poll(&path, POLL_EVERY, PATH_WINDOW);
    sign_in(&path, &cloud).await;
    let (_store, context, stop, running) = start_with_context(&path).await;
    subscribed(&cloud).await;
    cloud.revoke_session(crate::support::fake_cloud::GrantFailure::PasswordChanged);
    cloud.expire_access_tokens();
    let trouble = fault_of(&context, "sign-in", Duration::from_secs(40))
        .await
        .expect("the revoked sign-in is a trouble while the box is idle");
    assert!(
        trouble.detail.contains("AADSTS50173") || trouble.detail.to_lowercase().contains("sign"),
        "{}",
        trouble.detail
    );
    println!("revoked sign-in trouble: {}", trouble.detail);
    stop.send(()).expect("still running");
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
}
