//! The alarm's state file (`alarm-state.json` beside the store) when the disk lets it down:
//! a write that fails and a file that cannot be read at the start are each a trouble a guard
//! sees, never only a log line — and the alarm itself goes on. And a raise whose audit record
//! a power cut took (the state file is written first) gets its record back at the next start.

use std::time::Duration;

use beacon::alarm::{
    AlarmState, AuditAction, AuditRecord, CallSummary, Event, Source, LOST_RAISE_DETAIL,
};
use beacon::alarm_task::{self, AlarmHandle, TROUBLE_COMPONENT};
use beacon::store::{Store, ALARM_STATE};

fn raise(key: &str) -> Event {
    Event::CallRaised {
        key: key.into(),
        summary: CallSummary {
            caller_name: Some("Kim Park".into()),
            ..CallSummary::default()
        },
    }
}

/// The state file's trouble as the display shows it, if raised.
fn trouble(alarm: &AlarmHandle) -> Option<String> {
    alarm
        .view()
        .borrow()
        .display
        .troubles
        .iter()
        .find(|t| t.component == TROUBLE_COMPONENT)
        .map(|t| t.detail.clone())
}

/// The trouble follows the alarm's own step (the task raises it right after answering).
async fn trouble_within(alarm: &AlarmHandle, raised: bool) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = trouble(alarm);
        if now.is_some() == raised || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_write_that_fails_is_a_trouble_until_a_write_works_and_the_alarm_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let store = Store::open(&data).expect("store");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store, chrono::Utc::now());
    // The temporary file the write goes through cannot be made: every write fails.
    let blocker = data.join(format!("{ALARM_STATE}.tmp"));
    std::fs::create_dir(&blocker).expect("blocker");
    alarm.send(raise("19:chat@thread.v2/1")).await;
    assert_eq!(
        alarm.view().borrow().state,
        AlarmState::Alerting,
        "the call alarms all the same"
    );
    let detail = trouble_within(&alarm, true)
        .await
        .expect("a failed write of the alarm state is a trouble");
    assert!(
        detail.contains("cannot write the alarm state") && detail.contains("alarm again"),
        "{detail}"
    );
    // The disk is back: the next change is written and the trouble clears.
    std::fs::remove_dir(&blocker).expect("unblock");
    alarm
        .send(Event::Acknowledge {
            source: Source::System,
            who: None,
        })
        .await;
    assert_eq!(trouble_within(&alarm, false).await, None, "cleared");
    let written = std::fs::read_to_string(data.join(ALARM_STATE)).expect("written");
    assert!(written.contains("19:chat@thread.v2/1"), "{written}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_state_file_is_kept_aside_and_is_a_trouble_and_the_alarm_works() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let store = Store::open(&data).expect("store");
    std::fs::write(data.join(ALARM_STATE), b"{\"version\":1,\"calls\":[{\"ke").expect("damage");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store, chrono::Utc::now());
    let detail = trouble(&alarm).expect("the start says the state was unreadable");
    assert!(
        detail.contains("unreadable") && detail.contains("kept as"),
        "{detail}"
    );
    let aside: Vec<_> = std::fs::read_dir(&data)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("alarm-state.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept for diagnosis");
    let damaged = std::fs::read(data.join(&aside[0])).expect("aside");
    assert!(damaged.ends_with(b"\"ke"), "kept as it was");
    // The alarm works and keeps its state again.
    alarm.send(raise("19:chat@thread.v2/2")).await;
    assert_eq!(alarm.view().borrow().state, AlarmState::Alerting);
    let written = std::fs::read_to_string(data.join(ALARM_STATE)).expect("written");
    assert!(written.contains("19:chat@thread.v2/2"), "{written}");
    assert!(
        trouble(&alarm).is_some(),
        "held until the next start: the calls of before may be lost"
    );
}

/// The audit's `call_raised` records, in the order they were written, with their store keys.
fn raise_records(store: &Store) -> Vec<(String, AuditRecord)> {
    store
        .audit
        .read_as::<AuditRecord>()
        .iter()
        .filter_map(|(id, record)| record.ok().map(|r| (id, r)))
        .filter(|(_, r)| r.action == AuditAction::CallRaised)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raise_whose_audit_record_a_power_cut_took_gets_it_back_at_the_next_start_once() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, task) = alarm_task::spawn(Default::default(), store.clone(), chrono::Utc::now());
    alarm.send(raise("19:chat@thread.v2/1")).await;
    alarm.send(raise("19:chat@thread.v2/2")).await;
    drop(alarm);
    task.await.expect("the alarm task ends with its handle");
    let written = raise_records(&store);
    assert_eq!(written.len(), 2, "{written:?}");
    let (lost_id, lost) = written[1].clone();
    // The cut: the state file kept the second raise, the audit lost its record.
    assert!(store.audit.remove(&lost_id).expect("remove"));

    for start in 1..=2 {
        let (alarm, task) =
            alarm_task::spawn(Default::default(), store.clone(), chrono::Utc::now());
        assert_eq!(alarm.view().borrow().state, AlarmState::Alerting);
        drop(alarm);
        task.await.expect("ends");
        let raises = raise_records(&store);
        assert_eq!(
            raises.len(),
            2,
            "start {start}: one record per raise: {raises:?}"
        );
        let back = &raises[1].1;
        assert_eq!(back.keys, lost.keys);
        assert_eq!(
            back.at, lost.at,
            "at the time of the raise, not of the start"
        );
        assert_eq!(back.source, Source::Restore);
        assert_eq!(back.detail.as_deref(), Some(LOST_RAISE_DETAIL));
        assert_eq!(
            raises[0].1, written[0].1,
            "the surviving record is left as it was"
        );
    }
}

/// When the alarm answers a raise, the state file already holds the call and its key (what
/// the caller then writes may rely on it), also with many keys remembered before.
#[tokio::test(flavor = "multi_thread")]
async fn a_raise_is_in_the_state_file_when_the_alarm_answers() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store.clone(), chrono::Utc::now());
    for i in 0..20 {
        let key = format!("19:chat@thread.v2/{i}");
        alarm.send(raise(&key)).await;
        let state = alarm_task::stored_state(&store).expect("the state file");
        assert!(state.calls.iter().any(|c| c.key == key), "call {i}");
        assert!(state.remembered.iter().any(|r| r.key == key), "key {i}");
        assert_eq!(state.remembered.len(), i + 1);
    }
}
