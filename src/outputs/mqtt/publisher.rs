//! What the MQTT adapter decides (no IO; time passed in), the way rumqttc's `MqttState` is
//! apart from its `EventLoop`: [`Publisher::handle`] takes one [`Input`] — from the broker
//! connection, the alarm, the call log, the clock or the adapter's own feedback — and returns
//! the [`Action`]s to carry out, in order; [`Publisher::status`] is how the link is doing.
//!
//! What it decides:
//! * on connection: subscribe to the commands and Home Assistant's status first; once the
//!   broker answered, `online`, discovery, the retained state, the last call and the events
//!   that waited, in order (the `mqtt` trouble, if raised, clears);
//! * while connected: the retained state topics when the alarm's view changed (only the
//!   topics whose payload changed), one event per alarm notice, the last call (again with its
//!   latency once the call record is found); discovery and state again when Home Assistant
//!   announces itself `online`;
//! * while away: events wait in a backlog of [`MAX_BACKLOG`] (the oldest dropped and
//!   counted); the `mqtt` trouble after `trouble_after`;
//! * commands: retained, disabled or malformed ones are rejected, valid ones run on the alarm;
//!   either way a result is published;
//! * falling behind the alarm's notices: the missed events are counted, the state is
//!   published afresh and the `mqtt-events` trouble is held for [`LAG_TROUBLE_HOLD`];
//! * stopping: `offline` (retained), then DISCONNECT, so the broker does not send the will.
//!
//! A message the client could not queue comes back as [`Input::NotQueued`]: a dropped event is
//! counted, a dropped state payload is published again with the next change.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::commands::{self, Command, Rejection};
use super::config::MqttConfig;
use super::discovery::{self, DeviceInfo};
use super::link::{Link, TroubleChange};
use super::payloads::{self, CommandResult, CommandStatus};
use super::topics::{self, Topics};
use crate::alarm::{ActiveCall, AuditAction, Effect, Event, Source};
use crate::alarm_task::{AlarmNotice, AlarmView};
use crate::calls::CallRecord;
use crate::health::PathHealth;

/// The trouble component of the broker link.
pub const TROUBLE_COMPONENT: &str = "mqtt";
/// The trouble component raised when the adapter fell behind the alarm's notices.
pub const LAG_COMPONENT: &str = "mqtt-events";
/// How long a lag trouble stays visible.
pub const LAG_TROUBLE_HOLD: Duration = Duration::from_secs(60);
/// Events kept while the broker is away; older ones are dropped (and counted).
pub const MAX_BACKLOG: usize = 100;
/// Longest command name repeated in a result.
const SHOWN_COMMAND_CHARS: usize = 32;

/// How the broker link is doing, for the display's MQTT tick and the web page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MqttStatus {
    /// `host:port`.
    pub broker: String,
    /// Connected and subscribed to the command topics (`online` has been published).
    pub connected: bool,
    /// The last connection error in words, while not connected.
    pub last_error: Option<String>,
    /// Commands rejected since start (malformed, unknown, retained or disabled).
    pub commands_rejected: u64,
    /// Events that could not be published (backlog overflow, full queue, lag).
    pub events_dropped: u64,
}

/// The moment an input is handled: the monotonic clock for the trouble timers, the wall
/// clock for the timestamps published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub utc: DateTime<Utc>,
}

/// One message for the broker (always QoS 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A valid command, to be run on the alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    /// The topic's command name (`siren` for a siren OFF that acknowledges), cut to 32
    /// characters: what the result names.
    pub name: String,
    pub command: Command,
}

impl CommandRun {
    /// The alarm event the command asks for.
    pub fn alarm_event(&self) -> Event {
        match &self.command {
            Command::Acknowledge { who } => Event::Acknowledge {
                source: Source::Mqtt,
                who: who.clone(),
            },
            Command::LampTest { who } => Event::LampTest {
                on: true,
                source: Source::Mqtt,
                who: who.clone(),
            },
            Command::Confirm { who } => Event::Confirm {
                key: None,
                source: Source::Mqtt,
                who: who.clone(),
                detail: Some("confirmed over MQTT".into()),
            },
        }
    }
}

/// What happened, as the publisher is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The broker accepted the connection (CONNACK).
    Connected,
    /// The broker answered the subscription; `accepted` is false when it refused a filter.
    Subscribed { accepted: bool },
    /// The subscription could not be handed to the client (its queue is full or closed).
    SubscribeNotQueued,
    /// The connection failed or broke.
    Lost { error: String },
    /// A message from the broker.
    Message {
        topic: String,
        payload: Vec<u8>,
        retained: bool,
    },
    /// One alarm transition.
    Notice(AlarmNotice),
    /// What the alarm shows changed.
    ViewChanged(AlarmView),
    /// The health supervisor's figures per path changed.
    PathsChanged(Vec<PathHealth>),
    /// The record of `call` was written to the call log.
    RecordFound {
        call: ActiveCall,
        record: Box<CallRecord>,
    },
    /// A command ran on the alarm with these effects.
    CommandRan {
        run: CommandRun,
        effects: Vec<Effect>,
    },
    /// The adapter fell behind the alarm's notices and missed `missed` of them.
    Lagged { missed: u64 },
    /// The client could not queue this message (its queue is full or closed): it is lost.
    NotQueued(Message),
    /// [`Publisher::deadline`] has come.
    Tick,
    /// The appliance stops.
    Stopping,
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hand this message to the client without waiting (report [`Input::NotQueued`] if it
    /// cannot be).
    Publish(Message),
    /// Subscribe to these filters (QoS 1) without waiting (report
    /// [`Input::SubscribeNotQueued`] if it cannot be).
    Subscribe(Vec<String>),
    /// Tell the alarm (a trouble raised or cleared).
    Alarm(Event),
    /// Run this command on the alarm and report [`Input::CommandRan`].
    RunCommand(CommandRun),
    /// Wait (bounded) for the record of this call and report [`Input::RecordFound`].
    LookUpRecord(ActiveCall),
    /// Send DISCONNECT (the last action when stopping).
    Disconnect,
}

/// Who the publisher speaks for and how.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// `host:port`, for the status and the trouble text.
    pub broker: String,
    pub topics: Topics,
    pub device_id: String,
    /// How long the broker may be away before the `mqtt` trouble.
    pub trouble_after: Duration,
    /// Publish Home Assistant discovery.
    pub discovery: bool,
    /// Carry out commands (otherwise reject them, and withdraw the controls from discovery).
    pub commands_enabled: bool,
    /// The console's address, for Home Assistant's device page.
    pub configuration_url: Option<String>,
}

impl PublisherSettings {
    /// The settings of the `[mqtt]` section for `device_id`.
    pub fn from_config(config: &MqttConfig, device_id: &str) -> PublisherSettings {
        PublisherSettings {
            broker: format!("{}:{}", config.host, config.port),
            topics: Topics::new(&config.base_topic, device_id, &config.discovery_prefix),
            device_id: device_id.to_string(),
            trouble_after: config.trouble_after(),
            discovery: config.discovery,
            commands_enabled: config.commands_enabled,
            configuration_url: config.configuration_url.clone(),
        }
    }
}

/// The last call published on `…/last_call`.
#[derive(Debug, Clone)]
struct LastCall {
    key: String,
    payload: Vec<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Publisher {
    settings: PublisherSettings,
    link: Link,
    status: MqttStatus,
    /// The alarm's view as last told.
    view: AlarmView,
    /// Last retained payload handed to the client per state topic (to publish changes only).
    published: HashMap<String, Vec<u8>>,
    /// Events waiting for the broker.
    backlog: VecDeque<Vec<u8>>,
    /// Re-published on every connection.
    last_call: Option<LastCall>,
    /// Each path's figures, as the health supervisor last reported them.
    paths: Vec<PathHealth>,
    lag_trouble_until: Option<Instant>,
    /// What [`Publisher::handle`] returns.
    actions: Vec<Action>,
}

impl Publisher {
    /// A publisher not connected yet, as of `now`, following an alarm that shows `view`.
    pub fn new(settings: PublisherSettings, view: AlarmView, now: Instant) -> Publisher {
        Publisher {
            link: Link::new(&settings.broker, settings.trouble_after, now),
            status: MqttStatus {
                broker: settings.broker.clone(),
                connected: false,
                last_error: None,
                commands_rejected: 0,
                events_dropped: 0,
            },
            settings,
            view,
            published: HashMap::new(),
            backlog: VecDeque::new(),
            last_call: None,
            paths: Vec::new(),
            lag_trouble_until: None,
            actions: Vec::new(),
        }
    }

    /// How the link is doing.
    pub fn status(&self) -> &MqttStatus {
        &self.status
    }

    /// When [`Input::Tick`] is due: the link's trouble deadline or the end of a lag trouble.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.link.deadline(), self.lag_trouble_until) {
            (Some(link), Some(lag)) => Some(link.min(lag)),
            (link, lag) => link.or(lag),
        }
    }

    /// Takes `input` at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        match input {
            Input::Connected => self.on_connected(),
            Input::Subscribed { accepted } => {
                if !accepted {
                    tracing::error!("the MQTT broker refused a subscription (commands or Home Assistant status): check its ACL");
                }
                self.on_ready();
            }
            Input::SubscribeNotQueued => self.on_ready(),
            Input::Lost { error } => self.on_lost(&error, now.instant),
            Input::Message {
                topic,
                payload,
                retained,
            } => self.on_message(&topic, &payload, retained, now.utc),
            Input::Notice(notice) => self.on_notice(&notice),
            Input::ViewChanged(view) => {
                self.view = view;
                self.publish_state(false);
            }
            Input::PathsChanged(paths) => {
                self.paths = paths;
                self.publish_state(false);
            }
            Input::RecordFound { call, record } => self.on_record(&call, &record),
            Input::CommandRan { run, effects } => self.on_command_ran(run, &effects, now.utc),
            Input::Lagged { missed } => self.on_lag(missed, now.instant),
            Input::NotQueued(message) => self.on_not_queued(&message),
            Input::Tick => self.on_tick(now.instant),
            Input::Stopping => self.on_stopping(now.instant),
        }
        std::mem::take(&mut self.actions)
    }

    /// Commands first: `online` (and the connected status) mean commands are heard.
    fn on_connected(&mut self) {
        let topics = &self.settings.topics;
        let filters = vec![topics.command_filter(), topics.home_assistant_status()];
        self.actions.push(Action::Subscribe(filters));
    }

    /// Connected and subscribed: availability, discovery, state, the last call and waiting
    /// events; the trouble, if any, clears.
    fn on_ready(&mut self) {
        if self.link.is_connected() {
            return;
        }
        let change = self.link.connected();
        tracing::info!(broker = self.status.broker, "MQTT connected");
        self.report_link();
        self.publish(
            self.settings.topics.availability(),
            b"online".to_vec(),
            true,
        );
        self.publish_discovery();
        self.publish_state(true);
        if let Some(last_call) = &self.last_call {
            let payload = last_call.payload.clone();
            self.publish(self.settings.topics.last_call(), payload, true);
        }
        let topic = self.settings.topics.event();
        while let Some(event) = self.backlog.pop_front() {
            self.publish(topic.clone(), event, false);
        }
        if let Some(TroubleChange::Clear) = change {
            self.actions.push(Action::Alarm(Event::TroubleCleared {
                component: TROUBLE_COMPONENT.into(),
            }));
        }
    }

    fn on_lost(&mut self, error: &str, now: Instant) {
        if self.link.is_connected() {
            tracing::warn!(%error, "MQTT connection lost; reconnecting");
        } else {
            tracing::debug!(%error, "MQTT broker not reachable");
        }
        self.link.lost(error, now);
        self.report_link();
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], retained: bool, now: DateTime<Utc>) {
        let topics = &self.settings.topics;
        if topic == topics.home_assistant_status() {
            if payload == b"online" && self.link.is_connected() {
                tracing::info!("Home Assistant is online: publishing discovery and state again");
                self.publish_discovery();
                self.publish_state(true);
            }
            return;
        }
        let Some(name) = topics.command_name(topic) else {
            return;
        };
        if name == topics::RESULT {
            return; // our own answers
        }
        let parsed = if retained {
            Err(Rejection::Retained)
        } else if !self.settings.commands_enabled {
            Err(Rejection::Disabled)
        } else {
            commands::parse(name, payload)
        };
        let shown: String = name.chars().take(SHOWN_COMMAND_CHARS).collect();
        match parsed {
            Ok(command) => self.actions.push(Action::RunCommand(CommandRun {
                name: shown,
                command,
            })),
            Err(rejection) => {
                tracing::warn!(command = %shown.escape_debug(), reason = %rejection, "MQTT command rejected");
                self.status.commands_rejected += 1;
                let reason = Some(rejection.to_string());
                self.publish_result(shown, CommandStatus::Rejected, reason, now);
            }
        }
    }

    fn on_command_ran(&mut self, run: CommandRun, effects: &[Effect], now: DateTime<Utc>) {
        let refused = effects.iter().find_map(|effect| match effect {
            Effect::Refused(refusal) => Some(refusal.to_string()),
            _ => None,
        });
        tracing::info!(
            command = run.command.name(),
            refused = refused.as_deref(),
            "MQTT command"
        );
        let status = match refused {
            Some(_) => CommandStatus::Refused,
            None => CommandStatus::Done,
        };
        self.publish_result(run.name, status, refused, now);
    }

    fn publish_result(
        &mut self,
        command: String,
        status: CommandStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) {
        let result = CommandResult {
            command,
            status,
            reason,
            at,
        };
        let topic = self.settings.topics.command_result();
        self.publish(topic, payloads::to_json(&result), false);
    }

    fn on_notice(&mut self, notice: &AlarmNotice) {
        let event = payloads::to_json(&payloads::event(&self.settings.device_id, notice));
        self.publish_event(event);
        if let Some(call) = payloads::last_call_of(notice) {
            self.publish_last_call(call);
        } else if let Some(call) = self.confirmed_last_call(notice) {
            // The last call was a possible emergency and is now confirmed: say so.
            self.publish_last_call(&call);
        }
    }

    /// The last call published, when `notice` confirms it.
    fn confirmed_last_call(&self, notice: &AlarmNotice) -> Option<ActiveCall> {
        if notice.record.action != AuditAction::Confirmed {
            return None;
        }
        let last = self.last_call.as_ref()?;
        notice.calls.iter().find(|c| c.key == last.key).cloned()
    }

    /// Publishes `call` as the last call (retained) and asks for its record.
    fn publish_last_call(&mut self, call: &ActiveCall) {
        let payload = payloads::to_json(&payloads::last_call(call, None));
        self.last_call = Some(LastCall {
            key: call.key.clone(),
            payload: payload.clone(),
        });
        self.publish(self.settings.topics.last_call(), payload, true);
        self.actions.push(Action::LookUpRecord(call.clone()));
    }

    /// The call record was found: the last call again, with latency and coordinates — unless
    /// another call has been raised since.
    fn on_record(&mut self, call: &ActiveCall, record: &CallRecord) {
        let current = self
            .last_call
            .as_ref()
            .is_some_and(|last| last.key == call.key);
        if !current {
            return;
        }
        let payload = payloads::to_json(&payloads::last_call(call, Some(record)));
        self.last_call = Some(LastCall {
            key: call.key.clone(),
            payload: payload.clone(),
        });
        self.publish(self.settings.topics.last_call(), payload, true);
    }

    fn on_lag(&mut self, missed: u64, now: Instant) {
        tracing::error!(
            missed,
            "MQTT fell behind the alarm: events were not published"
        );
        self.status.events_dropped += missed;
        self.publish_state(true);
        self.actions.push(Action::Alarm(Event::TroubleRaised {
            component: LAG_COMPONENT.into(),
            detail: format!("{missed} alarm events were not published to MQTT"),
        }));
        self.lag_trouble_until = Some(now + LAG_TROUBLE_HOLD);
    }

    fn on_not_queued(&mut self, message: &Message) {
        tracing::warn!(
            topic = message.topic,
            "MQTT request queue full or closed: message dropped"
        );
        if message.topic == self.settings.topics.event() {
            self.status.events_dropped += 1;
        } else if self.published.get(&message.topic) == Some(&message.payload) {
            // The broker does not have it: the next change publishes this topic again.
            self.published.remove(&message.topic);
        }
    }

    fn on_tick(&mut self, now: Instant) {
        if let Some(TroubleChange::Raise(detail)) = self.link.tick(now) {
            tracing::error!(%detail, "MQTT trouble");
            self.actions.push(Action::Alarm(Event::TroubleRaised {
                component: TROUBLE_COMPONENT.into(),
                detail,
            }));
        }
        if self.lag_trouble_until.is_some_and(|until| until <= now) {
            self.lag_trouble_until = None;
            self.actions.push(Action::Alarm(Event::TroubleCleared {
                component: LAG_COMPONENT.into(),
            }));
        }
    }

    /// `offline` (retained) and DISCONNECT, so the broker does not publish the will.
    fn on_stopping(&mut self, now: Instant) {
        if !self.link.is_connected() {
            return;
        }
        self.publish(
            self.settings.topics.availability(),
            b"offline".to_vec(),
            true,
        );
        self.actions.push(Action::Disconnect);
        self.link.lost("stopped", now);
        self.report_link();
    }

    /// The retained state topics; unchanged payloads are skipped unless `force`.
    fn publish_state(&mut self, force: bool) {
        if !self.link.is_connected() {
            return;
        }
        let topics = &self.settings.topics;
        let states = [
            (
                topics.alarm(),
                payloads::to_json(&payloads::alarm(&self.view)),
            ),
            (
                topics.call(),
                payloads::to_json(&payloads::active_call(&self.view)),
            ),
            (
                topics.trouble(),
                payloads::to_json(&payloads::trouble(&self.view)),
            ),
            (
                topics.paths(),
                payloads::to_json(&payloads::paths(&self.paths)),
            ),
        ];
        for (topic, payload) in states {
            if !force && self.published.get(&topic) == Some(&payload) {
                continue;
            }
            self.published.insert(topic.clone(), payload.clone());
            self.publish(topic, payload, true);
        }
    }

    fn publish_discovery(&mut self) {
        if !self.settings.discovery {
            return;
        }
        let version = crate::build_info::version_with_revision();
        let device = DeviceInfo {
            device_id: &self.settings.device_id,
            version: &version,
            configuration_url: self.settings.configuration_url.as_deref(),
            commands_enabled: self.settings.commands_enabled,
        };
        for message in discovery::messages(&self.settings.topics, &device) {
            let payload = message
                .config
                .as_ref()
                .map(payloads::to_json)
                .unwrap_or_default();
            self.publish(message.topic, payload, true);
        }
    }

    fn publish_event(&mut self, event: Vec<u8>) {
        if self.link.is_connected() {
            self.publish(self.settings.topics.event(), event, false);
            return;
        }
        self.backlog.push_back(event);
        if self.backlog.len() > MAX_BACKLOG {
            self.backlog.pop_front();
            tracing::warn!("MQTT is away: the oldest waiting event was dropped");
            self.status.events_dropped += 1;
        }
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool) {
        self.actions.push(Action::Publish(Message {
            topic,
            payload,
            retain,
        }));
    }

    fn report_link(&mut self) {
        self.status.connected = self.link.is_connected();
        self.status.last_error = self.link.last_error().map(str::to_string);
    }
}

#[cfg(test)]
mod tests;
