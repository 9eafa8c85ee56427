//! MQTT against the real Mosquitto (`scripts/test-env`, 127.0.0.1:1883): the alarm service and
//! the MQTT adapter run in-process; a second rumqttc client observes what a security office or
//! Home Assistant would see, and sends the commands they would send. Every test uses its own
//! device id (and, where it matters, its own discovery prefix), so the tests run in parallel.
//!
//! What is checked here needs the broker: connecting, retained messages kept and replayed,
//! a command's round trip, the call record found in the store, discovery as the broker keeps
//! it, a broker that goes away and comes back, the clean shutdown. Which message the adapter
//! decides to send when (rejections, disabled commands, the siren and lamp-test commands, the
//! backlog, the troubles) is tested without a broker in `outputs::mqtt::publisher`'s tests.

use std::time::Duration;

use crate::support::mqtt::{broker, no_health, unique, Observer, PrivateBroker};
use beacon::alarm::{AlarmState, CallSummary, Output};
use beacon::alarm_task::{self, AlarmHandle};
use beacon::calls::Path;
use beacon::health::{HealthReport, PathHealth};
use beacon::outputs::mqtt::{self, MqttConfig, MqttHandle};
use beacon::store::Store;
use chrono::Utc;
use serde_json::Value;

/// One appliance: store, alarm task and MQTT adapter.
struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    alarm: AlarmHandle,
    mqtt: Option<MqttHandle>,
    /// What the health supervisor would report.
    health: tokio::sync::watch::Sender<HealthReport>,
    device: String,
    prefix: String,
}

impl Rig {
    async fn start(edit: impl FnOnce(&mut MqttConfig)) -> Rig {
        let device = unique("desk");
        let prefix = unique("ha");
        let (host, port) = broker();
        let mut config = MqttConfig {
            enabled: true,
            host,
            port,
            discovery_prefix: prefix.clone(),
            ..MqttConfig::default()
        };
        edit(&mut config);
        config.validate().expect("valid [mqtt]");
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let (alarm, _task) = alarm_task::spawn(Default::default(), store.clone(), Utc::now());
        let (health, reports) = tokio::sync::watch::channel(HealthReport::default());
        let mqtt =
            mqtt::spawn(&config, &device, store.clone(), alarm.clone(), reports).expect("mqtt");
        Rig {
            _dir: dir,
            store,
            alarm,
            mqtt: Some(mqtt),
            health,
            device,
            prefix,
        }
    }

    fn topic(&self, leaf: &str) -> String {
        format!("beacon/{}/{leaf}", self.device)
    }

    fn all_topics(&self) -> String {
        format!("beacon/{}/#", self.device)
    }

    fn discovery_filter(&self) -> String {
        format!("{}/+/{}/+/config", self.prefix, self.device)
    }

    async fn wait_connected(&self) {
        let mut status = self.mqtt.as_ref().expect("running").status();
        tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.connected))
            .await
            .expect("connected within 20 s")
            .expect("status");
    }

    async fn raise(&self, key: &str, test: bool) {
        self.alarm
            .raise(
                key,
                CallSummary {
                    caller_name: Some("Jordan Rivera".into()),
                    location: Some("725 Example Street, Floor 4, Redmond".into()),
                    dial_string: Some(if test { "933" } else { "911" }.into()),
                    callback_number: Some("+14255550100".into()),
                    is_test: test,
                    ..CallSummary::default()
                },
            )
            .await;
        let mut view = self.alarm.view();
        tokio::time::timeout(
            Duration::from_secs(5),
            view.wait_for(|v| v.display.calls.iter().any(|c| c.key == key)),
        )
        .await
        .expect("raised")
        .expect("view");
    }

    async fn stop(mut self) {
        if let Some(mqtt) = self.mqtt.take() {
            mqtt.shutdown().await;
        }
    }
}

fn field<'a>(json: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(json, |v, k| &v[*k])
}

#[tokio::test(flavor = "multi_thread")]
async fn each_paths_calls_and_misses_are_retained_as_the_supervisor_reports_them() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.all_topics()]).await;
    rig.wait_connected().await;
    // Published on connection, before the supervisor's first report.
    live.wait_for(&rig.topic("paths"), "empty paths", |s| {
        s.json()["paths"] == serde_json::json!([])
    })
    .await;
    let last = Utc::now();
    rig.health.send_replace(HealthReport {
        paths: vec![
            PathHealth {
                path: Path::ChatNotification,
                events: 3,
                last_event: Some(last),
                missed: 0,
            },
            PathHealth {
                path: Path::CallEvent,
                events: 2,
                last_event: Some(last),
                missed: 1,
            },
        ],
        ..HealthReport::default()
    });
    let seen = live
        .wait_for(&rig.topic("paths"), "the figures", |s| {
            s.json()["paths"].as_array().is_some_and(|p| p.len() == 2)
        })
        .await
        .json();
    assert_eq!(seen["paths"][0]["path"], "chat_notification");
    assert_eq!(seen["paths"][0]["calls"], 3);
    assert_eq!(seen["paths"][1]["path"], "call_event");
    assert_eq!(seen["paths"][1]["missed"], 1);
    assert!(seen["paths"][1]["last_call"].is_string());
    let late = Observer::new(&[rig.topic("paths")]).await;
    let kept = late
        .wait_for(&rig.topic("paths"), "retained figures", |s| s.retained)
        .await;
    assert_eq!(kept.json(), seen, "a late subscriber gets them at once");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_retained_and_every_transition_is_one_event_with_kari_s_law_content() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.all_topics()]).await;
    rig.wait_connected().await;
    live.wait_for(&rig.topic("availability"), "online", |s| {
        s.text() == "online"
    })
    .await;
    live.wait_for(&rig.topic("alarm"), "idle state", |s| {
        s.json()["state"] == "idle"
    })
    .await;

    rig.raise("19:chat@thread.v2/1001", false).await;
    let event = live
        .wait_for(&rig.topic("event"), "call_raised", |s| {
            s.json()["action"] == "call_raised"
        })
        .await;
    assert!(!event.retained, "events are not retained");
    let event = event.json();
    assert_eq!(event["device"], Value::String(rig.device.clone()));
    assert_eq!(event["from"], "idle");
    assert_eq!(event["to"], "alerting");
    assert_eq!(event["keys"][0], "19:chat@thread.v2/1001");
    let call = &event["calls"][0];
    assert_eq!(call["caller"], "Jordan Rivera");
    assert_eq!(call["callback_number"], "+14255550100");
    assert_eq!(call["location"], "725 Example Street, Floor 4, Redmond");
    assert_eq!(call["dial_string"], "911");
    assert_eq!(call["test"], false);

    // Someone who connects later (Home Assistant after a restart, a door controller) gets the
    // current state at once: it is retained.
    live.wait_for(&rig.topic("alarm"), "alerting", |s| {
        s.json()["alerting"] == true
    })
    .await;
    let late = Observer::new(&[rig.all_topics()]).await;
    let availability = late
        .wait_for(&rig.topic("availability"), "retained online", |s| {
            s.retained
        })
        .await;
    assert_eq!(availability.text(), "online");
    let alarm = late
        .wait_for(&rig.topic("alarm"), "retained state", |s| s.retained)
        .await
        .json();
    assert_eq!(alarm["state"], "alerting");
    assert_eq!(alarm["emergency"], true);
    assert_eq!(alarm["siren"], true);
    assert_eq!(alarm["strobe"], true);
    let active = late
        .wait_for(&rig.topic("call"), "retained call", |s| s.retained)
        .await
        .json();
    assert_eq!(active["active"], true);
    assert_eq!(field(&active, &["call", "caller"]), "Jordan Rivera");
    assert_eq!(field(&active, &["call", "callback_number"]), "+14255550100");
    let last = late
        .wait_for(&rig.topic("last_call"), "retained last call", |s| {
            s.retained
        })
        .await
        .json();
    assert_eq!(last["key"], "19:chat@thread.v2/1001");
    let trouble = late
        .wait_for(&rig.topic("trouble"), "retained trouble", |s| s.retained)
        .await
        .json();
    assert_eq!(trouble["active"], false);

    // One event per transition: a lamp test is refused while a call is active (no event), an
    // acknowledgement is one.
    rig.alarm
        .send(beacon::alarm::Event::Acknowledge {
            source: beacon::alarm::Source::Web,
            who: Some("desk".into()),
        })
        .await;
    live.wait_for(&rig.topic("event"), "acknowledged", |s| {
        s.json()["action"] == "acknowledged"
    })
    .await;
    let events: Vec<String> = live
        .on_topic(&rig.topic("event"))
        .iter()
        .map(|s| s.json()["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(events, ["call_raised", "acknowledged"]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_call_gets_its_latency_once_the_call_record_is_written() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.all_topics()]).await;
    rig.wait_connected().await;
    let key = "19:chat@thread.v2/2002";
    rig.raise(key, false).await;
    // The recogniser writes the record right after raising the alarm.
    let now = Utc::now();
    let record = beacon::calls::CallRecord {
        key: key.into(),
        kind: beacon::emergency::Kind::Emergency,
        reason: "test".into(),
        call: beacon::emergency::EmergencyCall {
            created: now - chrono::Duration::milliseconds(2500),
            location: beacon::emergency::Location {
                latitude: Some(47.64),
                longitude: Some(-122.13),
                ..Default::default()
            },
            ..Default::default()
        },
        zone: None,
        alarmed_locally: true,
        late: false,
        received_at: now,
        recognised_at: now,
        updates: 0,
        updated_at: None,
        deleted: false,
        notification: None,
        sources: Vec::new(),
        ended_at: None,
        call_event: None,
    };
    rig.store
        .calls
        .insert(key, &serde_json::json!(record))
        .expect("record");
    let last = live
        .wait_for(&rig.topic("last_call"), "latency", |s| {
            !s.json()["latency_seconds"].is_null()
        })
        .await
        .json();
    assert_eq!(last["latency_seconds"], 2.5);
    assert_eq!(last["latitude"], 47.64);
    assert_eq!(last["callback_number"], "+14255550100");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_acknowledge_command_turns_the_alarm_off() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.all_topics()]).await;
    rig.wait_connected().await;
    rig.raise("19:chat@thread.v2/3003", false).await;
    live.wait_for(&rig.topic("alarm"), "alerting", |s| {
        s.json()["alerting"] == true
    })
    .await;

    live.publish(
        &rig.topic("command/acknowledge"),
        br#"{"who":"Guard Desk 2"}"#,
        false,
    )
    .await;
    let result = live
        .wait_for(&rig.topic("command/result"), "a result", |_| true)
        .await
        .json();
    assert_eq!(result["command"], "acknowledge");
    assert_eq!(result["status"], "done", "{result}");

    let mut view = rig.alarm.view();
    let acknowledged = tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|v| v.state == AlarmState::Acknowledged),
    )
    .await
    .expect("acknowledged within 5 s")
    .expect("view")
    .clone();
    assert_eq!(acknowledged.outputs.siren, Output::Off, "siren off");
    assert_eq!(acknowledged.outputs.strobe, Output::Off, "strobe off");
    let call = &acknowledged.display.calls[0];
    assert_eq!(call.acknowledged_by.as_deref(), Some("Guard Desk 2"));

    let event = live
        .wait_for(&rig.topic("event"), "acknowledged", |s| {
            s.json()["action"] == "acknowledged"
        })
        .await
        .json();
    assert_eq!(event["source"], "mqtt");
    assert_eq!(event["who"], "Guard Desk 2");
    let state = live
        .wait_for(&rig.topic("alarm"), "acknowledged", |s| {
            s.json()["state"] == "acknowledged"
        })
        .await
        .json();
    assert_eq!(state["siren"], false);
    assert_eq!(state["alerting"], false);

    // The audit log records who, from where.
    let audited = rig.store.audit.iter().filter_map(|(_, v)| v.ok()).any(|v| {
        v["action"] == "acknowledged" && v["source"] == "mqtt" && v["who"] == "Guard Desk 2"
    });
    assert!(audited, "audit record of the MQTT acknowledgement");

    // Nothing left to acknowledge: a second one is refused, and says why.
    live.publish(&rig.topic("command/acknowledge"), b"PRESS", false)
        .await;
    let results = live.wait_count(&rig.topic("command/result"), 2).await;
    let second = results[1].json();
    assert_eq!(second["status"], "refused", "{second}");
    assert!(second["reason"]
        .as_str()
        .unwrap_or("")
        .contains("nothing to acknowledge"));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retained_command_replayed_on_connection_is_rejected() {
    // A retained acknowledge left for the device before its adapter connects (as a stale
    // message would be), replayed by the broker when the adapter subscribes.
    let device = unique("desk");
    let stale = Observer::new(&[]).await;
    let topic = format!("beacon/{device}/command/acknowledge");
    stale.publish(&topic, b"PRESS", true).await;

    let (host, port) = broker();
    let config = MqttConfig {
        enabled: true,
        host,
        port,
        discovery: false,
        ..MqttConfig::default()
    };
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    alarm
        .raise("19:chat@thread.v2/6006", CallSummary::default())
        .await;
    let live = Observer::new(&[format!("beacon/{device}/command/result")]).await;
    let adapter = mqtt::spawn(&config, &device, store, alarm.clone(), no_health()).expect("mqtt");
    let result = live
        .wait_for(
            &format!("beacon/{device}/command/result"),
            "a result",
            |_| true,
        )
        .await
        .json();
    assert_eq!(result["status"], "rejected", "{result}");
    assert!(result["reason"].as_str().unwrap_or("").contains("retained"));
    assert_eq!(alarm.view().borrow().state, AlarmState::Alerting);
    stale.publish(&topic, b"", true).await;
    adapter.shutdown().await;
}

/// The keys Home Assistant documents for the `device` block of a discovery config.
const DEVICE_KEYS: &[&str] = &[
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
];

/// The keys Home Assistant's MQTT integration documents for each component we use (full
/// names; `availability`, `device`, `origin` and the other shared entity options included).
fn documented_keys(component: &str) -> (&'static [&'static str], &'static [&'static str]) {
    const COMMON: &[&str] = &[
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "device",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "object_id",
        "default_entity_id",
        "origin",
        "payload_available",
        "payload_not_available",
        "platform",
        "qos",
        "unique_id",
    ];
    let (specific, required): (&[&str], &[&str]) = match component {
        "binary_sensor" => (
            &[
                "device_class",
                "expire_after",
                "force_update",
                "off_delay",
                "payload_off",
                "payload_on",
                "state_topic",
                "value_template",
            ],
            &["state_topic"],
        ),
        "sensor" => (
            &[
                "device_class",
                "expire_after",
                "force_update",
                "last_reset_value_template",
                "options",
                "suggested_display_precision",
                "state_class",
                "state_topic",
                "unit_of_measurement",
                "value_template",
            ],
            &["state_topic"],
        ),
        "button" => (
            &[
                "command_template",
                "command_topic",
                "device_class",
                "payload_press",
                "retain",
            ],
            &["command_topic"],
        ),
        "siren" => (
            &[
                "available_tones",
                "command_off_template",
                "command_template",
                "command_topic",
                "optimistic",
                "payload_off",
                "payload_on",
                "retain",
                "state_off",
                "state_on",
                "state_topic",
                "state_value_template",
                "support_duration",
                "support_volume_set",
            ],
            &["command_topic"],
        ),
        "event" => (
            &[
                "device_class",
                "event_types",
                "state_topic",
                "value_template",
            ],
            &["event_types", "state_topic"],
        ),
        other => panic!("component {other} is not one Beacon should publish"),
    };
    let all: Vec<&'static str> = COMMON.iter().chain(specific).copied().collect();
    (Box::leak(all.into_boxed_slice()), required)
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_payloads_follow_home_assistants_documented_schema() {
    let console = "https://beacon.local:8443";
    let rig = Rig::start(|c| c.configuration_url = Some(console.into())).await;
    let first = Observer::new(&[rig.discovery_filter()]).await;
    rig.wait_connected().await;
    first.wait_count_matching(&rig.discovery_filter(), 12).await;
    // A call, so that every state topic (the last call too) has something retained.
    rig.raise("19:chat@thread.v2/8008", false).await;
    let state = Observer::new(&[rig.topic("last_call")]).await;
    state.wait_count(&rig.topic("last_call"), 1).await;
    // Subscribed after the configs went out: what it gets is what the broker retained.
    let live = Observer::new(&[rig.discovery_filter(), rig.all_topics()]).await;
    let node = rig.device.clone();
    let wanted = [
        ("siren", "alarm"),
        ("binary_sensor", "emergency"),
        ("binary_sensor", "possible"),
        ("binary_sensor", "trouble"),
        ("sensor", "state"),
        ("sensor", "last_caller"),
        ("sensor", "last_location"),
        ("sensor", "latency"),
        ("button", "acknowledge"),
        ("button", "test"),
        ("button", "confirm"),
        ("event", "alarm_event"),
    ];
    let mut event_types = Vec::new();
    let topic_re = regex::Regex::new(
        r"^(?P<prefix>.+)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$",
    )
    .expect("HA's TOPIC_MATCHER");
    let mut unique_ids = std::collections::HashSet::new();
    let mut device_blocks = std::collections::HashSet::new();
    for (component, object) in wanted {
        let topic = format!("{}/{component}/{node}/{object}/config", rig.prefix);
        let seen = live
            .wait_for(&topic, "a retained config", |s| !s.payload.is_empty())
            .await;
        assert!(seen.retained, "{topic} is retained");
        let captures = topic_re.captures(&topic).expect("HA accepts the topic");
        assert_eq!(&captures["component"], component);
        assert_eq!(&captures["object_id"], object);
        let config = seen.json();
        let map = config.as_object().expect("a JSON object");
        let (allowed, required) = documented_keys(component);
        for key in map.keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{topic}: `{key}` is not a documented {component} option"
            );
        }
        for key in required {
            assert!(map.contains_key(*key), "{topic}: `{key}` is required");
        }
        // Availability: a list of {topic, payload_available, payload_not_available}.
        let availability = config["availability"]
            .as_array()
            .expect("availability list");
        assert_eq!(availability.len(), 1);
        assert_eq!(
            availability[0]["topic"],
            Value::String(rig.topic("availability"))
        );
        assert_eq!(availability[0]["payload_available"], "online");
        assert_eq!(availability[0]["payload_not_available"], "offline");
        // The device block: identifiers (a list) tie every entity to one device; unique_id is
        // required for that.
        let identifiers = config["device"]["identifiers"]
            .as_array()
            .expect("identifiers list");
        assert!(!identifiers.is_empty());
        device_blocks.insert(config["device"].to_string());
        let unique_id = config["unique_id"].as_str().expect("unique_id");
        assert!(
            unique_ids.insert(unique_id.to_string()),
            "{unique_id} twice"
        );
        assert!(config["name"].is_string());
        // Topics named are under the device, and the state ones are really published.
        for (key, value) in map {
            if key.ends_with("_topic") {
                let named = value.as_str().expect("topic string");
                assert!(
                    named.starts_with(&format!("beacon/{node}/")),
                    "{topic}: {key} = {named}"
                );
                // Events are not retained (a new subscriber must not replay the last one).
                if key != "command_topic" && component != "event" {
                    live.wait_for(named, "a retained state", |s| s.retained)
                        .await;
                }
            }
        }
        // A command topic accepts exactly what Home Assistant will send to it.
        if let Some(command_topic) = config["command_topic"].as_str() {
            let name = command_topic.rsplit('/').next().unwrap_or("");
            let press = config["payload_press"].as_str();
            let off = config["command_off_template"].as_str();
            let on = config["command_template"].as_str();
            if component == "button" {
                let press = press.expect("payload_press");
                assert!(
                    mqtt::commands::parse(name, press.as_bytes()).is_ok(),
                    "{topic}"
                );
            } else {
                assert!(mqtt::commands::parse(name, off.unwrap_or("").as_bytes()).is_ok());
                assert!(mqtt::commands::parse(name, on.unwrap_or("").as_bytes()).is_err());
            }
        }
        // Sanity of typed options.
        for flag in [
            "optimistic",
            "support_duration",
            "support_volume_set",
            "retain",
        ] {
            if let Some(v) = map.get(flag) {
                assert!(v.is_boolean(), "{topic}: {flag}");
            }
        }
        if let Some(qos) = map.get("qos") {
            assert!(matches!(qos.as_u64(), Some(0..=2)), "{topic}: qos");
        }
        if component == "event" {
            event_types = config["event_types"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        // The device block's keys are Home Assistant's; `sw_version` carries the build.
        for key in config["device"].as_object().expect("device").keys() {
            assert!(
                DEVICE_KEYS.contains(&key.as_str()),
                "{topic}: `device.{key}` is not documented"
            );
        }
        assert_eq!(
            config["device"]["sw_version"],
            beacon::build_info::version_with_revision()
        );
        assert_eq!(config["device"]["configuration_url"], console);
    }
    assert_eq!(
        device_blocks.len(),
        1,
        "one device block shared by every entity"
    );
    // The event entity: what an acknowledgement publishes is one of its event types, with
    // `event_type` as Home Assistant reads it.
    let events = rig.topic("event");
    rig.alarm
        .send(beacon::alarm::Event::Acknowledge {
            source: beacon::alarm::Source::Web,
            who: Some("kim".into()),
        })
        .await;
    let event = live
        .wait_for(&events, "the acknowledgement", |s| {
            s.json()["event_type"] == "acknowledged"
        })
        .await;
    assert!(!event.retained);
    assert!(
        event_types.contains(&event.json()["event_type"]),
        "{event_types:?}"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_is_published_again_when_home_assistant_comes_online() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.discovery_filter()]).await;
    rig.wait_connected().await;
    let emergency = format!(
        "{}/binary_sensor/{}/emergency/config",
        rig.prefix, rig.device
    );
    live.wait_count(&emergency, 1).await;
    // Home Assistant restarts: its birth message.
    live.publish(&format!("{}/status", rig.prefix), b"online", false)
        .await;
    let seen = live.wait_count(&emergency, 2).await;
    assert_eq!(seen[0].payload, seen[1].payload);
    // Its last will ("offline") does not trigger anything.
    live.publish(&format!("{}/status", rig.prefix), b"offline", false)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(live.on_topic(&emergency).len(), 2);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_down_too_long_is_a_trouble_that_clears_when_it_is_back() {
    let mut private = PrivateBroker::start();
    let rig = Rig::start(|c| {
        c.port = private.port;
        c.trouble_after_secs = 1;
        c.discovery = false;
    })
    .await;
    rig.wait_connected().await;
    let mut status = rig.mqtt.as_ref().expect("running").status();
    let mut view = rig.alarm.view();

    private.stop();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| !s.connected))
        .await
        .expect("noticed the broker is gone")
        .expect("status");
    let troubled = tokio::time::timeout(
        Duration::from_secs(10),
        view.wait_for(|v| v.display.troubles.iter().any(|t| t.component == "mqtt")),
    )
    .await
    .expect("trouble within 10 s")
    .expect("view")
    .clone();
    let detail = &troubled.display.troubles[0].detail;
    assert!(
        detail.contains(&format!("127.0.0.1:{}", private.port)),
        "{detail}"
    );
    assert!(status.borrow().last_error.is_some());

    // The broker comes back: reconnected (backoff at most 30 s), trouble cleared, and the
    // retained state is published on the new broker (which lost everything).
    private.resume();
    tokio::time::timeout(
        Duration::from_secs(40),
        view.wait_for(|v| v.display.troubles.iter().all(|t| t.component != "mqtt")),
    )
    .await
    .expect("trouble cleared within 40 s")
    .expect("view");
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| s.connected))
        .await
        .expect("connected again")
        .expect("status");
    let late = Observer::on(private.port, &[rig.all_topics()]).await;
    // The new broker got the state, and then the state without the trouble.
    late.wait_for(&rig.topic("alarm"), "retained state", |s| s.retained)
        .await;
    late.wait_for(&rig.topic("alarm"), "the trouble cleared", |s| {
        s.json()["trouble"] == false
    })
    .await;
    assert_eq!(
        late.wait_for(&rig.topic("availability"), "online", |s| s.retained)
            .await
            .text(),
        "online"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_shutdown_publishes_offline_and_releases_the_alarm() {
    let rig = Rig::start(|_| {}).await;
    let live = Observer::new(&[rig.topic("availability")]).await;
    rig.wait_connected().await;
    live.wait_for(&rig.topic("availability"), "online", |s| {
        s.text() == "online"
    })
    .await;
    let availability = rig.topic("availability");
    let Rig { alarm, mqtt, .. } = rig;
    let view = alarm.view();
    tokio::time::timeout(Duration::from_secs(10), mqtt.expect("running").shutdown())
        .await
        .expect("shutdown within 10 s");
    live.wait_for(&availability, "offline", |s| s.text() == "offline")
        .await;
    let late = Observer::new(std::slice::from_ref(&availability)).await;
    let retained = late
        .wait_for(&availability, "retained availability", |s| s.retained)
        .await;
    assert_eq!(retained.text(), "offline");
    drop(alarm);
    // With MQTT's handle gone, the alarm task ends: its view closes.
    let mut view = view;
    tokio::time::timeout(Duration::from_secs(5), async {
        while view.changed().await.is_ok() {}
    })
    .await
    .expect("the alarm task ended: MQTT held no handle");
}
