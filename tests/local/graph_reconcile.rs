//! Reading the chats behind push (graph::resync, as the reconciliation poll runs it) against
//! the fake Microsoft cloud: what it costs in Graph requests, and throttling waited out.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::support::fake_cloud::{FakeCloud, FakeOptions};
use crate::support::signed_in;
use beacon::graph::resync::{self, POLL};
use beacon::store::Store;

const CHAT: &str = "19:reconcile0a1b2c3d4e5f60718293a4b5c6d7e8f9@thread.v2";

fn message(text: &str) -> serde_json::Value {
    serde_json::json!({"messageType": "message", "importance": "normal",
                       "body": {"contentType": "text", "content": text}})
}

/// A quiet account costs one request per poll; a chat with a new message one more; a 429 with
/// `Retry-After` is waited out and the read still finds the message.
#[tokio::test(flavor = "multi_thread")]
async fn a_poll_costs_one_request_when_quiet_and_waits_out_throttling() {
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (_keeper, graph) = signed_in::sign_in(&cloud, &store).await;
    // Old activity in a few chats, then a first read to set the watermark.
    for n in 0..3 {
        cloud
            .post_message(&format!("{CHAT}{n}"), message("earlier"))
            .await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let first = Utc::now();
    resync::resync(
        &graph,
        &store,
        &tx,
        first - chrono::Duration::hours(1),
        first,
        POLL,
    )
    .await
    .expect("first read");
    while rx.try_recv().is_ok() {}

    // Quiet: one request. (Since the watermark, less nothing: `since` is passed in here.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = Utc::now();
    let quiet = resync::resync(
        &graph,
        &store,
        &tx,
        first + chrono::Duration::seconds(1),
        now,
        POLL,
    )
    .await
    .expect("quiet read");
    assert_eq!((quiet.requests, quiet.handed_off), (1, 0), "{quiet:?}");

    // A new message, and Graph throttles the chat list once.
    let id = cloud.post_message(CHAT, message("new")).await;
    cloud.throttle("/v1.0/me/chats", 1, 2);
    let started = Instant::now();
    // A second back, so the new message is inside whatever the clocks do.
    let since = now - chrono::Duration::seconds(1);
    let report = resync::resync(&graph, &store, &tx, since, Utc::now(), POLL)
        .await
        .expect("read after the throttling");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!((report.requests, report.handed_off), (2, 1), "{report:?}");
    let entry = rx.try_recv().expect("handed on");
    assert_eq!(entry.position, POLL);
    assert!(entry.key.contains(&id));
    let throttled = cloud
        .requests_to("/v1.0/me/chats")
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(throttled, 1);
}
