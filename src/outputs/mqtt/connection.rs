//! The broker connection (rumqttc): the client options of the `[mqtt]` section (clean
//! session, keep-alive, packet limits, the will `offline` on the availability topic,
//! credentials, TLS), and the task that polls rumqttc's event loop — which reconnects on the
//! next poll after an error — with backoff, telling the publisher what happened.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Outgoing,
    Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};

use super::config::MqttConfig;
use super::publisher::Input;
use super::tls::{self, TlsError};

/// Requests the client queues for the connection task.
const REQUEST_QUEUE: usize = 512;
/// Reconnection backoff.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Largest message accepted from the broker, and sent.
const MAX_INCOMING: usize = 64 * 1024;
const MAX_OUTGOING: usize = 256 * 1024;

/// The client and its (not yet polled) event loop for `device_id`, with the will `offline`
/// retained on `availability_topic`. Fails only when TLS cannot be set up (CA file).
pub fn client(
    config: &MqttConfig,
    device_id: &str,
    availability_topic: &str,
) -> Result<(AsyncClient, EventLoop), TlsError> {
    let options = options(config, device_id, availability_topic)?;
    Ok(AsyncClient::new(options, REQUEST_QUEUE))
}

fn options(
    config: &MqttConfig,
    device_id: &str,
    availability_topic: &str,
) -> Result<MqttOptions, TlsError> {
    let mut options = MqttOptions::new(
        config.client_id_for(device_id),
        config.host.clone(),
        config.port,
    );
    options
        .set_keep_alive(config.keepalive())
        // A stale command must never be delivered after a reconnection.
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_last_will(LastWill::new(
            availability_topic,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &config.username {
        let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
        options.set_credentials(user.clone(), password);
    }
    if config.tls {
        let tls = tls::client_config(config.ca_file.as_deref())?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(options)
}

/// Polls `eventloop` until `stop`, or until our DISCONNECT went out (then `inputs` closes:
/// that is how the adapter knows), sending what happened to `inputs`.
pub async fn drive(
    mut eventloop: EventLoop,
    inputs: mpsc::Sender<Input>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            _ = stop.changed() => return,
        };
        let input = match polled {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                Input::Connected
            }
            Ok(MqttEvent::Incoming(Packet::SubAck(ack))) => Input::Subscribed {
                accepted: ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_))),
            },
            Ok(MqttEvent::Incoming(Packet::Publish(publish))) => Input::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
                retained: publish.retain,
            },
            Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => continue,
            Err(error) => {
                let lost = Input::Lost {
                    error: describe(&error),
                };
                if inputs.send(lost).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if inputs.send(input).await.is_err() {
            return;
        }
    }
}

/// A connection error in words (rumqttc's texts carry no credentials).
fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_will_is_offline_retained_and_sessions_are_clean() {
        let config = MqttConfig {
            enabled: true,
            host: "broker.test".into(),
            port: 1884,
            keepalive_secs: 15,
            username: Some("beacon".into()),
            password: Some(Secret::new("pass-word")),
            ..MqttConfig::default()
        };
        let options =
            options(&config, "desk-1", "beacon/desk-1/availability").expect("no TLS to set up");
        let will = options.last_will().expect("a last will");
        assert_eq!(will.topic, "beacon/desk-1/availability");
        assert_eq!(will.message.as_ref(), b"offline");
        assert_eq!(will.qos, QoS::AtLeastOnce);
        assert!(will.retain);
        assert!(options.clean_session());
        assert_eq!(options.keep_alive(), Duration::from_secs(15));
        assert_eq!(options.client_id(), "desk-1");
        assert_eq!(options.broker_address(), ("broker.test".into(), 1884));
        let login = options.credentials().expect("credentials");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("beacon", "pass-word")
        );
        assert!(matches!(options.transport(), Transport::Tcp));
    }
}
