//! The health supervisor turns a fault into a trouble the alarm shows (display, trouble relay,
//! followers) and clears it when the fault goes; its report says the same.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use beacon::eventhub::consumer::ConsumerStatus;
use beacon::feeds::StatusFeeds;
use beacon::health::{HealthReport, IngestCounters, Limits, Supervisor};
use chrono::Utc;
use tokio::sync::watch;

/// Waits until the alarm shows (or stops showing) a trouble for `component`.
async fn trouble_shown(
    view: &mut watch::Receiver<beacon::alarm_task::AlarmView>,
    component: &str,
    shown: bool,
) -> Option<String> {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let detail = view
                .borrow_and_update()
                .display
                .troubles
                .iter()
                .find(|t| t.component == component)
                .map(|t| t.detail.clone());
            if detail.is_some() == shown {
                return detail;
            }
            if view.changed().await.is_err() {
                return None;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("trouble {component} shown={shown} within 5 s"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_hub_becomes_a_trouble_and_clears_when_it_is_back() {
    let dir = tempfile::tempdir().expect("dir");
    let store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = beacon::alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let hub = Arc::new(ConsumerStatus::default());
    *hub.last_error.lock().expect("lock") = Some("Connection refused".into());
    let (_, last_call) = watch::channel(None);
    let (report_tx, mut report) = watch::channel(HealthReport::default());
    let supervisor = tokio::spawn(
        Supervisor {
            store: store.clone(),
            alarm: alarm.clone(),
            status: StatusFeeds {
                auth: None,
                subscription: None,
                hub: hub.clone(),
                poll: None,
                call_events: None,
                last_call,
                mqtt: None,
                setup_code: beacon::feeds::no_setup_code(),
                certificate: beacon::feeds::no_setup_code(),
                join_code: beacon::feeds::no_join_code(),
            },
            counters: Arc::new(IngestCounters::default()),
            limits: Limits {
                hub_grace: chrono::Duration::zero(),
                ..Limits::default()
            },
            interval: Duration::from_millis(50),
        }
        .run(report_tx),
    );
    let mut view = alarm.view();
    let detail = trouble_shown(&mut view, "event-hub", true)
        .await
        .expect("detail");
    assert!(detail.contains("Connection refused"), "{detail}");
    assert!(
        view.borrow().outputs.trouble.is_on(),
        "the trouble output is on"
    );
    report.changed().await.expect("report");
    assert!(!report.borrow().healthy());

    hub.connected.store(true, Ordering::Relaxed);
    trouble_shown(&mut view, "event-hub", false).await;
    assert!(
        !view.borrow().outputs.trouble.is_on(),
        "the trouble output is off"
    );
    tokio::time::timeout(Duration::from_secs(5), report.wait_for(|r| r.healthy()))
        .await
        .expect("a healthy report within 5 s")
        .expect("report open");
    supervisor.abort();
}
