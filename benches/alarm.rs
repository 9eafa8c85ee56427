//! Alarm latency benchmark (run `eval "$(scripts/test-env)"` first): how fast the strobe line
//! is set.
//!
//! 1. recognised call → strobe pin: `AlarmHandle::raise` until the simulated strobe pin is on
//!    (alarm task, output view, relay task);
//! 2. Kafka record → strobe pin, per source: rich chat-message notifications and Graph
//!    emergency call events (neither needs a Graph fetch) through the real broker (SASL_SSL),
//!    Beacon's consumer, ingest, recognition, alarm and relay task — measured from the moment
//!    librdkafka delivered the record to Beacon, and from the send, beside a bare rdkafka
//!    consumer reading the same chat records. Each is split where ingest hands the record on:
//!    delivered → handed on (consumer, decryption, de-duplication in the store) and handed on →
//!    strobe pin (recognition, alarm task, relay task). The first record of each source is
//!    shown alone too; the first chat record is the first since the start (the key read back
//!    from the store, the rules just compiled), as an appliance meets its first emergency
//!    when it is the first record after a boot.
//!    Then the same through the recogniser's own dispatcher (`Recogniser::run`), as `beacon
//!    run` wires it, delivered → strobe pin;
//! 3. ingest alone, in-process: `Ingest::process` of a rich chat-message record and the
//!    channel, without broker or wake-up (the consumer thread's own share of "handed on"),
//!    once back to back and once after 20 ms idle before each record, as an emergency meets
//!    the appliance: on a virtual machine the second took 1.3 to 2 times as long as the first
//!    (caches and predictors gone cold while the vCPU slept), and that, more than the wake-up,
//!    is what the first figure leaves out of "delivered → handed on".
//!
//! 4. the first use after a start, in-process: decryption with the key just read from the
//!    store (without its self-test, after one on another thread as at loading, and after that
//!    and one on the decrypting thread as the consumer makes at its start) and classification
//!    with the rules just compiled, each beside the second use.
//!
//! `cargo bench --bench alarm`; BENCH_ALARMS sets the number of alarms (default 200).

#[path = "../tests/support/kafka.rs"]
mod kafka;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon::alarm::{AcknowledgedStrobe, AlarmConfig, CallSummary, Event, Source};
use beacon::alarm_task::AlarmHandle;
use beacon::emergency::Rules;
use beacon::eventhub::consumer::{self, client_config, ConsumerSettings};
use beacon::graph::client_state::ClientStates;
use beacon::health::IngestCounters;
use beacon::hw::sim::{relays, SimOutput};
use beacon::ingest::Ingest;
use beacon::recognise::{MessageSource, Recogniser};
use beacon::secret::Secret;
use beacon::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::json;
use tokio::sync::mpsc;

const STATE: &str = "bench-client-state";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "  {name:<44}: n={} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(samples.last().copied().unwrap_or_default())
    );
}

/// Waits until the lamp is `on`, looking every millisecond without spinning (a spinning
/// observer would take one of the two executor threads from the path it measures); the
/// latency is read from the pin's own switch time, not from when it was seen.
async fn until(lamp: &SimOutput, on: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lamp.is_on() != on {
        assert!(Instant::now() < deadline, "the strobe did not switch");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// When the lamp was switched on.
fn switched_on(lamp: &SimOutput) -> Instant {
    lamp.switched_on_at().expect("the strobe was switched on")
}

/// Acknowledges and clears, and waits until the strobe is dark again.
async fn reset(alarm: &AlarmHandle, strobe: &SimOutput) {
    alarm
        .send(Event::Acknowledge {
            source: Source::System,
            who: None,
        })
        .await;
    alarm
        .send(Event::Clear {
            source: Source::System,
            who: None,
        })
        .await;
    until(strobe, false).await;
}

fn message(id: &str) -> serde_json::Value {
    json!({"id": id, "messageType": "message", "importance": "high", "chatId": "19:bench@thread.v2",
           "createdDateTime": chrono::Utc::now().to_rfc3339(),
           "from": {"user": {"id": "u", "displayName": "Jordan Rivera"}},
           "body": {"contentType": "html", "content": "<p>Jordan Rivera has placed an Emergency Call to 911</p>"}})
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n: usize = std::env::var("BENCH_ALARMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    runtime.block_on(async {
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
        // Made once, then read back from the store as `beacon run` does at start.
        beacon::app::load_keys(&store).expect("keys");
        let keys = beacon::app::load_keys(&store).expect("keys");
        let key = keys.current().expect("key").clone();
        let config = AlarmConfig {
            acknowledged_strobe: AcknowledgedStrobe::Off,
            ..AlarmConfig::default()
        };
        let (alarm, _task) = beacon::alarm_task::spawn(config, store.clone(), chrono::Utc::now());
        let (board, lamps) = relays(false);
        tokio::spawn(beacon::outputs::relays::run(alarm.view(), board));

        // 1. recognised call → pin
        let mut raise_to_pin = Vec::new();
        for i in 0..n {
            let t0 = Instant::now();
            alarm
                .raise(
                    &format!("direct/{i}"),
                    CallSummary {
                        caller_name: Some("x".into()),
                        ..CallSummary::default()
                    },
                )
                .await;
            until(&lamps.strobe, true).await;
            raise_to_pin.push(switched_on(&lamps.strobe) - t0);
            reset(&alarm, &lamps.strobe).await;
        }
        println!("strobe latency on the simulated board, {n} alarms:");
        report("recognised call → strobe pin", raise_to_pin);

        // 2. Kafka record → pin, beside a bare consumer
        let topic = format!(
            "bench-alarm-{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        kafka::create_topic(&topic, 1).await;
        let target = kafka::target(&topic);
        let settings = |group: &str| ConsumerSettings {
            target: target.clone(),
            group_id: group.into(),
            client_id: group.into(),
            ca_file: Some(kafka::broker().ca),
            instance_id: None,
            max_batch: 500,
            commit: true,
        };
        let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let bare_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let bare = {
            let (bare_seen, stop, config) = (
                bare_seen.clone(),
                stop.clone(),
                client_config(&settings(&format!("{topic}-bare"))),
            );
            let topic = topic.clone();
            std::thread::spawn(move || {
                let consumer: BaseConsumer = config.create().expect("bare consumer");
                consumer.subscribe(&[&topic]).expect("subscribe");
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                        let now = Instant::now();
                        let text =
                            String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                        if let Some(start) = text.find("messages('") {
                            let rest = &text[start + 10..];
                            let id = rest[..rest.find('\'').unwrap_or(0)].to_string();
                            if let Ok(mut s) = bare_seen.lock() {
                                s.insert(id, now);
                            }
                        }
                    }
                }
            })
        };
        // An ingest stage of this appliance handing on to `tx`.
        let ingest_to = |tx| {
            Ingest::new(
                store.clone(),
                keys.clone(),
                states.clone(),
                tx,
                Arc::new(IngestCounters::default()),
            )
        };
        let (tx, mut rx) = mpsc::channel(1024);
        let ingest = ingest_to(tx);
        let handle =
            consumer::spawn(settings(&format!("{topic}-beacon")), ingest).expect("consumer");
        let recogniser = Recogniser::new(
            store.clone(),
            Arc::new(Rules::default()),
            alarm.clone(),
            MessageSource::Unavailable,
        );
        tokio::time::sleep(Duration::from_secs(3)).await; // both groups joined
        let sender = kafka::Sender::new(&topic);
        let mut measured = Vec::new();
        for source in [Feed::ChatMessage, Feed::CallEvent] {
            let (mut delivered_to_pin, mut send_to_pin) = (Vec::new(), Vec::new());
            let (mut delivered_to_handed, mut handed_to_pin) = (Vec::new(), Vec::new());
            for i in 0..n {
                let (id, body) = source.record(i, &key);
                let t_send = Instant::now();
                if let Ok(mut s) = sent.lock() {
                    s.insert(id.clone(), t_send);
                }
                sender.send(None, body.as_bytes());
                let entry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("handed on")
                    .expect("open");
                // `received_at` was stamped when librdkafka delivered the record to Beacon.
                let delivered = chrono::Utc::now() - entry.received_at;
                let t_recv = Instant::now();
                // Recognition writes and flushes the call record after raising the alarm:
                // watch the pin while it does.
                let handling = {
                    let recogniser = recogniser.clone();
                    tokio::spawn(async move { recogniser.handle(&entry).await })
                };
                until(&lamps.strobe, true).await;
                let t_pin = switched_on(&lamps.strobe);
                handling.await.expect("join").expect("recognised");
                let delivered = delivered.to_std().unwrap_or_default();
                delivered_to_pin.push(delivered + (t_pin - t_recv));
                delivered_to_handed.push(delivered);
                handed_to_pin.push(t_pin - t_recv);
                send_to_pin.push(t_pin - t_send);
                reset(&alarm, &lamps.strobe).await;
            }
            measured.push((
                source,
                delivered_to_pin,
                send_to_pin,
                delivered_to_handed,
                handed_to_pin,
            ));
        }
        // 2b. The same records through the path `beacon run` wires: the consumer hands on to
        // the recogniser's own dispatcher (`Recogniser::run`), which recognises a rich
        // notification in place — no task of the bench in between. The moment librdkafka
        // delivered the record is read back from the call's record (`received_at`).
        let as_run = {
            let topic = format!("{topic}-as-run");
            kafka::create_topic(&topic, 1).await;
            let (tx, rx) = mpsc::channel(1024);
            let ingest = ingest_to(tx);
            let mut settings = settings(&format!("{topic}-beacon"));
            settings.target = kafka::target(&topic);
            let consumer = consumer::spawn(settings, ingest).expect("consumer");
            let dispatcher = tokio::spawn(recogniser.clone().run(rx));
            tokio::time::sleep(Duration::from_secs(3)).await; // joined
            let sender = kafka::Sender::new(&topic);
            let (clock_instant, clock_utc) = (Instant::now(), chrono::Utc::now());
            let mut measured = Vec::new();
            for source in [Feed::ChatMessage, Feed::CallEvent] {
                let mut delivered_to_pin = Vec::new();
                for i in 0..n {
                    let (id, body) = source.record(2_000_000 + i, &key);
                    sender.send(None, body.as_bytes());
                    until(&lamps.strobe, true).await;
                    let t_pin = switched_on(&lamps.strobe);
                    let record = store
                        .calls
                        .wait_for(&source.call_key(&id), Duration::from_secs(5))
                        .await
                        .expect("store")
                        .expect("the call was recorded");
                    let delivered: chrono::DateTime<chrono::Utc> =
                        serde_json::from_value(record["received_at"].clone())
                            .expect("received_at");
                    let pin_utc = clock_utc
                        + chrono::Duration::from_std(t_pin - clock_instant).unwrap_or_default();
                    delivered_to_pin.push((pin_utc - delivered).to_std().unwrap_or_default());
                    reset(&alarm, &lamps.strobe).await;
                }
                measured.push((source, delivered_to_pin));
            }
            drop(sender);
            tokio::task::spawn_blocking(move || consumer.shutdown())
                .await
                .expect("shutdown");
            let _ = dispatcher.await;
            measured
        };

        let mut send_to_bare = Vec::new();
        sender.flush();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let _ = bare.join();
        for (id, t) in sent.lock().map(|s| s.clone()).unwrap_or_default() {
            if let Some(seen) = bare_seen.lock().ok().and_then(|b| b.get(&id).copied()) {
                send_to_bare.push(seen - t);
            }
        }
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .expect("shutdown");

        // 3. Ingest alone, in-process: what the consumer thread spends on one rich record
        // (decode, decryption, de-duplication in the store, the channel), without the broker
        // and without waking a task — the rest of "delivered → handed on" is the wake-up.
        // Back to back (`idle` zero), then with `idle` before each record.
        let ingest_alone = |idle: Duration, first: usize| {
            let (tx, mut rx) = mpsc::channel(16);
            let ingest = ingest_to(tx);
            let key = key.clone();
            tokio::task::spawn_blocking(move || {
                let mut took = Vec::with_capacity(n);
                for i in first..first + n {
                    let (_, body) = Feed::ChatMessage.record(i, &key);
                    let position = format!("bench/0@{i}");
                    std::thread::sleep(idle);
                    let t0 = Instant::now();
                    let outcome = ingest
                        .process(beacon::ingest::Record {
                            body: body.as_bytes(),
                            position: &position,
                            received_at: chrono::Utc::now(),
                        })
                        .expect("process");
                    let handed = rx.try_recv().is_ok();
                    took.push(t0.elapsed());
                    assert!(outcome.handed_off == 1 && handed, "{outcome:?}");
                }
                took
            })
        };
        let warm = ingest_alone(Duration::ZERO, 1_000_000)
            .await
            .expect("ingest alone");
        let cold = ingest_alone(Duration::from_millis(20), 3_000_000)
            .await
            .expect("ingest alone after idle");
        let first_uses = first_uses(&key).await;
        println!("Kafka record → strobe pin, {n} rich notifications per source, one at a time (SASL_SSL):");
        for (source, delivered_to_pin, send_to_pin, delivered_to_handed, handed_to_pin) in measured
        {
            let name = source.name();
            // The first chat record is the first record since the start: what an appliance
            // meets when its first emergency is the first record after a boot. The first call
            // event comes after the chat records (key and rules in use by then).
            let first_of = |samples: &[Duration]| samples.first().copied().unwrap_or_default();
            let first =
                [&delivered_to_pin, &delivered_to_handed, &handed_to_pin].map(|s| first_of(s));
            report(
                &format!("{name}: librdkafka delivered → strobe pin"),
                delivered_to_pin,
            );
            println!(
                "  {:<44}: {:.3} ms (handed on after {:.3}, strobe pin {:.3} ms later)",
                format!("{name}:   the first of this source"),
                ms(first[0]),
                ms(first[1]),
                ms(first[2])
            );
            report(
                &format!("{name}:   of which delivered → handed on"),
                delivered_to_handed,
            );
            report(
                &format!("{name}:   of which handed on → strobe pin"),
                handed_to_pin,
            );
            report(&format!("{name}: sent → strobe pin"), send_to_pin);
        }
        report("chat message: sent → received (bare rdkafka)", send_to_bare);
        println!("the same, through the recogniser's own dispatcher as `beacon run` wires it:");
        for (source, delivered_to_pin) in as_run {
            report(
                &format!("{}: librdkafka delivered → strobe pin", source.name()),
                delivered_to_pin,
            );
        }
        report("chat message: ingest alone, in-process", warm);
        report("chat message: the same, 20 ms idle before each", cold);
        println!("the first use after a start, {FIRST_USES} starts, 20 ms idle before each:");
        for (name, samples) in first_uses {
            report(name, samples);
        }
    });
}

/// How many starts part 4 makes.
const FIRST_USES: usize = 50;

/// Part 4, what the first use after a start costs, in-process: the rich-notification key
/// read from the store unwrapping its first data key, without and with the self-tests
/// `load_keys` and the consumer's thread give it, beside a second unwrap; and the classifier's first message with the
/// rules just compiled, beside its second.
async fn first_uses(
    key: &beacon::graph::crypto::EncryptionKey,
) -> Vec<(&'static str, Vec<Duration>)> {
    use beacon::graph::crypto::{EncryptionKey, KeyRing};
    let stored = key.to_stored().expect("stored key");
    let sealed = beacon::graph::crypto::seal(
        key.certificate_der(),
        &key.id,
        message("first").to_string().as_bytes(),
    )
    .expect("sealed");
    tokio::task::spawn_blocking(move || {
        let idle = || std::thread::sleep(Duration::from_millis(20));
        let timed = |f: &dyn Fn()| {
            idle();
            let t0 = Instant::now();
            f();
            t0.elapsed()
        };
        let mut measured: [Vec<Duration>; 6] = Default::default();
        for _ in 0..FIRST_USES {
            // 0: no self-test; 1: the self-test on another thread, as `beacon run` loads its
            // keys on the main thread; 2: that, and the consumer's on the decrypting thread
            // (`Ingest::prepare_thread`), as `beacon run` does.
            for proved in 0..3 {
                let fresh = EncryptionKey::from_stored(&stored).expect("key");
                if proved > 0 {
                    std::thread::scope(|s| {
                        s.spawn(|| fresh.self_test().expect("self-test")).join()
                    })
                    .expect("self-test");
                }
                let ring = KeyRing::new(vec![fresh]);
                if proved > 1 {
                    assert!(ring.self_test().is_empty(), "the key proves itself");
                }
                let unwrap = || {
                    ring.decrypt(&sealed).expect("decrypts");
                };
                measured[proved].push(timed(&unwrap));
                if proved > 1 {
                    measured[3].push(timed(&unwrap));
                }
            }
            // On this thread, which has classified before with other rules: what is new is
            // only what the rules build at their first use.
            let rules = Rules::default();
            let classify = || {
                let context = beacon::emergency::Context::default();
                beacon::emergency::classify(&message("first"), &context, &rules);
            };
            measured[4].push(timed(&classify));
            measured[5].push(timed(&classify));
        }
        let [untested, elsewhere, here, second_unwrap, first_classify, second_classify] = measured;
        vec![
            ("decryption, a key just read: the first", untested),
            ("  after the self-test on another thread", elsewhere),
            ("  after that and one on this thread", here),
            ("  the second", second_unwrap),
            ("classification, new rules: the first", first_classify),
            ("  the second on the same thread", second_classify),
        ]
    })
    .await
    .expect("first uses")
}

/// Which source's records the second part sends.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// A rich chat-message notification (the security-desk message).
    ChatMessage,
    /// A Graph emergency call event (always rich), each of another caller so that none is
    /// taken for a second report of an earlier call.
    CallEvent,
}

impl Feed {
    fn name(self) -> &'static str {
        match self {
            Feed::ChatMessage => "chat message",
            Feed::CallEvent => "call event",
        }
    }

    /// The key of the call record alarm `id` leaves.
    fn call_key(self, id: &str) -> String {
        match self {
            Feed::ChatMessage => format!("19:bench@thread.v2/{id}"),
            Feed::CallEvent => format!("callevent/{id}"),
        }
    }

    /// The id and the Event Hub record body of alarm `i`.
    fn record(self, i: usize, key: &beacon::graph::crypto::EncryptionKey) -> (String, String) {
        match self {
            Feed::ChatMessage => {
                let id = format!("pin-{i}");
                let body = json!({"value": [{
                    "subscriptionId": "sub", "changeType": "created", "clientState": STATE,
                    "resource": format!("chats('19:bench@thread.v2')/messages('{id}')"),
                    "resourceData": {"id": id},
                    "encryptedContent": sealed(key, &message(&id))
                }]});
                (id, body.to_string())
            }
            Feed::CallEvent => {
                let id = format!("event-{i}");
                let event = json!({
                    "id": id, "callEventType": "callStarted", "policyName": "HQ",
                    "eventDateTime": chrono::Utc::now().to_rfc3339(),
                    "emergencyNumberDialed": "911",
                    "callerInfo": {"displayName": format!("Caller {i}"),
                                   "upn": format!("caller{i}@contoso.com")}
                });
                let resource = "communications/calls/getEmergencyEventsByPolicy(policyName='HQ')";
                let body = json!({"value": [{
                    "subscriptionId": "sub", "changeType": "updated", "clientState": STATE,
                    "resource": resource,
                    "encryptedContent": sealed(key, &event)
                }]});
                (id, body.to_string())
            }
        }
    }
}

fn sealed(
    key: &beacon::graph::crypto::EncryptionKey,
    message: &serde_json::Value,
) -> serde_json::Value {
    let c = beacon::graph::crypto::seal(
        key.certificate_der(),
        &key.id,
        message.to_string().as_bytes(),
    )
    .expect("seal");
    json!({"data": c.data, "dataKey": c.data_key, "dataSignature": c.data_signature,
           "encryptionCertificateId": c.encryption_certificate_id})
}
