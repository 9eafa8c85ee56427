//! The Event Hub side over the test broker: whether a hub (topic) exists, and a small
//! consumer for tests that want to read what the fake published.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use super::super::kafka;

use kafka::client_config;

/// Whether the hub exists on the broker (Graph fails creation when it cannot publish, B.5).
/// Blocking.
pub fn exists(topic: &str) -> bool {
    let consumer: BaseConsumer = client_config()
        .set("group.id", "fake-cloud-metadata")
        .create()
        .expect("metadata client");
    match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()),
        Err(_) => false,
    }
}

/// Reads record bodies from the start of `topic` until `n` arrived or `timeout` passed.
pub async fn read(topic: &str, n: usize, timeout: Duration) -> Vec<String> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_blocking(&topic, n, timeout))
        .await
        .expect("consumer task")
}

fn read_blocking(topic: &str, n: usize, timeout: Duration) -> Vec<String> {
    let group = super::super::unique("fake-cloud-reader");
    let consumer: BaseConsumer = client_config()
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut bodies = Vec::new();
    while bodies.len() < n && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            if let Some(payload) = message.payload() {
                bodies.push(String::from_utf8_lossy(payload).into_owned());
            }
        }
    }
    bodies
}
