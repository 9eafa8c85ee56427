//! The MQTT adapter: one rumqttc connection, driven by its own task, and one task that follows
//! the alarm and speaks for it. It publishes the retained state topics whenever the alarm's
//! view changes, one event per alarm notice, the last call (then again with its latency once
//! the call record is written), answers commands, and re-publishes availability, discovery and
//! state on every (re)connection and whenever Home Assistant announces itself `online`.
//!
//! The alarm never waits for MQTT: this task only follows the alarm's watch and broadcast, and
//! publishing never blocks (a full request queue drops the message and counts it). While the
//! broker is away events wait in a bounded backlog; the retained state is simply published
//! afresh on reconnection. A message handed to the client just before a connection breaks can
//! be lost (clean sessions: a stale acknowledge must never be delivered later).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::Utc;
use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event as MqttEvent, EventLoop, LastWill,
    MqttOptions, Outgoing, Packet, QoS, SubscribeFilter, SubscribeReasonCode, TlsConfiguration,
    Transport,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::commands::{self, Command, Rejection};
use super::config::MqttConfig;
use super::discovery::{self, DeviceInfo};
use super::link::{Link, TroubleChange};
use super::payloads::{self, CommandResult, CommandStatus};
use super::publisher::{
    MqttStatus, LAG_COMPONENT, LAG_TROUBLE_HOLD, MAX_BACKLOG, TROUBLE_COMPONENT,
};
use super::tls::{self, TlsError};
use super::topics::{self, Topics};
use crate::alarm::{ActiveCall, Effect, Event, Source};
use crate::alarm_service::{AlarmHandle, AlarmNotice, AlarmView};
use crate::calls::{CallLog, CallRecord};
use crate::store::Store;

/// Requests the client queues for the connection task.
const REQUEST_QUEUE: usize = 512;
/// Reconnection backoff.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the last call's record is looked for (it is written right after the alarm).
const RECORD_WAIT: Duration = Duration::from_secs(10);
/// Largest message accepted from the broker, and sent.
const MAX_INCOMING: usize = 64 * 1024;
const MAX_OUTGOING: usize = 256 * 1024;
/// How long shutdown waits for `offline` to be sent.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The running adapter.
pub struct MqttHandle {
    status: watch::Receiver<MqttStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttHandle {
    /// Follows the link status.
    pub fn status(&self) -> watch::Receiver<MqttStatus> {
        self.status.clone()
    }

    /// Publishes `offline`, disconnects cleanly (so the broker does not send the will) and
    /// ends the tasks, releasing their alarm handle.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Starts the adapter for `device_id`. Fails only when TLS cannot be set up (CA file).
pub fn spawn(
    config: &MqttConfig,
    device_id: &str,
    store: Store,
    alarm: AlarmHandle,
) -> Result<MqttHandle, TlsError> {
    let broker = format!("{}:{}", config.host, config.port);
    let topics = Topics::new(&config.base_topic, device_id, &config.discovery_prefix);
    let mut options = MqttOptions::new(
        config.client_id_for(device_id),
        config.host.clone(),
        config.port,
    );
    options
        .set_keep_alive(config.keepalive())
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_last_will(LastWill::new(
            topics.availability(),
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
    let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (link_tx, link_rx) = mpsc::channel(256);
    let (drive_stop, drive_stop_rx) = watch::channel(false);
    let drive = tokio::spawn(drive(eventloop, link_tx, drive_stop_rx));
    let (status_tx, status) = watch::channel(MqttStatus {
        broker: broker.clone(),
        connected: false,
        last_error: None,
        commands_rejected: 0,
        events_dropped: 0,
    });
    let (stop, stop_rx) = watch::channel(false);
    let (latency_tx, latency_rx) = mpsc::channel(16);
    let adapter = Adapter {
        notices: alarm.notices(),
        view: alarm.view(),
        client,
        link: Link::new(&broker, config.trouble_after(), std::time::Instant::now()),
        topics,
        device_id: device_id.to_string(),
        discovery: config.discovery,
        commands_enabled: config.commands_enabled,
        alarm,
        store,
        status: status_tx,
        published: HashMap::new(),
        backlog: VecDeque::new(),
        last_call: None,
        lag_trouble_until: None,
        latency_tx,
    };
    let task = tokio::spawn(adapter.run(link_rx, latency_rx, stop_rx, drive, drive_stop));
    Ok(MqttHandle { status, stop, task })
}

/// What the connection task reports.
enum LinkEvent {
    Connected,
    /// The broker answered the subscription; false when it refused a filter.
    Subscribed(bool),
    Message {
        topic: String,
        payload: Vec<u8>,
        retained: bool,
    },
    Lost(String),
    /// Our DISCONNECT went out (shutdown).
    Disconnected,
}

/// Polls the event loop (which reconnects on the next poll after an error), with backoff.
async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::Sender<LinkEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            _ = stop.changed() => return,
        };
        let event = match polled {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                LinkEvent::Connected
            }
            Ok(MqttEvent::Incoming(Packet::SubAck(ack))) => LinkEvent::Subscribed(
                ack.return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_))),
            ),
            Ok(MqttEvent::Incoming(Packet::Publish(publish))) => LinkEvent::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
                retained: publish.retain,
            },
            Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => {
                let _ = events.send(LinkEvent::Disconnected).await;
                return;
            }
            Ok(_) => continue,
            Err(error) => {
                if events
                    .send(LinkEvent::Lost(describe(&error)))
                    .await
                    .is_err()
                {
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
        if events.send(event).await.is_err() {
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

/// The task that follows the alarm.
struct Adapter {
    client: AsyncClient,
    topics: Topics,
    device_id: String,
    discovery: bool,
    commands_enabled: bool,
    alarm: AlarmHandle,
    notices: broadcast::Receiver<AlarmNotice>,
    view: watch::Receiver<AlarmView>,
    store: Store,
    link: Link,
    status: watch::Sender<MqttStatus>,
    /// Last retained payload published per state topic (to publish changes only).
    published: HashMap<String, Vec<u8>>,
    /// Events waiting for the broker.
    backlog: VecDeque<Vec<u8>>,
    /// The last call's key and payload, re-published on every connection.
    last_call: Option<(String, Vec<u8>)>,
    lag_trouble_until: Option<Instant>,
    latency_tx: mpsc::Sender<(ActiveCall, CallRecord)>,
}

impl Adapter {
    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut records: mpsc::Receiver<(ActiveCall, CallRecord)>,
        mut stop: watch::Receiver<bool>,
        drive: tokio::task::JoinHandle<()>,
        drive_stop: watch::Sender<bool>,
    ) {
        let mut notices_open = true;
        let mut view_open = true;
        loop {
            let deadline = self.deadline();
            tokio::select! {
                _ = stop.changed() => break,
                Some(event) = link.recv() => self.on_link(event).await,
                notice = self.notices.recv(), if notices_open => match notice {
                    Ok(notice) => self.on_notice(&notice),
                    Err(broadcast::error::RecvError::Lagged(missed)) => self.on_lag(missed).await,
                    Err(broadcast::error::RecvError::Closed) => notices_open = false,
                },
                changed = self.view.changed(), if view_open => match changed {
                    Ok(()) => self.publish_state(false),
                    Err(_) => view_open = false,
                },
                Some((call, record)) = records.recv() => self.on_record(&call, &record),
                _ = sleep_until(deadline), if deadline.is_some() => self.on_tick().await,
            }
        }
        self.shutdown(&mut link).await;
        let _ = drive_stop.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, drive).await;
    }

    /// The next timer: the link's trouble deadline or the end of a lag trouble.
    fn deadline(&self) -> Option<Instant> {
        let link = self.link.deadline().map(Instant::from_std);
        match (link, self.lag_trouble_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected => {
                // Commands first: `online` (and the connected status) mean commands are heard.
                let filters = vec![
                    SubscribeFilter::new(self.topics.command_filter(), QoS::AtLeastOnce),
                    SubscribeFilter::new(self.topics.home_assistant_status(), QoS::AtLeastOnce),
                ];
                if let Err(e) = self.client.try_subscribe_many(filters) {
                    tracing::error!(error = %e, "cannot subscribe to the MQTT command topics");
                    self.on_ready().await;
                }
            }
            LinkEvent::Subscribed(accepted) => {
                if !accepted {
                    tracing::error!("the MQTT broker refused a subscription (commands or Home Assistant status): check its ACL");
                }
                if !self.link.is_connected() {
                    self.on_ready().await;
                }
            }
            LinkEvent::Lost(error) => {
                let was_connected = self.link.is_connected();
                self.link.lost(&error, std::time::Instant::now());
                if was_connected {
                    tracing::warn!(%error, "MQTT connection lost; reconnecting");
                } else {
                    tracing::debug!(%error, "MQTT broker not reachable");
                }
                self.report();
            }
            LinkEvent::Message {
                topic,
                payload,
                retained,
            } => self.on_message(&topic, &payload, retained).await,
            LinkEvent::Disconnected => {}
        }
    }

    /// Connected and subscribed: availability, discovery, state, the last call and waiting
    /// events; the trouble, if any, clears.
    async fn on_ready(&mut self) {
        let change = self.link.connected();
        tracing::info!(broker = self.status.borrow().broker, "MQTT connected");
        self.report();
        self.publish_ready();
        if let Some(TroubleChange::Clear) = change {
            self.alarm
                .send(Event::TroubleCleared {
                    component: TROUBLE_COMPONENT.into(),
                })
                .await;
        }
    }

    fn publish_ready(&mut self) {
        self.publish(&self.topics.availability(), b"online".to_vec(), true);
        self.publish_discovery();
        self.publish_state(true);
        if let Some((_, payload)) = self.last_call.clone() {
            self.publish(&self.topics.last_call(), payload, true);
        }
        let topic = self.topics.event();
        while let Some(event) = self.backlog.pop_front() {
            if !self.publish(&topic, event, false) {
                self.drop_events(1);
            }
        }
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8], retained: bool) {
        if topic == self.topics.home_assistant_status() {
            if payload == b"online" && self.link.is_connected() {
                tracing::info!("Home Assistant is online: publishing discovery and state again");
                self.publish_discovery();
                self.publish_state(true);
            }
            return;
        }
        let Some(name) = self.topics.command_name(topic).map(str::to_string) else {
            return;
        };
        if name == topics::RESULT {
            return; // our own answers
        }
        let parsed = if retained {
            Err(Rejection::Retained)
        } else if !self.commands_enabled {
            Err(Rejection::Disabled)
        } else {
            commands::parse(&name, payload)
        };
        let shown: String = name.chars().take(32).collect();
        let (status, reason) = match parsed {
            Err(rejection) => {
                tracing::warn!(command = %shown.escape_debug(), reason = %rejection, "MQTT command rejected");
                self.status.send_modify(|s| s.commands_rejected += 1);
                (CommandStatus::Rejected, Some(rejection.to_string()))
            }
            Ok(command) => {
                let effects = self.alarm.send(event_for(&command)).await;
                let refused = effects.iter().find_map(|effect| match effect {
                    Effect::Refused(refusal) => Some(refusal.to_string()),
                    _ => None,
                });
                tracing::info!(
                    command = command.name(),
                    refused = refused.as_deref(),
                    "MQTT command"
                );
                match refused {
                    Some(reason) => (CommandStatus::Refused, Some(reason)),
                    None => (CommandStatus::Done, None),
                }
            }
        };
        let result = CommandResult {
            command: shown,
            status,
            reason,
            at: Utc::now(),
        };
        self.publish(
            &self.topics.command_result(),
            payloads::to_json(&result),
            false,
        );
    }

    fn on_notice(&mut self, notice: &AlarmNotice) {
        let event = payloads::to_json(&payloads::event(&self.device_id, notice));
        self.publish_event(event);
        if let Some(call) = payloads::last_call_of(notice) {
            let payload = payloads::to_json(&payloads::last_call(call, None));
            self.last_call = Some((call.key.clone(), payload.clone()));
            self.publish(&self.topics.last_call(), payload, true);
            tokio::spawn(find_record(
                self.store.clone(),
                call.clone(),
                self.latency_tx.clone(),
            ));
        }
    }

    /// The call record arrived: the last call again, with latency and coordinates.
    fn on_record(&mut self, call: &ActiveCall, record: &CallRecord) {
        let current = self
            .last_call
            .as_ref()
            .is_some_and(|(key, _)| key == &call.key);
        if !current {
            return;
        }
        let payload = payloads::to_json(&payloads::last_call(call, Some(record)));
        self.last_call = Some((call.key.clone(), payload.clone()));
        self.publish(&self.topics.last_call(), payload, true);
    }

    async fn on_lag(&mut self, missed: u64) {
        tracing::error!(
            missed,
            "MQTT fell behind the alarm: events were not published"
        );
        self.drop_events(missed);
        self.publish_state(true);
        self.alarm
            .send(Event::TroubleRaised {
                component: LAG_COMPONENT.into(),
                detail: format!("{missed} alarm events were not published to MQTT"),
            })
            .await;
        self.lag_trouble_until = Some(Instant::now() + LAG_TROUBLE_HOLD);
    }

    async fn on_tick(&mut self) {
        if let Some(TroubleChange::Raise(detail)) = self.link.tick(std::time::Instant::now()) {
            tracing::error!(%detail, "MQTT trouble");
            self.alarm
                .send(Event::TroubleRaised {
                    component: TROUBLE_COMPONENT.into(),
                    detail,
                })
                .await;
        }
        if self
            .lag_trouble_until
            .is_some_and(|at| at <= Instant::now())
        {
            self.lag_trouble_until = None;
            self.alarm
                .send(Event::TroubleCleared {
                    component: LAG_COMPONENT.into(),
                })
                .await;
        }
    }

    /// The retained state topics; unchanged payloads are skipped unless `force`.
    fn publish_state(&mut self, force: bool) {
        if !self.link.is_connected() {
            return;
        }
        let view = self.view.borrow_and_update().clone();
        let states = [
            (
                self.topics.alarm(),
                payloads::to_json(&payloads::alarm(&view)),
            ),
            (
                self.topics.call(),
                payloads::to_json(&payloads::active_call(&view)),
            ),
            (
                self.topics.trouble(),
                payloads::to_json(&payloads::trouble(&view)),
            ),
        ];
        for (topic, payload) in states {
            if !force && self.published.get(&topic) == Some(&payload) {
                continue;
            }
            if self.publish(&topic, payload.clone(), true) {
                self.published.insert(topic, payload);
            }
        }
    }

    fn publish_discovery(&mut self) {
        if !self.discovery {
            return;
        }
        let device = DeviceInfo {
            device_id: &self.device_id,
            version: env!("CARGO_PKG_VERSION"),
            commands_enabled: self.commands_enabled,
        };
        for message in discovery::messages(&self.topics, &device) {
            let payload = message
                .config
                .as_ref()
                .map(payloads::to_json)
                .unwrap_or_default();
            self.publish(&message.topic, payload, true);
        }
    }

    fn publish_event(&mut self, event: Vec<u8>) {
        if self.link.is_connected() {
            if !self.publish(&self.topics.event(), event, false) {
                self.drop_events(1);
            }
            return;
        }
        self.backlog.push_back(event);
        if self.backlog.len() > MAX_BACKLOG {
            self.backlog.pop_front();
            tracing::warn!("MQTT is away: the oldest waiting event was dropped");
            self.drop_events(1);
        }
    }

    /// Queues one message (QoS 1) without waiting; false when the queue is full or closed.
    fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => true,
            Err(ClientError::TryRequest(_) | ClientError::Request(_)) => {
                tracing::warn!(topic, "MQTT request queue full or closed: message dropped");
                false
            }
        }
    }

    fn drop_events(&self, count: u64) {
        self.status.send_modify(|s| s.events_dropped += count);
    }

    fn report(&self) {
        let connected = self.link.is_connected();
        let last_error = self.link.last_error().map(str::to_string);
        self.status.send_if_modified(|s| {
            let changed = s.connected != connected || s.last_error != last_error;
            s.connected = connected;
            s.last_error = last_error;
            changed
        });
    }

    /// `offline` (retained) and DISCONNECT, so the broker does not publish the will; waits
    /// until the DISCONNECT went out (bounded).
    async fn shutdown(&mut self, link: &mut mpsc::Receiver<LinkEvent>) {
        if !self.link.is_connected() {
            return;
        }
        self.publish(&self.topics.availability(), b"offline".to_vec(), true);
        if self.client.try_disconnect().is_err() {
            return;
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(event) = link.recv().await {
                if matches!(event, LinkEvent::Disconnected | LinkEvent::Lost(_)) {
                    break;
                }
            }
        })
        .await;
        self.link.lost("stopped", std::time::Instant::now());
        self.report();
    }
}

/// The alarm event a command asks for.
fn event_for(command: &Command) -> Event {
    match command {
        Command::Acknowledge { who } => Event::Acknowledge {
            source: Source::Mqtt,
            who: who.clone(),
        },
        Command::LampTest { who } => Event::LampTest {
            on: true,
            source: Source::Mqtt,
            who: who.clone(),
        },
    }
}

/// Waits (bounded) for the call record the recogniser writes right after raising the alarm.
async fn find_record(
    store: Store,
    call: ActiveCall,
    found: mpsc::Sender<(ActiveCall, CallRecord)>,
) {
    match CallLog::of(&store).wait_for(&call.key, RECORD_WAIT).await {
        Ok(Some(record)) => {
            let _ = found.send((call, record)).await;
        }
        Ok(None) => tracing::debug!(key = call.key, "no call record to take the latency from"),
        Err(error) => tracing::warn!(key = call.key, %error, "the call record cannot be read"),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl std::fmt::Debug for MqttHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttHandle")
            .field("status", &*self.status.borrow())
            .finish()
    }
}
