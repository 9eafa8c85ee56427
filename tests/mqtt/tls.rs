//! MQTT over TLS with a user name and password, against the second Mosquitto that
//! `scripts/test-env` starts (127.0.0.1:18883, the test CA, a password file, no anonymous
//! clients): the appliance connects and is observed over TLS; a wrong password or an
//! untrusted broker certificate keeps it disconnected, says why, becomes the `mqtt` trouble —
//! and the password never shows in the status, the trouble, or the configuration's Debug.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::mqtt::{no_health, unique, Observer};
use beacon::alarm::{AlarmState, CallSummary};
use beacon::alarm_task;
use beacon::outputs::mqtt::{self, MqttConfig};
use beacon::secret::Secret;
use beacon::store::Store;
use chrono::Utc;

struct TlsBroker {
    port: u16,
    ca: PathBuf,
    user: String,
    password: String,
}

/// The TLS broker from the environment. Fails loudly when missing.
fn tls_broker() -> TlsBroker {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `eval \"$(scripts/test-env)\"` first")
        })
    };
    let address = var("BEACON_TEST_MQTT_TLS");
    let port = address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("BEACON_TEST_MQTT_TLS is host:port");
    TlsBroker {
        port,
        ca: PathBuf::from(var("BEACON_TEST_MQTT_CA")),
        user: var("BEACON_TEST_MQTT_USER"),
        password: var("BEACON_TEST_MQTT_PASSWORD"),
    }
}

fn config(broker: &TlsBroker, password: &str, ca: Option<PathBuf>) -> MqttConfig {
    MqttConfig {
        enabled: true,
        host: "localhost".into(),
        port: broker.port,
        tls: true,
        ca_file: ca,
        username: Some(broker.user.clone()),
        password: Some(Secret::new(password)),
        trouble_after_secs: 1,
        discovery: false,
        ..MqttConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn beacon_publishes_and_takes_commands_over_tls_with_a_password() {
    let broker = tls_broker();
    let device = unique("tls-desk");
    let config = config(&broker, &broker.password, Some(broker.ca.clone()));
    config.validate().expect("valid");
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let live = Observer::tls(
        broker.port,
        &broker.ca,
        (&broker.user, &broker.password),
        &[format!("beacon/{device}/#")],
    )
    .await;
    let service = mqtt::spawn(&config, &device, store, alarm.clone(), no_health()).expect("mqtt");
    let mut status = service.status();
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.connected))
        .await
        .expect("connected over TLS within 20 s")
        .expect("status");
    live.wait_for(&format!("beacon/{device}/availability"), "online", |s| {
        s.text() == "online"
    })
    .await;

    alarm
        .raise(
            "19:tls@thread.v2/1",
            CallSummary {
                caller_name: Some("Ana Ruiz".into()),
                ..CallSummary::default()
            },
        )
        .await;
    live.wait_for(&format!("beacon/{device}/event"), "call_raised", |s| {
        s.json()["action"] == "call_raised"
    })
    .await;
    live.publish(
        &format!("beacon/{device}/command/acknowledge"),
        b"PRESS",
        false,
    )
    .await;
    let mut view = alarm.view();
    tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|v| v.state == AlarmState::Acknowledged),
    )
    .await
    .expect("acknowledged over TLS within 5 s")
    .expect("view");
    service.shutdown().await;
}

/// Starts an adapter with `config`, waits for the `mqtt` trouble, returns the status and the
/// trouble's detail.
async fn refused(config: MqttConfig) -> (mqtt::MqttStatus, String) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let service = mqtt::spawn(
        &config,
        &unique("tls-bad"),
        store,
        alarm.clone(),
        no_health(),
    )
    .expect("mqtt");
    let mut view = alarm.view();
    let troubled = tokio::time::timeout(
        Duration::from_secs(20),
        view.wait_for(|v| v.display.troubles.iter().any(|t| t.component == "mqtt")),
    )
    .await
    .expect("the mqtt trouble within 20 s")
    .expect("view")
    .clone();
    let status = service.status().borrow().clone();
    service.shutdown().await;
    assert!(!status.connected);
    (status, troubled.display.troubles[0].detail.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_said_in_words_and_never_shown() {
    let broker = tls_broker();
    let wrong = "wrong-password-9c1e44-never-printed";
    let config = config(&broker, wrong, Some(broker.ca.clone()));
    let debug = format!("{config:?}");
    let (status, detail) = refused(config).await;
    let error = status.last_error.clone().unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    assert!(detail.contains("refused"), "{detail}");
    for shown in [&error, &detail, &debug, &format!("{status:?}")] {
        assert!(!shown.contains(wrong), "the password is shown: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_certificate_from_an_untrusted_ca_is_refused() {
    let broker = tls_broker();
    // Trust only the system store: the test CA is not in it.
    let (status, detail) = refused(config(&broker, &broker.password, None)).await;
    let error = status.last_error.unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(detail.to_lowercase().contains("certificate"), "{detail}");
}
