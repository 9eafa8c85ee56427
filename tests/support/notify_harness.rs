//! A bench for the notifier: a real store and alarm service, call records as the recogniser
//! writes them, and the notifier started (and restarted) on them.
#![allow(dead_code)]

use std::time::Duration;

use beacon::alarm::{AlarmConfig, CallSummary, Event, Source};
use beacon::alarm_task::{self, AlarmHandle};
use beacon::outputs::notify::outbox::{Outbox, OutboxEntry};
use beacon::outputs::notify::{Notifier, NotifyConfig};
use beacon::store::Store;
use chrono::Utc;

pub const DEVICE: &str = "desk-1";

pub struct Bench {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub alarm: AlarmHandle,
    alarm_task: tokio::task::JoinHandle<()>,
    pub notifier: Option<Notifier>,
}

impl Bench {
    pub fn new() -> Bench {
        Bench::with_alarm(alarm_config())
    }

    /// A bench whose alarm runs with `config` (escalation times, …).
    pub fn with_alarm(config: AlarmConfig) -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let (alarm, alarm_task) = alarm_task::spawn(config, store.clone(), Utc::now());
        Bench {
            dir,
            store,
            alarm,
            alarm_task,
            notifier: None,
        }
    }

    /// Starts the notifier with `config` (panics when it does not validate).
    pub fn start(&mut self, config: &NotifyConfig) {
        let templates = config.validate().expect("templates");
        self.notifier = Notifier::start(
            config,
            templates,
            self.store.clone(),
            DEVICE,
            self.alarm.clone(),
        )
        .expect("notifier starts");
        assert!(self.notifier.is_some(), "no channel configured");
    }

    pub async fn stop(&mut self) {
        if let Some(n) = self.notifier.take() {
            n.shutdown().await;
        }
    }

    /// Stops everything, closes the store and opens it again, as after a reboot (the
    /// notifier is not started again).
    pub async fn restart(self) -> Bench {
        let Bench {
            dir,
            store,
            alarm,
            alarm_task,
            notifier,
        } = self;
        if let Some(n) = notifier {
            n.shutdown().await;
        }
        drop(alarm);
        alarm_task.await.expect("alarm task");
        store.flush().expect("flush");
        drop(store);
        // The alarm's last state flush may still hold the store on the blocking pool for a
        // moment after its task ended (sled locks the directory until the last handle goes).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let store = loop {
            match Store::open(&dir.path().join("data")) {
                Ok(store) => break store,
                Err(e)
                    if std::time::Instant::now() < deadline && e.to_string().contains("lock") =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("store reopens: {e}"),
            }
        };
        let (alarm, alarm_task) = alarm_task::spawn(alarm_config(), store.clone(), Utc::now());
        Bench {
            dir,
            store,
            alarm,
            alarm_task,
            notifier: None,
        }
    }

    /// Writes the call record the recogniser would (zone, coordinates).
    pub fn record_call(&self, key: &str, zone: Option<&str>, coordinates: Option<(f64, f64)>) {
        let (latitude, longitude) = coordinates.unzip();
        let now = Utc::now();
        let record = beacon::calls::CallRecord {
            key: key.into(),
            kind: beacon::emergency::Kind::Emergency,
            reason: "test".into(),
            call: beacon::emergency::EmergencyCall {
                location: beacon::emergency::Location {
                    latitude,
                    longitude,
                    ..Default::default()
                },
                ..Default::default()
            },
            zone: zone.map(str::to_string),
            alarmed_locally: true,
            late: false,
            received_at: now,
            recognised_at: now,
            updates: 0,
            updated_at: None,
            deleted: false,
            notification: None,
            sources: Vec::new(),
            ended_at: None,
            call_event: None,
        };
        beacon::calls::CallLog::of(&self.store)
            .put(&record)
            .expect("record");
    }

    pub async fn raise(&self, key: &str, summary: CallSummary) {
        self.alarm
            .send(Event::CallRaised {
                key: key.into(),
                summary,
            })
            .await;
    }

    pub async fn acknowledge(&self, who: &str) {
        self.alarm
            .send(Event::Acknowledge {
                source: Source::Web,
                who: Some(who.into()),
            })
            .await;
    }

    pub async fn clear(&self, who: &str) {
        self.alarm
            .send(Event::Clear {
                source: Source::Web,
                who: Some(who.into()),
            })
            .await;
    }

    /// Every outbox entry, in id order.
    pub fn outbox(&self) -> Vec<(String, OutboxEntry)> {
        Outbox::open(self.store.clone()).all()
    }

    /// Waits until `done` holds for the outbox; returns it either way.
    pub async fn wait_outbox(
        &self,
        timeout: Duration,
        done: impl Fn(&[(String, OutboxEntry)]) -> bool,
    ) -> Vec<(String, OutboxEntry)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let entries = self.outbox();
            if done(&entries) || tokio::time::Instant::now() >= deadline {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the alarm shows trouble `component` (or not, with `present` false).
    pub async fn wait_trouble(&self, component: &str, present: bool, timeout: Duration) -> bool {
        let mut view = self.alarm.view();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let has = view
                .borrow()
                .display
                .troubles
                .iter()
                .any(|t| t.component == component);
            if has == present {
                return true;
            }
            if tokio::time::timeout_at(deadline, view.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }
}

fn alarm_config() -> AlarmConfig {
    AlarmConfig::default()
}

/// A real call's summary.
pub fn call(caller: &str, location: &str) -> CallSummary {
    CallSummary {
        caller_name: Some(caller.into()),
        location: Some(location.into()),
        dial_string: Some("911".into()),
        callback_number: Some("+14255550123".into()),
        is_test: false,
        ..CallSummary::default()
    }
}

/// A test call (933).
pub fn test_call(caller: &str, location: &str) -> CallSummary {
    CallSummary {
        dial_string: Some("933".into()),
        is_test: true,
        ..call(caller, location)
    }
}

/// Everything logged in this test binary (every level), for secret scans. The first call
/// installs the global subscriber.
pub fn captured_logs() -> String {
    use std::sync::{Mutex, OnceLock};
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    struct Sink(&'static Mutex<Vec<u8>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = *LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Sink(logs))
                .finish(),
        );
        logs
    });
    String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// Every outbox value as stored (JSON text).
pub fn stored_outbox(store: &Store) -> String {
    store
        .outbox
        .iter()
        .map(|(k, v)| format!("{k} {}\n", v.map(|v| v.to_string()).unwrap_or_default()))
        .collect()
}
