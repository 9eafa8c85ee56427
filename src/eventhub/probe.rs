//! The setup wizard's live connection test: connect to the hub over the Kafka protocol with
//! the same settings the consumer uses (SASL_SSL, PLAIN, the connection string), ask for the
//! event hub's metadata, and say in words what worked or what did not — without the key.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;

use super::consumer::{client_config, ConsumerSettings};

/// What the hub answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubProbe {
    /// The bootstrap address reached.
    pub bootstrap: String,
    pub hub: String,
    pub partitions: usize,
}

/// Keeps librdkafka's last error: a refused SASL login shows up here, while the metadata
/// request itself only times out.
#[derive(Default)]
struct Errors {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ClientContext for Errors {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _message: &str) {}

    fn error(&self, error: KafkaError, reason: &str) {
        if let (Some(code), Ok(mut last)) = (error.rdkafka_error_code(), self.last.lock()) {
            *last = Some((code, reason.to_string()));
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

/// Connects and reads the hub's metadata within `timeout`. Blocking: call it from
/// `spawn_blocking`. The error is a sentence for the page; it never contains the key.
pub fn probe(settings: &ConsumerSettings, timeout: Duration) -> Result<HubProbe, String> {
    let hub = settings.target.topic().to_string();
    let bootstrap = settings.target.bootstrap.clone();
    // Only metadata is asked for: the probe never subscribes, so it joins no group and takes
    // no partition from a running consumer.
    let config = client_config(settings);
    let consumer: BaseConsumer<Errors> =
        config.create_with_context(Errors::default()).map_err(|e| {
            format!(
                "the Kafka client could not be set up: {}",
                scrub(&e.to_string(), settings)
            )
        })?;
    let answer = consumer.fetch_metadata(Some(&hub), timeout);
    let noted = consumer.context().last.lock().ok().and_then(|l| l.clone());
    let metadata = match answer {
        Ok(metadata) => metadata,
        Err(error) => return Err(explain(&bootstrap, &hub, error, noted, settings)),
    };
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == hub) else {
        return Err(format!(
            "{bootstrap} answered but did not list event hub '{hub}'"
        ));
    };
    if let Some(error) = topic.error() {
        let code = RDKafkaErrorCode::from(error);
        return Err(match code {
            RDKafkaErrorCode::UnknownTopicOrPartition => format!(
                "{bootstrap} has no event hub named '{hub}': check the name (Event Hubs namespace → Event Hubs)"
            ),
            RDKafkaErrorCode::TopicAuthorizationFailed => format!(
                "the policy in the connection string may not read event hub '{hub}': give it the Listen right"
            ),
            other => format!("{bootstrap} refused event hub '{hub}': {other}"),
        });
    }
    if topic.partitions().is_empty() {
        return Err(format!(
            "{bootstrap} has no event hub named '{hub}' (no partitions listed)"
        ));
    }
    Ok(HubProbe {
        bootstrap,
        hub,
        partitions: topic.partitions().len(),
    })
}

fn explain(
    bootstrap: &str,
    hub: &str,
    error: KafkaError,
    noted: Option<(RDKafkaErrorCode, String)>,
    settings: &ConsumerSettings,
) -> String {
    use RDKafkaErrorCode as C;
    let code = noted
        .as_ref()
        .map(|(c, _)| *c)
        .or(error.rdkafka_error_code());
    let detail = noted
        .map(|(_, reason)| reason)
        .unwrap_or_else(|| error.to_string());
    let detail = scrub(&detail, settings);
    match code {
        Some(C::Authentication | C::SaslAuthenticationFailed) => format!(
            "{bootstrap} refused the connection string (SASL authentication failed): copy it again from the shared access policy ({detail})"
        ),
        Some(C::Resolve) => format!("{bootstrap} could not be found (DNS): check the namespace ({detail})"),
        Some(C::SSL) => format!("the TLS connection to {bootstrap} failed ({detail})"),
        Some(C::UnknownTopicOrPartition) => format!("{bootstrap} has no event hub named '{hub}'"),
        Some(C::BrokerTransportFailure | C::AllBrokersDown) => {
            format!("{bootstrap} could not be reached on port 9093 ({detail}); is outbound TCP 9093 allowed?")
        }
        _ => format!("no answer from {bootstrap} about event hub '{hub}' ({detail})"),
    }
}

/// librdkafka's messages name the broker and the mechanism, not the password; this is a second
/// fence all the same.
fn scrub(text: &str, settings: &ConsumerSettings) -> String {
    let secret = settings.target.password.expose();
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "(connection string)")
    }
}
