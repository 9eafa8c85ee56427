//! Beacon as a `Type=notify` service, against a fake service manager: a `UnixDatagram` the test
//! binds and names in `NOTIFY_SOCKET`, as systemd does. The watchdog loop pings while the
//! consumer beats and the alarm task answers, and falls silent (so systemd restarts the
//! service) when either stops. `beacon run` against the real broker says READY=1, feeds the
//! watchdog, and says STOPPING=1 on SIGTERM — and never puts a secret in a notification.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::kafka::{broker, connection_string, create_topic};
use crate::support::process::beacon;
use crate::support::unique;
use beacon::eventhub::consumer::ConsumerStatus;
use beacon::service_manager::watchdog::{self, judge, AlarmProbe, Limits, Stall, Verdict};
use beacon::service_manager::{watchdog_interval, NotifyAddress, SystemdNotifier};

/// The fake service manager's socket, in its own directory.
struct FakeManager {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

impl FakeManager {
    fn bind() -> FakeManager {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        FakeManager {
            _dir: dir,
            path,
            socket,
        }
    }

    fn notifier(&self) -> SystemdNotifier {
        SystemdNotifier::to(NotifyAddress::Path(self.path.clone()))
    }

    /// The next datagram within `timeout`, or `None`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Datagrams until one contains `needle` (returned with all before it), or panics after
    /// `timeout`.
    fn until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} within {timeout:?}; got {seen:?}"
            );
            if let Some(message) = self.next(left) {
                let found = message.contains(needle);
                seen.push(message);
                if found {
                    return seen;
                }
            }
        }
    }

    /// Every datagram that arrives within `window`.
    fn during(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return seen;
            }
            if let Some(message) = self.next(left) {
                seen.push(message);
            }
        }
    }
}

#[test]
fn notifications_are_the_protocol_lines_systemd_expects() {
    let manager = FakeManager::bind();
    let notifier = manager.notifier();
    notifier.ready("consuming\nSTOPPING=1");
    notifier.watchdog();
    notifier.stopping();
    assert_eq!(
        manager.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1\nSTATUS=consuming STOPPING=1\n"),
        "a status text cannot smuggle in another assignment"
    );
    assert_eq!(
        manager.next(Duration::from_secs(5)).as_deref(),
        Some("WATCHDOG=1\n")
    );
    assert_eq!(
        manager.next(Duration::from_secs(5)).as_deref(),
        Some("STOPPING=1\nSTATUS=shutting down\n")
    );
}

#[test]
fn abstract_namespace_sockets_are_reached() {
    use std::os::linux::net::SocketAddrExt;
    let name = unique("beacon-notify-test");
    let address =
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let socket = UnixDatagram::bind_addr(&address).expect("bind abstract");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let notifier = SystemdNotifier::to(NotifyAddress::parse(&format!("@{name}")).expect("parse"));
    notifier.watchdog();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("received");
    assert_eq!(&buf[..n], b"WATCHDOG=1\n");
}

#[test]
fn without_a_service_manager_nothing_is_sent_and_nothing_fails() {
    assert_eq!(NotifyAddress::parse(""), None);
    assert_eq!(NotifyAddress::parse("relative/notify"), None);
    assert_eq!(NotifyAddress::parse("@"), None);
    let notifier = SystemdNotifier::default();
    assert!(!notifier.is_active());
    notifier.ready("up");
    notifier.watchdog();
    // A socket that is gone: logged, not fatal.
    let gone = SystemdNotifier::to(NotifyAddress::Path("/nonexistent/notify".into()));
    gone.ready("up");
}

#[test]
fn the_watchdog_interval_is_for_this_process_only() {
    let me = std::process::id();
    let own = me.to_string();
    assert_eq!(
        watchdog_interval(Some("10000000"), Some(&own), me),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        watchdog_interval(Some("30000000"), None, me),
        Some(Duration::from_secs(30))
    );
    assert_eq!(watchdog_interval(Some("10000000"), Some("1"), me), None);
    assert_eq!(watchdog_interval(Some("0"), None, me), None);
    assert_eq!(watchdog_interval(Some("ten"), None, me), None);
    assert_eq!(watchdog_interval(None, Some(&own), me), None);
}

#[test]
fn judge_feeds_the_watchdog_only_while_consumer_and_alarm_both_turn() {
    let limits = Limits::for_interval(Duration::from_secs(30));
    assert_eq!(limits.period, Duration::from_millis(7500));
    assert_eq!(limits.consumer_stall, Duration::from_secs(15));
    assert_eq!(limits.alarm_answer, Duration::from_secs(5));
    let started = Instant::now();
    let at = |secs: u64| started + Duration::from_secs(secs);

    // Starting up: the first poll is allowed the stall limit.
    assert_eq!(
        judge(at(10), started, None, AlarmProbe::Answered, &limits),
        Verdict::Turning
    );
    assert_eq!(
        judge(at(16), started, None, AlarmProbe::Answered, &limits),
        Verdict::Stuck(Stall::ConsumerSilent(Duration::from_secs(16)))
    );
    // A consumer that beats recently and an alarm that answers.
    assert_eq!(
        judge(
            at(100),
            started,
            Some(at(90)),
            AlarmProbe::Answered,
            &limits
        ),
        Verdict::Turning
    );
    // The consumer stopped beating.
    assert_eq!(
        judge(
            at(100),
            started,
            Some(at(80)),
            AlarmProbe::Answered,
            &limits
        ),
        Verdict::Stuck(Stall::ConsumerSilent(Duration::from_secs(20)))
    );
    // The alarm task does not answer, or has ended, while the consumer is fine.
    assert_eq!(
        judge(
            at(100),
            started,
            Some(at(99)),
            AlarmProbe::NoAnswer,
            &limits
        ),
        Verdict::Stuck(Stall::AlarmNoAnswer)
    );
    assert_eq!(
        judge(at(100), started, Some(at(99)), AlarmProbe::Gone, &limits),
        Verdict::Stuck(Stall::AlarmGone)
    );
    // A beat "from the future" (clock read order across threads) is fresh, not a panic.
    assert_eq!(
        judge(
            at(100),
            started,
            Some(at(101)),
            AlarmProbe::Answered,
            &limits
        ),
        Verdict::Turning
    );
}

/// An alarm task on a fresh store, as `beacon run` starts it.
fn alarm() -> (
    beacon::alarm_task::AlarmHandle,
    tokio::task::JoinHandle<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("dir");
    let store = beacon::store::Store::open(dir.path()).expect("store");
    let (handle, task) = beacon::alarm_task::spawn(Default::default(), store, chrono::Utc::now());
    (handle, task, dir)
}

/// A consumer status beaten every 20 ms until `stop` is set.
fn beating(stop: Arc<std::sync::atomic::AtomicBool>) -> Arc<ConsumerStatus> {
    let status = Arc::new(ConsumerStatus::default());
    status
        .running
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let beater = status.clone();
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            beater.beat(Instant::now());
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    status
}

/// Check every 500 ms, stuck after 1 s without a beat: short, yet far from what a busy test
/// machine does to a thread that beats every 20 ms.
fn short_limits() -> Limits {
    Limits::for_interval(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_stops_polling_starves_the_watchdog() {
    let manager = FakeManager::bind();
    let (alarm, _alarm_task, _dir) = alarm();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = beating(stop.clone());
    let limits = short_limits();
    let task = tokio::spawn(watchdog::run(manager.notifier(), limits, consumer, alarm));

    let pings = tokio::task::spawn_blocking(move || {
        // Fed while the consumer beats…
        let first = manager.until("WATCHDOG=1", Duration::from_secs(10));
        let second = manager.until("WATCHDOG=1", Duration::from_secs(10));
        // …then the consumer thread hangs.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let stuck = manager.until("STATUS=stuck", Duration::from_secs(10));
        let after = manager.during(limits.period * 4);
        (first, second, stuck, after)
    })
    .await
    .expect("join");
    task.abort();
    let (_, _, stuck, after) = pings;
    assert!(
        stuck
            .last()
            .is_some_and(|s| s.contains("Event Hub consumer has not polled")),
        "{stuck:?}"
    );
    assert!(
        after.iter().all(|m| !m.contains("WATCHDOG=1")),
        "no ping once stuck: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_appliance_not_set_up_yet_has_no_consumer_to_stall_and_is_fed() {
    let manager = FakeManager::bind();
    let (alarm, _alarm_task, _dir) = alarm();
    // No consumer runs (no Event Hub set up): its heartbeat never moves.
    let consumer = Arc::new(ConsumerStatus::default());
    let limits = short_limits();
    let task = tokio::spawn(watchdog::run(manager.notifier(), limits, consumer, alarm));
    let seen = tokio::task::spawn_blocking(move || manager.during(limits.period * 6))
        .await
        .expect("join");
    task.abort();
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3,
        "fed while nothing can stall: {seen:?}"
    );
    assert!(seen.iter().all(|m| !m.contains("stuck")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_task_that_ended_starves_the_watchdog() {
    let manager = FakeManager::bind();
    let (alarm, alarm_task, _dir) = alarm();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = beating(stop.clone());
    let limits = short_limits();
    let task = tokio::spawn(watchdog::run(manager.notifier(), limits, consumer, alarm));

    let manager = tokio::task::spawn_blocking(move || {
        manager.until("WATCHDOG=1", Duration::from_secs(10));
        manager
    })
    .await
    .expect("join");
    alarm_task.abort(); // the alarm task dies (a panic would do the same)
    let (stuck, after) = tokio::task::spawn_blocking(move || {
        let stuck = manager.until("STATUS=stuck", Duration::from_secs(10));
        (stuck, manager.during(limits.period * 4))
    })
    .await
    .expect("join");
    task.abort();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        stuck
            .last()
            .is_some_and(|s| s.contains("alarm task has ended")),
        "{stuck:?}"
    );
    assert!(
        after.iter().all(|m| !m.contains("WATCHDOG=1")),
        "no ping once stuck: {after:?}"
    );
}

/// `beacon run` with systemd's environment: NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
/// (unset here: systemd sets it to the main PID, which the test cannot know before spawning).
#[tokio::test(flavor = "multi_thread")]
async fn beacon_run_says_ready_feeds_the_watchdog_and_says_stopping() {
    let hub = unique("notify-hub");
    create_topic(&hub, 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("beacon.toml");
    let secret = connection_string(&hub);
    std::fs::write(
        &config,
        format!(
            "device_id = \"notify-test\"\ndata_dir = \"{}\"\n[eventhub]\nconnection_string = \"{}\"\nbootstrap_override = \"{}\"\nca_file = \"{}\"\nconsumer_group = \"{}\"\n",
            dir.path().join("data").display(),
            secret.expose(),
            broker().bootstrap,
            broker().ca.display(),
            unique("beacon-notify"),
        ),
    )
    .expect("config");
    let manager = FakeManager::bind();
    let mut run = beacon(&["run"], &config)
        .env("NOTIFY_SOCKET", &manager.path)
        .env("WATCHDOG_USEC", "1000000") // 1 s: a check every 250 ms
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let pid = run.id();

    let (manager, before_ready, pings) = tokio::task::spawn_blocking(move || {
        let before_ready = manager.until("READY=1", Duration::from_secs(60));
        let mut pings = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while pings < 4 && Instant::now() < deadline {
            if manager
                .next(Duration::from_secs(5))
                .is_some_and(|m| m.contains("WATCHDOG=1"))
            {
                pings += 1;
            }
        }
        (manager, before_ready, pings)
    })
    .await
    .expect("join");
    assert_eq!(pings, 4, "the running service feeds the watchdog");

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let (after, status) = tokio::task::spawn_blocking(move || {
        let after = manager.until("STOPPING=1", Duration::from_secs(30));
        (after, run.wait().expect("wait"))
    })
    .await
    .expect("join");
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");

    let ready = before_ready.last().expect("ready");
    assert!(
        ready.contains("STATUS=consuming the Event Hub as notify-test"),
        "{ready}"
    );
    let key = "dGVzdC1rZXktbm90LXJlYWw=";
    for message in before_ready.iter().chain(after.iter()) {
        assert!(
            !message.contains(key),
            "secret in a notification: {message}"
        );
        assert!(
            !message.contains(secret.expose()),
            "secret in a notification"
        );
    }
}
