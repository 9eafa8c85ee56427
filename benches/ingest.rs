//! Ingest benchmark against the real broker (run `eval "$(scripts/test-env)"` first):
//!
//! 1. durable ingest throughput — N records consumed, decoded, de-duplicated, written to sled,
//!    flushed and committed by Beacon's consumer, beside a bare rdkafka consumer reading the
//!    same records;
//! 2. record-to-hand-off latency — a paced producer, Beacon's consumer and a bare consumer
//!    reading the same records at the same time; p50/p99 of send→receive for both;
//! 3. in-process overhead — `Ingest::process` plus the channel, per record.
//!
//! `cargo bench --bench ingest` (release build). BENCH_RECORDS / BENCH_LATENCY_RECORDS change
//! the sizes.

#[path = "../tests/support/kafka.rs"]
mod kafka;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon::eventhub::consumer::{self, client_config, ConsumerSettings};
use beacon::graph::client_state::ClientStates;
use beacon::health::IngestCounters;
use beacon::ingest::{Ingest, Notification, Record};
use beacon::secret::Secret;
use beacon::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use tokio::sync::mpsc;

const STATE: &str = "bench-client-state";

fn body(id: &str) -> String {
    let resource = format!("chats('19:bench@thread.v2')/messages('{id}')");
    serde_json::json!({"value": [{
        "subscriptionId": "5e1a3c2e-7b0f-4c55-9d3a-2f6f0c1b9a10",
        "subscriptionExpirationDateTime": "2026-12-02T10:15:00.0000000+00:00",
        "changeType": "created", "clientState": STATE,
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "resource": resource,
        "resourceData": {"id": id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": resource}
    }]})
    .to_string()
}

fn id_in(payload: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    let start = text.find("messages('")? + "messages('".len();
    let end = text[start..].find('\'')? + start;
    Some(text[start..end].to_string())
}

struct Appliance {
    _dir: tempfile::TempDir,
    store: Store,
    states: ClientStates,
}

impl Appliance {
    /// An ingest stage on this appliance's store, handing on into a channel of `capacity`.
    fn ingest(&self, capacity: usize) -> (Ingest, mpsc::Receiver<beacon::ingest::InboxEntry>) {
        let (tx, rx) = mpsc::channel(capacity);
        let ingest = Ingest::new(
            self.store.clone(),
            Default::default(),
            self.states.clone(),
            tx,
            Arc::new(IngestCounters::default()),
        );
        (ingest, rx)
    }
}

fn appliance() -> Appliance {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let states = ClientStates::load(&store).expect("states");
    states
        .replace(
            &store,
            beacon::graph::fleet::FleetSecrets::with_client_state(
                "fleet-bench",
                Secret::new(STATE),
            ),
        )
        .expect("state");
    Appliance {
        _dir: dir,
        store,
        states,
    }
}

fn settings(topic: &str, group: &str) -> ConsumerSettings {
    ConsumerSettings {
        target: kafka::target(topic),
        group_id: group.into(),
        client_id: group.into(),
        ca_file: Some(kafka::broker().ca),
        instance_id: None,
        max_batch: 500,
        commit: true,
    }
}

fn bare_consumer(topic: &str, group: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(&settings(topic, group))
        .create()
        .expect("bare consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-{prefix}-{nanos}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads `n` records with a bare consumer; returns (time from first record to last, total).
fn bare_throughput(topic: &str, n: usize) -> (Duration, Duration) {
    let start = Instant::now();
    let consumer = bare_consumer(topic, &unique("bare"));
    let mut first = None;
    let mut got = 0;
    while got < n && start.elapsed() < Duration::from_secs(120) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            std::hint::black_box(m.payload());
            got += 1;
        }
    }
    assert_eq!(got, n, "bare consumer read everything");
    (
        first.map(|f| f.elapsed()).unwrap_or_default(),
        start.elapsed(),
    )
}

/// Beacon's consumer: until `n` hand-offs, then shutdown (final flush + commit).
fn beacon_throughput(
    runtime: &tokio::runtime::Runtime,
    topic: &str,
    n: usize,
) -> (Duration, Duration) {
    let a = appliance();
    let (ingest, mut rx) = a.ingest(4096);
    let start = Instant::now();
    let handle = consumer::spawn(settings(topic, &unique("beacon")), ingest).expect("consumer");
    let (first, got) = runtime.block_on(async {
        let mut first = None;
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
                Ok(Some(_)) => {
                    first.get_or_insert_with(Instant::now);
                    got += 1;
                }
                _ => break,
            }
        }
        (first, got)
    });
    handle.shutdown();
    assert_eq!(got, n, "beacon handed everything on");
    assert_eq!(a.store.seen.len(), n);
    (
        first.map(|f| f.elapsed()).unwrap_or_default(),
        start.elapsed(),
    )
}

/// Side-by-side latency: a paced producer, Beacon's consumer and a bare consumer at once.
fn latency_side_by_side(runtime: &tokio::runtime::Runtime, m: usize, interval: Duration) {
    let topic = unique("latency");
    runtime.block_on(kafka::create_topic(&topic, 2));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let bare_lat: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let bare_thread = {
        let (sent, bare_lat, stop, topic) =
            (sent.clone(), bare_lat.clone(), stop.clone(), topic.clone());
        std::thread::spawn(move || {
            let consumer = bare_consumer(&topic, &unique("bare-lat"));
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) {
                    let now = Instant::now();
                    if let Some(id) = msg.payload().and_then(id_in) {
                        if let Some(t) = sent.lock().ok().and_then(|s| s.get(&id).copied()) {
                            if let Ok(mut l) = bare_lat.lock() {
                                l.push(now - t);
                            }
                        }
                    }
                }
            }
        })
    };
    let a = appliance();
    let (ingest, mut rx) = a.ingest(4096);
    let handle =
        consumer::spawn(settings(&topic, &unique("beacon-lat")), ingest).expect("consumer");
    // Let both consumers join their groups before the clock starts.
    std::thread::sleep(Duration::from_secs(5));
    let producer = {
        let (sent, topic) = (sent.clone(), topic.clone());
        std::thread::spawn(move || {
            let sender = kafka::Sender::new(&topic);
            for i in 0..m {
                let id = format!("l{i}");
                let payload = body(&id);
                if let Ok(mut s) = sent.lock() {
                    s.insert(id, Instant::now());
                }
                sender.send(Some((i % 2) as i32), payload.as_bytes());
                std::thread::sleep(interval);
            }
            sender.flush();
        })
    };
    let (mut beacon_lat, mut after_poll) = runtime.block_on(async {
        let mut lat = Vec::new();
        let mut after_poll = Vec::new();
        while lat.len() < m {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(entry)) => {
                    let now = Instant::now();
                    // `received_at` is stamped by the consumer thread as librdkafka hands it
                    // the record: from there to here is what Beacon adds to a bare consumer.
                    after_poll.push(
                        (chrono::Utc::now() - entry.received_at)
                            .to_std()
                            .unwrap_or_default(),
                    );
                    if let Notification::Message { message_id, .. } = &entry.notification {
                        if let Some(t) = sent.lock().ok().and_then(|s| s.get(message_id).copied()) {
                            lat.push(now - t);
                        }
                    }
                }
                _ => break,
            }
        }
        (lat, after_poll)
    });
    let _ = producer.join();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bare_lat.lock().map(|l| l.len()).unwrap_or(m) < m && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = bare_thread.join();
    handle.shutdown();
    let mut bare = bare_lat.lock().map(|l| l.clone()).unwrap_or_default();
    bare.sort();
    beacon_lat.sort();
    after_poll.sort();
    println!(
        "record latency, {m} records, one every {} ms, both consumers reading at once (send → receive):",
        interval.as_millis()
    );
    for (name, lat) in [
        ("bare rdkafka consumer", &bare),
        ("beacon hand-off", &beacon_lat),
    ] {
        println!(
            "  {name:<22}: n={} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            lat.len(),
            ms(percentile(lat, 0.50)),
            ms(percentile(lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default())
        );
    }
    println!(
        "  difference of the two (fetch phases differ): p50 {:+.2} ms  p99 {:+.2} ms",
        ms(percentile(&beacon_lat, 0.50)) - ms(percentile(&bare, 0.50)),
        ms(percentile(&beacon_lat, 0.99)) - ms(percentile(&bare, 0.99))
    );
    println!(
        "  beacon's own overhead (librdkafka delivered → handed on): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(percentile(&after_poll, 0.50)),
        ms(percentile(&after_poll, 0.99)),
        ms(after_poll.last().copied().unwrap_or_default())
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n = env_usize("BENCH_RECORDS", 20_000);
    let m = env_usize("BENCH_LATENCY_RECORDS", 2_000);

    // ---------------------------------------------------------------- 1. throughput
    let topic = unique("throughput");
    runtime.block_on(kafka::create_topic(&topic, 2));
    let sender = kafka::Sender::new(&topic);
    for i in 0..n {
        sender.send(Some((i % 2) as i32), body(&format!("t{i}")).as_bytes());
    }
    sender.flush();
    let (bare_span, bare_total) = bare_throughput(&topic, n);
    let (beacon_span, beacon_total) = beacon_throughput(&runtime, &topic, n);
    println!("durable ingest throughput, {n} notifications on 2 partitions (SASL_SSL):");
    println!(
        "  bare rdkafka consumer : {:>8.0} records/s (first→last {:.0} ms; with group join {:.0} ms)",
        n as f64 / bare_span.as_secs_f64(),
        ms(bare_span),
        ms(bare_total)
    );
    println!(
        "  beacon (decode+dedupe+sled+flush+commit): {:>8.0} notifications/s (first→last {:.0} ms; with join and final commit {:.0} ms)",
        n as f64 / beacon_span.as_secs_f64(),
        ms(beacon_span),
        ms(beacon_total)
    );

    // ---------------------------------------------------------------- 2. latency, side by side
    // A busy hub (records arrive in batches) and a quiet one (one record at a time, the
    // normal case for emergency notifications).
    latency_side_by_side(&runtime, m, Duration::from_millis(2));
    latency_side_by_side(&runtime, m / 10, Duration::from_millis(50));

    // ---------------------------------------------------------------- 3. in-process overhead
    let a = appliance();
    let (ingest, mut rx) = a.ingest(16);
    let bodies: Vec<String> = (0..m).map(|i| body(&format!("p{i}"))).collect();
    let mut overhead = Vec::with_capacity(m);
    for (i, b) in bodies.iter().enumerate() {
        let position = format!("bench/0@{i}");
        let t0 = Instant::now();
        let outcome = ingest
            .process(Record {
                body: b.as_bytes(),
                position: &position,
                received_at: chrono::Utc::now(),
            })
            .expect("process");
        let received = rx.try_recv().is_ok();
        overhead.push(t0.elapsed());
        assert!(outcome.handed_off == 1 && received);
    }
    overhead.sort();
    println!("in-process hand-off overhead (decode + clientState + dedupe transaction + channel), {m} records:");
    println!(
        "  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(percentile(&overhead, 0.50)),
        ms(percentile(&overhead, 0.99)),
        ms(overhead.last().copied().unwrap_or_default())
    );
}
