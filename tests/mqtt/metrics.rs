//! `/metrics` counts the MQTT commands the appliance rejects: the console and MQTT run in one
//! appliance against the real Mosquitto, a malformed command is sent as a controller would.

use beacon::config::Config;
use beacon::outputs::mqtt::MqttConfig;
use beacon::web::WebConfig;

use crate::support::console::{add_users, Client, Console, GUARD};
use crate::support::metrics::Metrics;
use crate::support::mqtt::{broker, unique, Observer};

#[tokio::test]
async fn a_rejected_command_moves_its_counter() {
    let (host, port) = broker();
    let config = Config {
        mqtt: MqttConfig {
            enabled: true,
            host,
            port,
            discovery: false,
            base_topic: unique("metrics"),
            ..MqttConfig::default()
        },
        ..Config::default()
    };
    let console = Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: false,
            ..WebConfig::default()
        },
        &config,
        add_users,
    )
    .await;
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    let connected = |m: &Metrics| m.value("beacon_mqtt_connected", &[]) == Some(1.0);
    let metrics = Metrics::wait_for(&mut guard, 20, connected).await;
    assert!(connected(&metrics), "{}", metrics.text);
    assert_eq!(metrics.counter("beacon_mqtt_commands_rejected_total"), 0.0);

    let controller = Observer::new(&[]).await;
    let topic = format!("{}/web-test/command/acknowledge", config.mqtt.base_topic);
    controller.publish(&topic, b"not a command", false).await;
    let rejected = |m: &Metrics| m.value("beacon_mqtt_commands_rejected_total", &[]) == Some(1.0);
    let metrics = Metrics::wait_for(&mut guard, 10, rejected).await;
    assert_eq!(metrics.counter("beacon_mqtt_commands_rejected_total"), 1.0);
    console.stop().await;
}
