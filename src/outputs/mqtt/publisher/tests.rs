//! The publisher's decisions without a broker: inputs in, actions checked. A pure
//! [`Alarm`] stands in for the alarm task, so a command's effects and the notices and views
//! that follow are the real ones.

use chrono::TimeZone;
use serde_json::Value;

use super::*;
use crate::alarm::{Alarm, AlarmConfig, AlarmState, CallSummary, OutputPattern, Refusal};
use crate::emergency::{EmergencyCall, Kind, Location};

const DEVICE: &str = "desk-1";
const TROUBLE_AFTER_SECS: u64 = 30;

fn topic(leaf: &str) -> String {
    format!("beacon/{DEVICE}/{leaf}")
}

fn utc(secs: u64) -> DateTime<Utc> {
    let secs = i64::try_from(secs).unwrap_or_default();
    Utc.timestamp_opt(1_790_000_000 + secs, 0)
        .single()
        .unwrap_or_default()
}

fn summary(test: bool) -> CallSummary {
    CallSummary {
        caller_name: Some("Jordan Rivera".into()),
        location: Some("725 Example Street, Floor 4".into()),
        dial_string: Some(if test { "933" } else { "911" }.into()),
        callback_number: Some("+14255550100".into()),
        is_test: test,
        ..CallSummary::default()
    }
}

/// A publisher following a pure alarm, on a clock the test moves.
struct Rig {
    publisher: Publisher,
    alarm: Alarm,
    start: Instant,
    /// Seconds since `start`.
    clock: u64,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(|_| {})
    }

    fn with(edit: impl FnOnce(&mut MqttConfig)) -> Rig {
        let mut config = MqttConfig {
            enabled: true,
            host: "broker.test".into(),
            trouble_after_secs: TROUBLE_AFTER_SECS,
            ..MqttConfig::default()
        };
        edit(&mut config);
        let alarm = Alarm::new(AlarmConfig::default());
        let start = Instant::now();
        let view = view_of(&alarm, utc(0));
        let settings = PublisherSettings::from_config(&config, DEVICE);
        Rig {
            publisher: Publisher::new(settings, view, start),
            alarm,
            start,
            clock: 0,
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.start + Duration::from_secs(self.clock),
            utc: utc(self.clock),
        }
    }

    fn advance(&mut self, secs: u64) {
        self.clock += secs;
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let now = self.now();
        self.publisher.handle(input, now)
    }

    /// CONNACK, then the SUBACK: what is published once the link is up.
    fn connect(&mut self) -> Vec<Action> {
        let subscribe = self.feed(Input::Connected);
        assert!(
            matches!(subscribe.as_slice(), [Action::Subscribe(_)]),
            "{subscribe:?}"
        );
        self.feed(Input::Subscribed { accepted: true })
    }

    fn lose(&mut self, error: &str) -> Vec<Action> {
        self.feed(Input::Lost {
            error: error.into(),
        })
    }

    /// `event` on the alarm, then what the adapter would be told: one notice per audit
    /// record, then the new view. Returns every action.
    fn on_alarm(&mut self, event: Event) -> Vec<Action> {
        let effects = self.alarm.handle(event, utc(self.clock));
        self.follow(&effects)
    }

    fn follow(&mut self, effects: &[Effect]) -> Vec<Action> {
        let mut actions = Vec::new();
        for effect in effects {
            if let Effect::Audit(record) = effect {
                let calls = self
                    .alarm
                    .active_calls()
                    .into_iter()
                    .filter(|call| record.keys.contains(&call.key))
                    .cloned()
                    .collect();
                let notice = AlarmNotice {
                    record: record.clone(),
                    calls,
                };
                actions.extend(self.feed(Input::Notice(notice)));
            }
        }
        let view = view_of(&self.alarm, utc(self.clock));
        actions.extend(self.feed(Input::ViewChanged(view)));
        actions
    }

    fn raise(&mut self, key: &str) -> Vec<Action> {
        self.on_alarm(Event::CallRaised {
            key: key.into(),
            summary: summary(false),
        })
    }

    /// A message from the broker on `leaf` under the device.
    fn command(&mut self, leaf: &str, payload: &[u8], retained: bool) -> Vec<Action> {
        self.feed(Input::Message {
            topic: topic(leaf),
            payload: payload.to_vec(),
            retained,
        })
    }

    /// Carries out the commands among `actions` on the alarm as the adapter would: the
    /// outcome back to the publisher, then the alarm's notices and view.
    fn run_commands(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut done = Vec::new();
        for action in actions {
            if let Action::RunCommand(run) = action {
                let effects = self.alarm.handle(run.alarm_event(), utc(self.clock));
                done.extend(self.feed(Input::CommandRan {
                    run,
                    effects: effects.clone(),
                }));
                done.extend(self.follow(&effects));
            }
        }
        done
    }
}

fn view_of(alarm: &Alarm, now: DateTime<Utc>) -> AlarmView {
    AlarmView {
        state: alarm.state(),
        outputs: alarm.outputs(now),
        display: alarm.display(now),
    }
}

fn messages(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Publish(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn on_topic(actions: &[Action], topic: &str) -> Vec<Message> {
    messages(actions)
        .into_iter()
        .filter(|m| m.topic == topic)
        .collect()
}

fn topics_of(actions: &[Action]) -> Vec<String> {
    messages(actions).into_iter().map(|m| m.topic).collect()
}

fn json(message: &Message) -> Value {
    serde_json::from_slice(&message.payload)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e})", message.topic))
}

fn alarm_events(actions: &[Action]) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Alarm(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// The one command result among `actions`.
fn result(actions: &[Action]) -> Value {
    let results = on_topic(actions, &topic("command/result"));
    assert_eq!(results.len(), 1, "one result: {actions:?}");
    assert!(!results[0].retain, "results are not retained");
    json(&results[0])
}

const STATE_LEAVES: [&str; 3] = ["alarm", "call", "trouble"];

fn state_topics() -> Vec<String> {
    STATE_LEAVES.iter().map(|leaf| topic(leaf)).collect()
}

#[test]
fn connecting_subscribes_first_and_goes_online_only_once_the_broker_answered() {
    let mut rig = Rig::new();
    let subscribe = rig.feed(Input::Connected);
    assert_eq!(
        subscribe,
        [Action::Subscribe(vec![
            topic("command/+"),
            "homeassistant/status".into()
        ])]
    );
    assert!(!rig.publisher.status().connected);

    let ready = rig.feed(Input::Subscribed { accepted: true });
    assert!(rig.publisher.status().connected);
    let published = messages(&ready);
    assert_eq!(
        published.first(),
        Some(&Message {
            topic: topic("availability"),
            payload: b"online".to_vec(),
            retain: true,
        }),
        "online first"
    );
    let discovery: Vec<_> = published
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/"))
        .collect();
    assert_eq!(discovery.len(), 12);
    assert!(discovery.iter().all(|m| m.retain && !m.payload.is_empty()));
    for state in state_topics() {
        let seen = on_topic(&ready, &state);
        assert_eq!(seen.len(), 1, "{state}");
        assert!(seen[0].retain, "{state} is retained");
    }
    assert_eq!(json(&on_topic(&ready, &topic("alarm"))[0])["state"], "idle");
    assert!(alarm_events(&ready).is_empty(), "no trouble to clear");
}

#[test]
fn a_refused_or_unqueued_subscription_still_goes_online() {
    let mut rig = Rig::new();
    rig.feed(Input::Connected);
    let ready = rig.feed(Input::Subscribed { accepted: false });
    assert_eq!(on_topic(&ready, &topic("availability")).len(), 1);
    assert!(rig.publisher.status().connected);

    let mut rig = Rig::new();
    rig.feed(Input::Connected);
    let ready = rig.feed(Input::SubscribeNotQueued);
    assert_eq!(on_topic(&ready, &topic("availability")).len(), 1);
    assert!(rig.publisher.status().connected);
    // A late SUBACK does not announce it twice.
    assert!(rig.feed(Input::Subscribed { accepted: true }).is_empty());
}

#[test]
fn without_discovery_no_discovery_is_published() {
    let mut rig = Rig::with(|c| c.discovery = false);
    let ready = rig.connect();
    assert!(topics_of(&ready)
        .iter()
        .all(|t| !t.starts_with("homeassistant/")));
    assert_eq!(on_topic(&ready, &topic("alarm")).len(), 1);
}

#[test]
fn home_assistant_gets_the_console_link_the_build_and_an_event_for_every_transition() {
    let mut rig = Rig::with(|c| c.configuration_url = Some("https://beacon.local:8443".into()));
    let ready = rig.connect();
    let event_entity = on_topic(&ready, "homeassistant/event/desk-1/alarm_event/config");
    assert_eq!(event_entity.len(), 1);
    let config = json(&event_entity[0]);
    assert_eq!(
        config["device"]["configuration_url"],
        "https://beacon.local:8443"
    );
    let sw_version = config["device"]["sw_version"].as_str().unwrap_or_default();
    assert_eq!(sw_version, crate::build_info::version_with_revision());
    assert!(
        sw_version.contains(crate::build_info::REVISION),
        "{sw_version}"
    );
    let event_types = config["event_types"]
        .as_array()
        .cloned()
        .unwrap_or_default();

    // Raised, silenced, acknowledged: one event each, typed as the entity lists it.
    let mut seen = Vec::new();
    seen.extend(on_topic(&rig.raise("chat/1"), &topic("event")));
    seen.extend(on_topic(
        &rig.on_alarm(Event::Silence {
            source: Source::Web,
            who: None,
        }),
        &topic("event"),
    ));
    seen.extend(on_topic(
        &rig.on_alarm(Event::Acknowledge {
            source: Source::Web,
            who: Some("kim".into()),
        }),
        &topic("event"),
    ));
    let types: Vec<Value> = seen.iter().map(|m| json(m)["event_type"].clone()).collect();
    assert_eq!(types, ["call_raised", "silenced", "acknowledged"]);
    for (message, event_type) in seen.iter().zip(&types) {
        assert!(
            !message.retain,
            "an event is not replayed to a new subscriber"
        );
        assert!(
            event_types.contains(event_type),
            "{event_type} not in {event_types:?}"
        );
    }
}

#[test]
fn events_while_away_are_published_in_order_after_connecting_and_the_oldest_beyond_100_is_dropped()
{
    let mut rig = Rig::new();
    let mut waiting = Vec::new();
    // 101 transitions while the broker is away: nothing goes out for them yet.
    for n in 0..=MAX_BACKLOG {
        let on = n % 2 == 0;
        let actions = rig.on_alarm(Event::LampTest {
            on,
            source: Source::Web,
            who: Some(format!("tester {n}")),
        });
        assert!(on_topic(&actions, &topic("event")).is_empty(), "{n}");
        waiting.push(format!("tester {n}"));
    }
    assert_eq!(rig.publisher.status().events_dropped, 1);

    let ready = rig.connect();
    let events = on_topic(&ready, &topic("event"));
    assert_eq!(events.len(), MAX_BACKLOG);
    assert!(events.iter().all(|e| !e.retain), "events are not retained");
    let who: Vec<String> = events
        .iter()
        .map(|e| json(e)["who"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(who, waiting[1..], "in order, the oldest dropped");
    // The events come after the state: a late subscriber sees the state they led to.
    let order = topics_of(&ready);
    let first_event = order.iter().position(|t| *t == topic("event"));
    let last_state = order.iter().rposition(|t| *t == topic("alarm"));
    assert!(
        last_state.is_some() && last_state < first_event,
        "{order:?}"
    );
    assert_eq!(rig.publisher.status().events_dropped, 1);

    // Connected: an event goes out at once (the 101st transition started a lamp test).
    let now = rig.on_alarm(Event::LampTest {
        on: false,
        source: Source::Web,
        who: None,
    });
    assert_eq!(on_topic(&now, &topic("event")).len(), 1);
}

#[test]
fn the_retained_state_is_published_again_on_reconnection_and_only_changes_while_connected() {
    let mut rig = Rig::new();
    rig.connect();

    // Nothing changed: nothing published.
    let view = view_of(&rig.alarm, utc(0));
    assert!(messages(&rig.feed(Input::ViewChanged(view))).is_empty());

    // A call: the alarm and call topics change, the trouble topic does not.
    let raised = rig.raise("chat/1");
    assert_eq!(on_topic(&raised, &topic("alarm")).len(), 1);
    assert_eq!(
        json(&on_topic(&raised, &topic("alarm"))[0])["alerting"],
        true
    );
    assert_eq!(on_topic(&raised, &topic("call")).len(), 1);
    assert!(on_topic(&raised, &topic("trouble")).is_empty());

    // Away: state changes wait for the connection.
    rig.lose("connection reset");
    assert!(!rig.publisher.status().connected);
    let away = rig.on_alarm(Event::Acknowledge {
        source: Source::Web,
        who: None,
    });
    for state in state_topics() {
        assert!(on_topic(&away, &state).is_empty(), "{state}");
    }

    // Back: every state topic again (the broker may have lost them), as it is now.
    let ready = rig.connect();
    for state in state_topics() {
        let seen = on_topic(&ready, &state);
        assert_eq!(seen.len(), 1, "{state}");
        assert!(seen[0].retain);
    }
    assert_eq!(
        json(&on_topic(&ready, &topic("alarm"))[0])["state"],
        "acknowledged"
    );
    // The acknowledgement's event waited too.
    let events = on_topic(&ready, &topic("event"));
    assert_eq!(events.len(), 1);
    assert_eq!(json(&events[0])["action"], "acknowledged");
}

#[test]
fn a_state_payload_the_client_could_not_queue_goes_out_with_the_next_change() {
    let mut rig = Rig::new();
    let ready = rig.connect();
    let trouble = on_topic(&ready, &topic("trouble")).remove(0);
    assert!(rig.feed(Input::NotQueued(trouble.clone())).is_empty());
    assert_eq!(rig.publisher.status().events_dropped, 0, "not an event");

    // A call changes the alarm and call topics only; the trouble topic, never handed to the
    // broker, goes out with them.
    let raised = rig.raise("chat/1");
    assert_eq!(on_topic(&raised, &topic("trouble")), [trouble]);
    // Handed over now: the next change leaves it alone again.
    let acknowledged = rig.on_alarm(Event::Acknowledge {
        source: Source::Web,
        who: None,
    });
    assert!(on_topic(&acknowledged, &topic("trouble")).is_empty());
}

#[test]
fn an_event_the_client_could_not_queue_is_counted_as_dropped() {
    let mut rig = Rig::new();
    rig.connect();
    let raised = rig.raise("chat/1");
    let event = on_topic(&raised, &topic("event")).remove(0);
    rig.feed(Input::NotQueued(event));
    assert_eq!(rig.publisher.status().events_dropped, 1);
}

#[test]
fn a_retained_command_is_rejected_with_a_result_and_never_run() {
    let mut rig = Rig::new();
    rig.connect();
    rig.raise("chat/1");
    rig.advance(7);
    let actions = rig.command("command/acknowledge", b"PRESS", true);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::RunCommand(_))),
        "{actions:?}"
    );
    let answer = result(&actions);
    assert_eq!(answer["command"], "acknowledge");
    assert_eq!(answer["status"], "rejected");
    assert!(answer["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("retained"));
    assert_eq!(
        answer["at"],
        serde_json::json!(utc(7)),
        "the time passed in"
    );
    assert_eq!(rig.publisher.status().commands_rejected, 1);
}

#[test]
fn malformed_and_unknown_commands_are_rejected_with_their_reason_and_counted() {
    let mut rig = Rig::new();
    rig.connect();
    rig.raise("chat/1");
    let big = vec![b'x'; 300];
    let cases: [(&str, &[u8], &str); 6] = [
        ("command/acknowledge", b"yes please", "malformed"),
        (
            "command/acknowledge",
            br#"{"who":"kim","sudo":true}"#,
            "malformed",
        ),
        ("command/acknowledge", &[0xff, 0xfe, 0x00], "UTF-8"),
        ("command/acknowledge", &big, "larger"),
        ("command/reboot", b"now", "unknown command"),
        ("command/test", br#"{"who":""}"#, "malformed"),
    ];
    for (leaf, payload, reason) in cases {
        let actions = rig.command(leaf, payload, false);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::RunCommand(_))),
            "{leaf}: {actions:?}"
        );
        let answer = result(&actions);
        assert_eq!(answer["status"], "rejected", "{leaf}: {answer}");
        let said = answer["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{leaf}: {said}");
    }
    assert_eq!(rig.publisher.status().commands_rejected, cases.len() as u64);
    assert_eq!(rig.alarm.state(), AlarmState::Alerting, "changed nothing");
}

#[test]
fn with_commands_disabled_they_are_rejected_and_home_assistant_is_offered_no_controls() {
    let mut rig = Rig::with(|c| c.commands_enabled = false);
    let ready = rig.connect();
    rig.raise("chat/1");
    let actions = rig.command("command/acknowledge", b"PRESS", false);
    assert!(!actions.iter().any(|a| matches!(a, Action::RunCommand(_))));
    let answer = result(&actions);
    assert_eq!(answer["status"], "rejected");
    assert!(answer["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("disabled"));
    assert_eq!(rig.publisher.status().commands_rejected, 1);
    assert_eq!(rig.alarm.state(), AlarmState::Alerting, "changed nothing");

    // The siren control and the buttons are withdrawn: empty retained configs.
    for controls in [&ready, &rig.command_from_home_assistant(b"online")] {
        for config in [
            "homeassistant/siren/desk-1/alarm/config",
            "homeassistant/button/desk-1/acknowledge/config",
            "homeassistant/button/desk-1/test/config",
        ] {
            let seen = on_topic(controls, config);
            assert_eq!(seen.len(), 1, "{config}");
            assert!(seen[0].payload.is_empty() && seen[0].retain, "{config}");
        }
    }
}

impl Rig {
    /// Home Assistant's birth (`online`) or last will (`offline`).
    fn command_from_home_assistant(&mut self, payload: &[u8]) -> Vec<Action> {
        self.feed(Input::Message {
            topic: "homeassistant/status".into(),
            payload: payload.to_vec(),
            retained: false,
        })
    }
}

#[test]
fn the_acknowledge_command_runs_on_the_alarm_and_answers_done() {
    let mut rig = Rig::new();
    rig.connect();
    rig.raise("chat/1");
    let actions = rig.command("command/acknowledge", br#"{"who":"Guard Desk 2"}"#, false);
    assert_eq!(
        actions,
        [Action::RunCommand(CommandRun {
            name: "acknowledge".into(),
            command: Command::Acknowledge {
                who: Some("Guard Desk 2".into())
            },
        })]
    );
    let done = rig.run_commands(actions);
    assert_eq!(result(&done)["status"], "done");
    assert_eq!(result(&done)["command"], "acknowledge");
    assert_eq!(rig.alarm.state(), AlarmState::Acknowledged);
    let event = json(&on_topic(&done, &topic("event"))[0]);
    assert_eq!(event["source"], "mqtt");
    assert_eq!(event["who"], "Guard Desk 2");
    assert_eq!(
        json(&on_topic(&done, &topic("alarm"))[0])["state"],
        "acknowledged"
    );

    // Nothing left to acknowledge: refused, and says why.
    let again = rig.command("command/acknowledge", b"PRESS", false);
    let refused = rig.run_commands(again);
    let answer = result(&refused);
    assert_eq!(answer["status"], "refused", "{answer}");
    assert_eq!(
        answer["reason"],
        Refusal::NothingToAcknowledge.to_string().as_str()
    );
    assert_eq!(
        rig.publisher.status().commands_rejected,
        0,
        "refused ≠ rejected"
    );
}

#[test]
fn the_siren_off_of_home_assistant_acknowledges_and_on_is_rejected() {
    let mut rig = Rig::new();
    rig.connect();
    rig.raise("chat/1");
    let on = rig.command("command/siren", b"ON", false);
    assert_eq!(result(&on)["status"], "rejected");
    assert!(rig.run_commands(on).is_empty());
    assert_eq!(rig.alarm.state(), AlarmState::Alerting);

    let off = rig.command("command/siren", b"OFF", false);
    let done = rig.run_commands(off);
    let answer = result(&done);
    assert_eq!(answer["command"], "siren", "the topic's name");
    assert_eq!(answer["status"], "done");
    assert_eq!(rig.alarm.state(), AlarmState::Acknowledged);
}

#[test]
fn a_lamp_test_command_starts_the_lamp_test() {
    let mut rig = Rig::new();
    rig.connect();
    let actions = rig.command("command/test", b"PRESS", false);
    let done = rig.run_commands(actions);
    assert_eq!(result(&done)["status"], "done");
    assert_eq!(
        rig.alarm.outputs(utc(rig.clock)).pattern,
        OutputPattern::LampTest
    );
    assert_eq!(
        json(&on_topic(&done, &topic("alarm"))[0])["lamp_test"],
        true
    );
}

#[test]
fn a_possible_call_is_published_as_possible_not_as_an_emergency() {
    let mut rig = Rig::new();
    rig.connect();
    let actions = rig.on_alarm(Event::CallRaised {
        key: "chat/7".into(),
        summary: CallSummary {
            is_possible: true,
            message: Some("Is this an emergency? Smoke in lab 2".into()),
            ..summary(false)
        },
    });
    let alarm = json(&on_topic(&actions, &topic("alarm"))[0]);
    assert_eq!(alarm["mode"], "possible");
    assert_eq!(alarm["headline"], "POSSIBLE EMERGENCY — CHECK TEAMS");
    assert_eq!(
        (&alarm["possible"], &alarm["emergency"], &alarm["test"]),
        (&Value::Bool(true), &Value::Bool(false), &Value::Bool(false))
    );
    let call = json(&on_topic(&actions, &topic("call"))[0]);
    assert_eq!(call["call"]["level"], "possible");
    assert_eq!(
        call["call"]["message"],
        "Is this an emergency? Smoke in lab 2"
    );
    let event = json(&on_topic(&actions, &topic("event"))[0]);
    assert_eq!(event["calls"][0]["level"], "possible");
}

#[test]
fn the_confirm_command_makes_a_possible_call_the_full_alarm() {
    let mut rig = Rig::new();
    rig.connect();
    rig.on_alarm(Event::CallRaised {
        key: "chat/7".into(),
        summary: CallSummary {
            is_possible: true,
            ..summary(false)
        },
    });
    let actions = rig.command("command/confirm", br#"{"who":"Guard Desk 2"}"#, false);
    assert_eq!(
        actions,
        [Action::RunCommand(CommandRun {
            name: "confirm".into(),
            command: Command::Confirm {
                who: Some("Guard Desk 2".into())
            },
        })]
    );
    let done = rig.run_commands(actions);
    assert_eq!(result(&done)["status"], "done");
    let event = json(&on_topic(&done, &topic("event"))[0]);
    assert_eq!(
        (&event["action"], &event["source"], &event["who"]),
        (
            &Value::from("confirmed"),
            &Value::from("mqtt"),
            &Value::from("Guard Desk 2")
        )
    );
    let alarm = json(&on_topic(&done, &topic("alarm"))[0]);
    assert_eq!(
        (&alarm["mode"], &alarm["emergency"], &alarm["possible"]),
        (
            &Value::from("alarm"),
            &Value::Bool(true),
            &Value::Bool(false)
        )
    );
    assert_eq!(alarm["siren"], true);
    // The retained last call says it is an emergency now.
    let last = json(&on_topic(&done, &topic("last_call"))[0]);
    assert_eq!(
        (&last["key"], &last["level"]),
        (&Value::from("chat/7"), &Value::from("emergency"))
    );
    // Nothing possible left: refused with the reason.
    let press = rig.command("command/confirm", b"PRESS", false);
    let again = rig.run_commands(press);
    assert_eq!(result(&again)["status"], "refused");
    assert_eq!(
        result(&again)["reason"],
        Refusal::NothingToConfirm.to_string().as_str()
    );
}

#[test]
fn our_own_results_and_other_topics_are_not_commands() {
    let mut rig = Rig::new();
    rig.connect();
    for (topic, payload) in [
        (topic("command/result"), b"{}".as_slice()),
        ("beacon/desk-2/command/acknowledge".into(), b"PRESS"),
        (topic("command/acknowledge/extra"), b"PRESS"),
    ] {
        let actions = rig.feed(Input::Message {
            topic: topic.clone(),
            payload: payload.to_vec(),
            retained: false,
        });
        assert!(actions.is_empty(), "{topic}: {actions:?}");
    }
    assert_eq!(rig.publisher.status().commands_rejected, 0);
}

#[test]
fn home_assistant_online_publishes_discovery_and_state_again_and_its_will_does_nothing() {
    let mut rig = Rig::new();
    // Not connected: nothing to do.
    assert!(rig.command_from_home_assistant(b"online").is_empty());
    let ready = rig.connect();
    let discovery = |actions: &[Action]| -> Vec<Message> {
        messages(actions)
            .into_iter()
            .filter(|m| m.topic.starts_with("homeassistant/"))
            .collect()
    };
    let birth = rig.command_from_home_assistant(b"online");
    assert_eq!(discovery(&birth), discovery(&ready), "the same configs");
    for state in state_topics() {
        assert_eq!(on_topic(&birth, &state).len(), 1, "{state}, even unchanged");
    }
    assert!(rig.command_from_home_assistant(b"offline").is_empty());
}

#[test]
fn the_broker_away_longer_than_trouble_after_raises_the_mqtt_trouble_and_reconnection_clears_it() {
    let mut rig = Rig::new();
    rig.connect();
    assert_eq!(rig.publisher.deadline(), None, "nothing to wait for");
    rig.advance(10);
    rig.lose("connection refused");
    assert_eq!(
        rig.publisher.status().last_error.as_deref(),
        Some("connection refused")
    );
    let due = rig.start + Duration::from_secs(10 + TROUBLE_AFTER_SECS);
    assert_eq!(rig.publisher.deadline(), Some(due));
    rig.advance(TROUBLE_AFTER_SECS - 1);
    assert!(rig.feed(Input::Tick).is_empty(), "not yet");
    rig.advance(1);
    let raised = alarm_events(&rig.feed(Input::Tick));
    match raised.as_slice() {
        [Event::TroubleRaised { component, detail }] => {
            assert_eq!(component, TROUBLE_COMPONENT);
            assert!(detail.contains("broker.test:1883"), "{detail}");
            assert!(detail.contains("connection refused"), "{detail}");
        }
        other => panic!("expected the mqtt trouble, got {other:?}"),
    }
    assert_eq!(rig.publisher.deadline(), None, "raised once");
    assert!(rig.feed(Input::Tick).is_empty());

    let ready = rig.connect();
    assert_eq!(
        alarm_events(&ready),
        [Event::TroubleCleared {
            component: TROUBLE_COMPONENT.into()
        }]
    );
    assert!(rig.publisher.status().connected);
    assert_eq!(rig.publisher.status().last_error, None);
}

#[test]
fn a_short_outage_raises_no_trouble() {
    let mut rig = Rig::new();
    rig.connect();
    rig.lose("connection reset");
    rig.advance(TROUBLE_AFTER_SECS - 1);
    assert!(rig.feed(Input::Tick).is_empty());
    let ready = rig.connect();
    assert!(alarm_events(&ready).is_empty());
    assert_eq!(rig.publisher.deadline(), None);
}

#[test]
fn falling_behind_the_alarm_counts_the_missed_events_and_holds_the_lag_trouble_for_60_s() {
    let mut rig = Rig::new();
    rig.connect();
    rig.advance(5);
    let lagged = rig.feed(Input::Lagged { missed: 12 });
    assert_eq!(rig.publisher.status().events_dropped, 12);
    match alarm_events(&lagged).as_slice() {
        [Event::TroubleRaised { component, detail }] => {
            assert_eq!(component, LAG_COMPONENT);
            assert!(detail.contains("12"), "{detail}");
        }
        other => panic!("expected the lag trouble, got {other:?}"),
    }
    // The state may have changed in what was missed: published afresh.
    for state in state_topics() {
        assert_eq!(on_topic(&lagged, &state).len(), 1, "{state}");
    }
    let until = rig.start + Duration::from_secs(5) + LAG_TROUBLE_HOLD;
    assert_eq!(rig.publisher.deadline(), Some(until));
    rig.advance(LAG_TROUBLE_HOLD.as_secs() - 1);
    assert!(rig.feed(Input::Tick).is_empty(), "held");
    rig.advance(1);
    assert_eq!(
        alarm_events(&rig.feed(Input::Tick)),
        [Event::TroubleCleared {
            component: LAG_COMPONENT.into()
        }]
    );
    assert_eq!(rig.publisher.deadline(), None);
}

fn record_for(key: &str, posted: DateTime<Utc>, recognised: DateTime<Utc>) -> CallRecord {
    CallRecord {
        key: key.into(),
        kind: Kind::Emergency,
        reason: "test".into(),
        call: EmergencyCall {
            created: posted,
            location: Location {
                latitude: Some(47.64),
                longitude: Some(-122.13),
                ..Default::default()
            },
            ..Default::default()
        },
        zone: None,
        alarmed_locally: true,
        late: false,
        received_at: recognised,
        recognised_at: recognised,
        updates: 0,
        updated_at: None,
        deleted: false,
        notification: None,
        sources: Vec::new(),
        ended_at: None,
        call_event: None,
    }
}

/// The call a raise asked to look up.
fn looked_up(actions: &[Action]) -> ActiveCall {
    let calls: Vec<&ActiveCall> = actions
        .iter()
        .filter_map(|action| match action {
            Action::LookUpRecord(call) => Some(call),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "{actions:?}");
    calls[0].clone()
}

#[test]
fn the_last_call_is_published_again_with_its_latency_once_its_record_is_found() {
    let mut rig = Rig::new();
    rig.connect();
    let raised = rig.raise("chat/1");
    let last = on_topic(&raised, &topic("last_call"));
    assert_eq!(last.len(), 1);
    assert!(last[0].retain);
    assert_eq!(json(&last[0])["key"], "chat/1");
    assert_eq!(json(&last[0])["latency_seconds"], Value::Null);
    let call = looked_up(&raised);
    assert_eq!(call.key, "chat/1");

    let record = record_for(
        "chat/1",
        utc(0) - chrono::Duration::milliseconds(2500),
        utc(0),
    );
    let found = rig.feed(Input::RecordFound {
        call: call.clone(),
        record: Box::new(record),
    });
    let with_latency = on_topic(&found, &topic("last_call"));
    assert_eq!(with_latency.len(), 1);
    let json_last = json(&with_latency[0]);
    assert_eq!(json_last["latency_seconds"], 2.5);
    assert_eq!(json_last["latitude"], 47.64);
    assert_eq!(json_last["callback_number"], "+14255550100");

    // On reconnection the last call goes out again, latency included.
    rig.lose("connection reset");
    let ready = rig.connect();
    let again = on_topic(&ready, &topic("last_call"));
    assert_eq!(again.len(), 1);
    assert_eq!(json(&again[0])["latency_seconds"], 2.5);
}

#[test]
fn a_record_found_after_another_call_was_raised_is_not_published() {
    let mut rig = Rig::new();
    rig.connect();
    let first = looked_up(&rig.raise("chat/1"));
    rig.raise("chat/2");
    let stale = rig.feed(Input::RecordFound {
        call: first,
        record: Box::new(record_for("chat/1", utc(0), utc(1))),
    });
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn a_call_raised_while_away_is_the_last_call_published_on_connection() {
    let mut rig = Rig::new();
    let raised = rig.raise("chat/1");
    looked_up(&raised);
    let ready = rig.connect();
    let last = on_topic(&ready, &topic("last_call"));
    assert_eq!(last.len(), 1);
    assert_eq!(json(&last[0])["key"], "chat/1");
}

#[test]
fn stopping_publishes_offline_then_disconnects() {
    let mut rig = Rig::new();
    rig.connect();
    let stopping = rig.feed(Input::Stopping);
    assert_eq!(
        stopping,
        [
            Action::Publish(Message {
                topic: topic("availability"),
                payload: b"offline".to_vec(),
                retain: true,
            }),
            Action::Disconnect,
        ]
    );
    assert!(!rig.publisher.status().connected);
}

#[test]
fn stopping_while_away_sends_nothing() {
    let mut rig = Rig::new();
    rig.connect();
    rig.lose("connection reset");
    assert!(rig.feed(Input::Stopping).is_empty());
}
