//! The test broker (tansu behind stunnel: SASL_SSL + PLAIN on localhost:9093), as
//! `scripts/test-env` starts it, and admin/producer helpers over the same SASL_SSL path.

use std::path::PathBuf;
use std::time::Duration;

use beacon::eventhub::connection::{EventHubTarget, SASL_USERNAME};
use beacon::secret::Secret;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

pub struct Broker {
    pub bootstrap: String,
    pub ca: PathBuf,
}

/// The broker from the environment `scripts/test-env` prints. Fails loudly when missing:
/// these tests must not pass by not running.
pub fn broker() -> Broker {
    let bootstrap = std::env::var("BEACON_TEST_KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!("BEACON_TEST_KAFKA_BOOTSTRAP is not set: run the tests with scripts/test (or `eval \"$(scripts/test-env)\"` first)")
    });
    let ca = std::env::var("BEACON_TEST_KAFKA_CA").expect("BEACON_TEST_KAFKA_CA");
    Broker {
        bootstrap,
        ca: PathBuf::from(ca),
    }
}

/// A connection string as the Azure portal shows it, for `topic`.
pub fn connection_string(topic: &str) -> Secret {
    Secret::new(format!(
        "Endpoint=sb://beacon-test.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=dGVzdC1rZXktbm90LXJlYWw=;EntityPath={topic}"
    ))
}

/// The appliance's view of the hub: parsed from the connection string, bootstrap overridden.
pub fn target(topic: &str) -> EventHubTarget {
    let mut target = EventHubTarget::parse(&connection_string(topic)).expect("connection string");
    target.bootstrap = broker().bootstrap;
    target
}

/// SASL_SSL + PLAIN settings of the test broker, for admin clients, producers and readers.
pub fn client_config() -> ClientConfig {
    let broker = broker();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", SASL_USERNAME)
        .set("sasl.password", connection_string("admin").expose())
        .set("ssl.ca.location", broker.ca.to_string_lossy());
    config
}

/// Creates a topic (the broker has no auto-create, like Event Hubs).
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topic");
    for result in results {
        result.expect("topic created");
    }
}

/// Produces records and waits until all are acknowledged.
pub struct Sender {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl Sender {
    pub fn new(topic: &str) -> Sender {
        let producer = client_config()
            .set("linger.ms", "0")
            .set("acks", "all")
            .create()
            .expect("producer");
        Sender {
            producer,
            topic: topic.to_string(),
        }
    }

    /// Sends `body` to `partition` (or the default partitioner when `None`).
    pub fn send(&self, partition: Option<i32>, body: &[u8]) {
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&self.topic).payload(body);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        self.producer
            .send(record)
            .map_err(|(e, _)| e)
            .expect("send");
    }

    /// Waits until everything sent is on the broker.
    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).expect("flush");
    }
}
