//! Helpers for the MQTT tests: the real Mosquitto from `scripts/test-env`, an observer client
//! (a second rumqttc connection that records everything it sees), and a private Mosquitto
//! instance a test may stop and start again.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// `host:port` of the test broker. Fails loudly when missing: these tests must not pass by
/// not running.
pub fn broker() -> (String, u16) {
    let address = std::env::var("BEACON_TEST_MQTT").unwrap_or_else(|_| {
        panic!("BEACON_TEST_MQTT is not set: run `eval \"$(scripts/test-env)\"` first")
    });
    let (host, port) = address
        .rsplit_once(':')
        .expect("BEACON_TEST_MQTT is host:port");
    (host.to_string(), port.parse().expect("port"))
}

/// One message as the observer received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retained: bool,
}

impl Seen {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.topic, self.text()))
    }
}

/// A second client that subscribes to filters and keeps every message.
pub struct Observer {
    pub client: AsyncClient,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Connects to `port` on localhost and subscribes to `filters` (waits for the SUBACKs).
    pub async fn on(port: u16, filters: &[String]) -> Observer {
        Observer::connect(port, None, filters).await
    }

    /// Like [`Observer::on`], over TLS trusting `ca` and with a user name and password.
    pub async fn tls(
        port: u16,
        ca: &std::path::Path,
        login: (&str, &str),
        filters: &[String],
    ) -> Observer {
        Observer::connect(port, Some((ca, login)), filters).await
    }

    async fn connect(
        port: u16,
        tls: Option<(&std::path::Path, (&str, &str))>,
        filters: &[String],
    ) -> Observer {
        let host = match tls {
            Some(_) => "localhost".to_string(),
            None => broker().0,
        };
        let id = format!(
            "observer-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let mut options = MqttOptions::new(id, host, port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_max_packet_size(1024 * 1024, 1024 * 1024);
        if let Some((ca, (user, password))) = tls {
            let config = beacon::outputs::mqtt::tls::client_config(Some(ca)).expect("test CA");
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, mut subscribed_rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        recorder.lock().expect("lock").push(Seen {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retained: p.retain,
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        for filter in filters {
            client
                .subscribe(filter.clone(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        for _ in filters {
            tokio::time::timeout(Duration::from_secs(10), subscribed_rx.recv())
                .await
                .expect("SUBACK within 10 s");
        }
        Observer { client, seen, task }
    }

    /// On the shared test broker.
    pub async fn new(filters: &[String]) -> Observer {
        Observer::on(broker().1, filters).await
    }

    /// Everything seen so far.
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Messages seen on `topic`.
    pub fn on_topic(&self, topic: &str) -> Vec<Seen> {
        self.all()
            .into_iter()
            .filter(|s| s.topic == topic)
            .collect()
    }

    /// Waits until a message on `topic` satisfies `test`; returns it.
    pub async fn wait_for<F>(&self, topic: &str, what: &str, test: F) -> Seen
    where
        F: Fn(&Seen) -> bool,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self.on_topic(topic).into_iter().find(|s| test(s)) {
                return found;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no message on {topic} with {what} within 20 s; seen there: {:?}",
                    self.on_topic(topic)
                        .iter()
                        .map(Seen::text)
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `count` messages were seen on `topic`.
    pub async fn wait_count(&self, topic: &str, count: usize) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.on_topic(topic);
            if seen.len() >= count {
                return seen;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{} of {count} messages on {topic} within 20 s", seen.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `count` messages were seen on topics matching `filter` (`+` wildcards).
    pub async fn wait_count_matching(&self, filter: &str, count: usize) -> Vec<Seen> {
        let matches = |topic: &str| {
            let levels: Vec<&str> = topic.split('/').collect();
            let pattern: Vec<&str> = filter.split('/').collect();
            levels.len() == pattern.len()
                && levels
                    .iter()
                    .zip(&pattern)
                    .all(|(l, p)| *p == "+" || l == p)
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen: Vec<Seen> = self
                .all()
                .into_iter()
                .filter(|s| matches(&s.topic))
                .collect();
            if seen.len() >= count {
                return seen;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{} of {count} messages on {filter} within 20 s", seen.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes (QoS 1).
    pub async fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .expect("publish");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Mosquitto of the test's own on a free port, which the test can stop and start again.
pub struct PrivateBroker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let port = free_port();
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("conf");
        let mut broker = PrivateBroker {
            port,
            dir,
            child: None,
        };
        broker.resume();
        broker
    }

    /// Starts the broker process again on the same port and waits until it listens.
    pub fn resume(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (installed by scripts/test-env)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "private mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker process (connections drop at once).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// A health feed that never reports (its sender is gone): for adapters whose per-path figures
/// a test does not look at.
pub fn no_health() -> tokio::sync::watch::Receiver<beacon::health::HealthReport> {
    tokio::sync::watch::channel(beacon::health::HealthReport::default()).1
}
