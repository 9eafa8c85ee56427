//! The Event Hub consumer (rdkafka) with Microsoft's recommended settings, feeding the ingest
//! stage and committing offsets only after the store is flushed.
//!
//! It runs on its own OS thread with librdkafka's blocking poll: the ingest stage is
//! synchronous (decode, sled, hand-off), so no async runtime sits between the record and the
//! hand-off. Records are taken in batches (whatever is already fetched, up to `max_batch`);
//! each batch's next offsets go to a commit thread, which flushes the store and only then
//! commits — at most four times a second, Event Hubs' commit limit per partition
//! (graph-teams.md F.4). The fsync therefore never delays a record on its way to the alarm. A
//! crash between flush and commit means redelivery, which de-duplication absorbs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::assignment::{AssignmentWatch, Step};
use super::connection::{EventHubTarget, SASL_USERNAME};
use crate::ingest::{Ingest, Record};

/// Minimum time between two commits (Event Hubs throttles commits to 4/s per partition).
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// How long one poll waits when nothing is fetched (bounds shutdown latency).
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often librdkafka reports its statistics (the hub lag on the page and in metrics).
pub const STATS_INTERVAL_MS: u32 = 10_000;
/// Wait before retrying a record the store could not take.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How often records kept unverified are looked at again (see [`reread_unverified`]).
const REREAD_EVERY: Duration = Duration::from_secs(30);
/// How often the poll loop looks at its partition assignment (a local read).
const ASSIGNMENT_EVERY: Duration = Duration::from_secs(1);

/// Everything the consumer needs to know.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub target: EventHubTarget,
    pub group_id: String,
    pub client_id: String,
    pub ca_file: Option<PathBuf>,
    /// `group.instance.id` for static membership.
    pub instance_id: Option<String>,
    pub max_batch: usize,
    /// Commit offsets (always, except in tests that simulate a crash before the commit).
    pub commit: bool,
}

/// What the consumer can report to health and the web page.
#[derive(Debug)]
pub struct ConsumerStatus {
    /// Whether the hub is reachable: set by a record, cleared by a transport error, and set
    /// either way from librdkafka's view of its broker connections every
    /// [`STATS_INTERVAL_MS`] (librdkafka hands a broker failure to the error callback only at
    /// error level, and not when it repeats that broker's last error within 30 s, so an
    /// outage can pass without any callback).
    pub connected: AtomicBool,
    /// The last error librdkafka reported, in words.
    pub last_error: Mutex<Option<String>>,
    /// When the poll loop last turned (monotonic clock). Set every turn, also when idle or
    /// disconnected; it stops moving only when the loop is stuck or gone (the service
    /// watchdog follows it).
    pub heartbeat: Mutex<Option<Instant>>,
    /// Records waiting in the hub for this consumer group (sum over the assigned partitions
    /// of high watermark minus committed offset), from librdkafka's statistics every
    /// [`STATS_INTERVAL_MS`]; -1 while unknown.
    pub lag: AtomicI64,
    /// Whether a consumer runs at all (false on an appliance not set up yet, and while the
    /// link restarts): the service watchdog only follows the heartbeat while this is set.
    pub running: AtomicBool,
    /// Since when the running consumer holds no partition of the hub (it reads nothing);
    /// `None` while it holds some or runs not at all (see [`super::assignment`]).
    pub unassigned_since: Mutex<Option<chrono::DateTime<Utc>>>,
    /// The consumer group of the running consumer.
    pub group: Mutex<Option<String>>,
}

impl Default for ConsumerStatus {
    fn default() -> Self {
        ConsumerStatus {
            connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
            heartbeat: Mutex::new(None),
            lag: AtomicI64::new(-1),
            running: AtomicBool::new(false),
            unassigned_since: Mutex::new(None),
            group: Mutex::new(None),
        }
    }
}

impl ConsumerStatus {
    /// The lag, when known.
    pub fn lag(&self) -> Option<i64> {
        let lag = self.lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }

    /// The poll loop turned at `now`.
    pub fn beat(&self, now: Instant) {
        if let Ok(mut beat) = self.heartbeat.lock() {
            *beat = Some(now);
        }
    }

    /// When the poll loop last turned; `None` before its first turn.
    pub fn last_beat(&self) -> Option<Instant> {
        self.heartbeat.lock().ok().and_then(|beat| *beat)
    }
}

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("Kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("consumer thread: {0}")]
    Thread(String),
}

/// The librdkafka client configuration for Event Hubs (graph-teams.md F.2, F.3).
pub fn client_config(settings: &ConsumerSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.target.bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", SASL_USERNAME)
        .set("sasl.password", settings.target.password.expose())
        .set("group.id", &settings.group_id)
        .set("client.id", &settings.client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("socket.keepalive.enable", "true")
        .set("metadata.max.age.ms", "180000")
        .set("connections.max.idle.ms", "180000")
        .set("session.timeout.ms", "30000")
        .set("heartbeat.interval.ms", "3000")
        .set("max.poll.interval.ms", "300000")
        // The alarm must follow the event within a second: bound how long a broker may hold
        // a fetch open when no data is waiting (Kafka's default is 500 ms).
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", STATS_INTERVAL_MS.to_string())
        .set_log_level(RDKafkaLogLevel::Warning);
    if let Some(ca) = &settings.ca_file {
        config.set("ssl.ca.location", ca.to_string_lossy());
    }
    if let Some(instance) = &settings.instance_id {
        config.set("group.instance.id", instance);
    }
    config
}

/// Routes librdkafka's log and errors into tracing and the status.
struct Context {
    status: Arc<ConsumerStatus>,
    /// The same error is logged once a minute while it lasts (see `repeats`).
    errors: Mutex<super::repeats::Repeats>,
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", fac, "{log_message}")
            }
            L::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            _ => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.status
            .lag
            .store(lag_of(&statistics), Ordering::Relaxed);
        let brokers = statistics
            .brokers
            .values()
            .map(|b| (b.source.as_str(), b.state.as_str()));
        if let Some(up) = hub_reachable(brokers) {
            self.status.connected.store(up, Ordering::Relaxed);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        let admitted = self
            .errors
            .lock()
            .ok()
            .and_then(|mut repeats| repeats.admit(&text, Instant::now()));
        if let Some(left_out) = admitted {
            tracing::warn!(target: "librdkafka", %error, reason, left_out, "Event Hub client error");
        }
        self.status.connected.store(false, Ordering::Relaxed);
        if let Ok(mut last) = self.status.last_error.lock() {
            *last = Some(format!("{error}: {reason}"));
        }
    }
}

impl ConsumerContext for Context {}

/// Whether librdkafka holds a working connection to one of the hub's brokers, from each
/// broker's `(source, state)` in its statistics: one in state `UP` among the brokers it was
/// given or learned is enough (its internal and logical brokers do not count). `None` while it
/// knows no broker.
fn hub_reachable<'a>(brokers: impl Iterator<Item = (&'a str, &'a str)>) -> Option<bool> {
    let mut known = false;
    for (source, state) in brokers {
        if source == "learned" || source == "configured" {
            known = true;
            if state == "UP" {
                return Some(true);
            }
        }
    }
    known.then_some(false)
}

/// The consumer lag over the partitions librdkafka knows a lag for (-1: none known yet).
fn lag_of(statistics: &rdkafka::Statistics) -> i64 {
    let lags: Vec<i64> = statistics
        .topics
        .values()
        .flat_map(|t| t.partitions.iter())
        .filter(|(id, p)| **id >= 0 && p.consumer_lag >= 0)
        .map(|(_, p)| p.consumer_lag)
        .collect();
    if lags.is_empty() {
        -1
    } else {
        lags.iter().sum()
    }
}

/// A running consumer.
pub struct ConsumerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub status: Arc<ConsumerStatus>,
}

impl ConsumerHandle {
    /// Asks the consumer to finish its batch, flush, commit and leave the group; waits for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the consumer thread panicked");
            }
            self.status.running.store(false, Ordering::Relaxed);
            self.status.connected.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Subscribes to the hub and starts consuming into `ingest`.
pub fn spawn(settings: ConsumerSettings, ingest: Ingest) -> Result<ConsumerHandle, ConsumerError> {
    spawn_reporting(settings, ingest, Arc::new(ConsumerStatus::default()))
}

/// [`spawn`], reporting into `status` (which outlives this consumer: `beacon run` restarts
/// the consumer when the settings change, and the page and watchdog keep following one status).
pub fn spawn_reporting(
    settings: ConsumerSettings,
    ingest: Ingest,
    status: Arc<ConsumerStatus>,
) -> Result<ConsumerHandle, ConsumerError> {
    let consumer: BaseConsumer<Context> =
        client_config(&settings).create_with_context(Context {
            status: status.clone(),
            errors: Mutex::new(Default::default()),
        })?;
    consumer.subscribe(&[settings.target.topic()])?;
    if let Ok(mut group) = status.group.lock() {
        *group = Some(settings.group_id.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    status.beat(Instant::now());
    status.running.store(true, Ordering::Relaxed);
    let thread = {
        let stop = stop.clone();
        let status = status.clone();
        std::thread::Builder::new()
            .name("eventhub".into())
            .spawn(move || run(consumer, settings, ingest, stop, status))
            .map_err(|e| ConsumerError::Thread(e.to_string()))?
    };
    Ok(ConsumerHandle {
        stop,
        thread: Some(thread),
        status,
    })
}

/// Next offset to commit per (topic, partition).
type Pending = BTreeMap<(String, i32), i64>;

fn run(
    consumer: BaseConsumer<Context>,
    settings: ConsumerSettings,
    ingest: Ingest,
    stop: Arc<AtomicBool>,
    status: Arc<ConsumerStatus>,
) {
    let consumer = Arc::new(consumer);
    // Decryption happens on this thread: made ready before the first record.
    ingest.prepare_thread();
    // Records kept unverified (the fleet's secrets lost with a damaged store) are read again
    // as soon as the secrets are back: at start (a join restarts the consumer) and every
    // REREAD_EVERY (a box alone made its subscription again).
    reread_unverified(&ingest);
    let mut last_reread = Instant::now();
    let mut watch = AssignmentWatch::default();
    let mut last_assignment_look: Option<Instant> = None;
    // Flushing (an fsync) and committing happen on their own thread, so a record never waits
    // behind the previous batch's fsync on its way to the alarm.
    let (to_committer, from_poller) = std::sync::mpsc::channel::<Pending>();
    let committer = {
        let (consumer, store, commit) = (consumer.clone(), ingest.store().clone(), settings.commit);
        std::thread::Builder::new()
            .name("eventhub-commit".into())
            .spawn(move || run_committer(&consumer, &store, commit, &from_poller))
    };
    let mut pending = Pending::new();
    let mut stopped_early = false;
    let mut poll_errors = super::repeats::Repeats::default();
    'poll: while !stop.load(Ordering::Relaxed) {
        status.beat(Instant::now());
        if last_reread.elapsed() >= REREAD_EVERY {
            reread_unverified(&ingest);
            last_reread = Instant::now();
        }
        if last_assignment_look.is_none_or(|at| at.elapsed() >= ASSIGNMENT_EVERY) {
            look_at_assignment(&consumer, &settings, &mut watch, &status);
            last_assignment_look = Some(Instant::now());
        }
        let mut taken = 0;
        let mut wait = POLL_WAIT;
        while taken < settings.max_batch {
            let Some(polled) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let message = match polled {
                Ok(message) => message,
                Err(e) => {
                    let text = e.to_string();
                    if let Some(left_out) = poll_errors.admit(&text, Instant::now()) {
                        tracing::warn!(error = text, left_out, "Event Hub poll error");
                    }
                    break;
                }
            };
            status.connected.store(true, Ordering::Relaxed);
            if watch.empty_since().is_some() {
                // A record read is a partition held: the status says so before the record is
                // handed on, not up to a second later.
                look_at_assignment(&consumer, &settings, &mut watch, &status);
                last_assignment_look = Some(Instant::now());
            }
            let position = format!(
                "{}/{}@{}",
                message.topic(),
                message.partition(),
                message.offset()
            );
            let record = Record {
                body: message.payload().unwrap_or(&[]),
                position: &position,
                received_at: Utc::now(),
            };
            // A store that cannot be written is the one thing that stops ingest: retry the
            // same record, commit nothing, until it works or we are told to stop.
            while let Err(e) = ingest.process(record) {
                tracing::error!(error = %e, position, "store write failed; retrying");
                if stop.load(Ordering::Relaxed) {
                    stopped_early = true;
                    break 'poll;
                }
                std::thread::sleep(STORE_RETRY);
            }
            pending.insert(
                (message.topic().to_string(), message.partition()),
                message.offset() + 1,
            );
            taken += 1;
            status.beat(Instant::now());
        }
        if !pending.is_empty() {
            let _ = to_committer.send(std::mem::take(&mut pending));
        }
    }
    if !stopped_early && !pending.is_empty() {
        let _ = to_committer.send(pending);
    }
    drop(to_committer);
    match committer {
        Ok(thread) => {
            if thread.join().is_err() {
                tracing::error!("the commit thread panicked");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start the commit thread; nothing was committed")
        }
    }
    consumer.unsubscribe();
    if let Ok(mut since) = status.unassigned_since.lock() {
        *since = None;
    }
}

/// Follows whether the consumer holds a partition; rejoins its group when it has held none
/// for long (see [`super::assignment`]).
fn look_at_assignment(
    consumer: &BaseConsumer<Context>,
    settings: &ConsumerSettings,
    watch: &mut AssignmentWatch,
    status: &ConsumerStatus,
) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let now = Instant::now();
    let step = watch.observe(assignment.count(), now);
    if let Ok(mut since) = status.unassigned_since.lock() {
        // The watch notices an empty assignment at this very look: the wall clock's "since" is
        // taken now and kept while it lasts.
        let kept = *since;
        *since = watch.empty_since().map(|_| kept.unwrap_or_else(Utc::now));
    }
    if step == Step::Rejoin {
        let topic = settings.target.topic();
        tracing::warn!(
            topic,
            group = settings.group_id,
            "this box holds no partition of the hub: leaving its consumer group and joining again"
        );
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&[topic]) {
            tracing::error!(error = %e, topic, "cannot subscribe to the hub again");
        }
    }
}

/// Reads the records kept unverified again, when there are any and the fleet's secrets are
/// back ([`Ingest::reread_unverified`]), and flushes what that wrote.
fn reread_unverified(ingest: &Ingest) {
    match ingest.reread_unverified() {
        Ok(0) => {}
        Ok(_) => {
            if let Err(e) = ingest.store().flush() {
                tracing::error!(error = %e, "cannot flush the store after reading unverified records again");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the unverified records again; they stay kept")
        }
    }
}

/// Merges the offsets the poller hands over, and at most every [`COMMIT_INTERVAL`] flushes
/// the store and then commits them. On the poller's hang-up: a last flush and a synchronous
/// commit.
fn run_committer(
    consumer: &BaseConsumer<Context>,
    store: &crate::store::Store,
    commit: bool,
    from_poller: &std::sync::mpsc::Receiver<Pending>,
) {
    let mut pending = Pending::new();
    let mut last_commit = Instant::now()
        .checked_sub(COMMIT_INTERVAL)
        .unwrap_or_else(Instant::now);
    loop {
        let wait = COMMIT_INTERVAL.saturating_sub(last_commit.elapsed());
        let timeout = if pending.is_empty() {
            Duration::from_secs(1)
        } else {
            wait
        };
        match from_poller.recv_timeout(timeout) {
            Ok(more) => merge(&mut pending, more),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(more) = from_poller.try_recv() {
            merge(&mut pending, more);
        }
        if !pending.is_empty()
            && last_commit.elapsed() >= COMMIT_INTERVAL
            && flush_and_commit(consumer, store, &pending, commit, CommitMode::Async)
        {
            pending.clear();
            last_commit = Instant::now();
        }
    }
    if !pending.is_empty() {
        flush_and_commit(consumer, store, &pending, commit, CommitMode::Sync);
    }
}

fn merge(into: &mut Pending, more: Pending) {
    for (key, next) in more {
        let slot = into.entry(key).or_insert(next);
        *slot = (*slot).max(next);
    }
}

/// Flushes the store, then commits. Returns false (nothing committed) if the flush failed.
fn flush_and_commit(
    consumer: &BaseConsumer<Context>,
    store: &crate::store::Store,
    pending: &Pending,
    commit: bool,
    mode: CommitMode,
) -> bool {
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "store flush failed; offsets not committed");
        return false;
    }
    if !commit {
        return true;
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), next) in pending {
        if let Err(e) = offsets.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
            tracing::warn!(error = %e, "bad offset");
        }
    }
    if let Err(e) = consumer.commit(&offsets, mode) {
        // Redelivery after a failed commit is harmless: de-duplication absorbs it.
        tracing::warn!(error = %e, "offset commit failed; records may be redelivered");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_hub_is_reachable_while_one_of_its_brokers_is_up() {
        let up = [
            ("configured", "INIT"),
            ("learned", "UP"),
            ("internal", "UP"),
        ];
        assert_eq!(hub_reachable(up.into_iter()), Some(true));
        // The broker stopped: librdkafka tries to reconnect; its own brokers do not count.
        let down = [
            ("configured", "DOWN"),
            ("learned", "CONNECT"),
            ("internal", "UP"),
            ("logical", "UP"),
        ];
        assert_eq!(hub_reachable(down.into_iter()), Some(false));
        let bootstrap_only = [("configured", "AUTH_HANDSHAKE")];
        assert_eq!(hub_reachable(bootstrap_only.into_iter()), Some(false));
        assert_eq!(hub_reachable([("internal", "UP")].into_iter()), None);
    }

    #[test]
    fn event_hubs_settings() {
        let target = EventHubTarget::parse(&Secret::new(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=k;EntityPath=h",
        ))
        .map_err(|e| e.to_string());
        let Ok(target) = target else { panic!("parse") };
        let settings = ConsumerSettings {
            target,
            group_id: "beacon-desk".into(),
            client_id: "beacon-desk".into(),
            ca_file: None,
            instance_id: None,
            max_batch: 10,
            commit: true,
        };
        let config = client_config(&settings);
        let get = |k: &str| config.get(k).unwrap_or("<unset>").to_string();
        assert_eq!(get("bootstrap.servers"), "ns.servicebus.windows.net:9093");
        assert_eq!(get("security.protocol"), "SASL_SSL");
        assert_eq!(get("sasl.mechanisms"), "PLAIN");
        assert_eq!(get("sasl.username"), "$ConnectionString");
        assert_eq!(get("enable.auto.commit"), "false");
        assert_eq!(get("auto.offset.reset"), "earliest");
        assert_eq!(get("socket.keepalive.enable"), "true");
        assert_eq!(get("metadata.max.age.ms"), "180000");
        assert!(
            get("connections.max.idle.ms")
                .parse::<u32>()
                .unwrap_or(u32::MAX)
                < 240_000
        );
        assert_eq!(get("session.timeout.ms"), "30000");
        assert_eq!(get("group.id"), "beacon-desk");
    }
}
