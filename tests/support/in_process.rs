//! The whole appliance inside the test process, as `beacon run` assembles it, on the simulated
//! board and fed by the cloud (the fake Microsoft cloud and the real broker): starting it from
//! a configuration file, waiting for its subscription and for a trouble, and tuning the poll.

use std::time::Duration;

use beacon::app::{Appliance, Board, Core, Feed, Options};
use beacon::config::Config;
use beacon::store::Store;

/// The appliance assembled from the configuration at `path` on the simulated board, started
/// (not yet running: `run_until` runs it).
pub async fn appliance(path: &std::path::Path) -> Appliance {
    let config = Config::load(path).expect("valid configuration");
    let core = Core::open(&config).expect("store");
    Appliance::start(
        config,
        core,
        Options {
            board: Board::Simulated,
            feed: Feed::Cloud,
            demo_call: None,
        },
    )
    .await
    .expect("starts")
}

/// Starts the appliance from the configuration at `path` on the simulated board.
pub async fn start(
    path: &std::path::Path,
) -> (
    Store,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), beacon::app::AppError>>,
) {
    let (store, _, stop, running) = start_with_context(path).await;
    (store, stop, running)
}

/// [`start`], with what the console is handed (status feeds, health report).
pub async fn start_with_context(
    path: &std::path::Path,
) -> (
    Store,
    beacon::web::context::ConsoleContext,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), beacon::app::AppError>>,
) {
    let appliance = appliance(path).await;
    let store = appliance.store().clone();
    let context = appliance.context().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(appliance.run_until(async {
        let _ = stopped.await;
    }));
    (store, context, stop, running)
}

/// The fault the health supervisor reports for `component`, once it does (within `within`).
pub async fn fault_of(
    context: &beacon::web::ConsoleContext,
    component: &str,
    within: Duration,
) -> Result<beacon::health::Fault, tokio::time::error::Elapsed> {
    let mut health = context.health.clone();
    tokio::time::timeout(within, async {
        loop {
            let found = health
                .borrow_and_update()
                .faults
                .iter()
                .find(|f| f.component == component)
                .cloned();
            if let Some(fault) = found {
                return fault;
            }
            let _ = health.changed().await;
        }
    })
    .await
}

/// Writes the poll interval and the path window into the configuration at `path`.
pub fn set_poll(path: &std::path::Path, every: Duration, window: Duration) {
    let config = std::fs::read_to_string(path).expect("config");
    std::fs::write(
        path,
        config.replacen(
            "[graph]\n",
            &format!("[graph]\nreconcile_every_secs = {}\n", every.as_secs()),
            1,
        ) + &format!("\n[ingest]\npath_window_secs = {}\n", window.as_secs()),
    )
    .expect("config");
}

/// Waits until the cloud has a subscription.
pub async fn subscribed(cloud: &crate::support::fake_cloud::FakeCloud) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while cloud.subscriptions().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the appliance created no subscription"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until push works end to end: the notification of an ordinary (not important) message
/// posted in a chat is taken from the hub (the consumer has joined its group and holds a
/// partition), so what a test posts next is timed from a box that reads its hub. (Counted as a
/// record taken in, not as a hand-off: the poll may have found the message first.)
pub async fn push_flows(
    context: &beacon::web::ConsoleContext,
    cloud: &crate::support::fake_cloud::FakeCloud,
) {
    use std::sync::atomic::Ordering;
    let before = context.counters.records.load(Ordering::Relaxed);
    cloud
        .post_message(
            "19:warmup0c1e9a2b4c7d8e9f00112233aab@thread.v2",
            serde_json::json!({
                "messageType": "message", "importance": "normal",
                "from": {"user": {"id": "00000000-0000-0000-0000-00000000beef", "displayName": "Front Desk"}},
                "body": {"contentType": "text", "content": "Shift change at 18:00"}
            }),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while context.counters.records.load(Ordering::Relaxed) == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "push did not reach the appliance within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
