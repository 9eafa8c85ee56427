//! The running adapter: [`spawn`] starts it, [`MqttHandle`] follows its status and stops it.
//! Its task is the thin loop around the [`Publisher`]: it feeds it what happens (the broker
//! connection, the alarm's notices and view, call records, the clock) and carries out its
//! actions on the rumqttc client, the alarm and the call log, reporting back what could not be
//! done or what came of it.
//!
//! The alarm never waits for MQTT: this task only follows the alarm's watch and broadcast, and
//! publishing never blocks (a full request queue drops the message and the publisher counts
//! it). A message handed to the client just before a connection breaks can be lost (clean
//! sessions: a stale acknowledge must never be delivered later).

use std::collections::VecDeque;
use std::time::Duration;

use chrono::Utc;
use rumqttc::{AsyncClient, ClientError, QoS, SubscribeFilter};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::config::MqttConfig;
use super::connection;
use super::publisher::{Action, Input, Message, MqttStatus, Now, Publisher, PublisherSettings};
use super::tls::TlsError;
use crate::alarm::ActiveCall;
use crate::alarm_task::{AlarmHandle, AlarmNotice, AlarmView};
use crate::calls::CallLog;
use crate::health::HealthReport;
use crate::store::Store;

/// How long the last call's record is waited for (it is written right after the alarm).
const RECORD_WAIT: Duration = Duration::from_secs(10);
/// How long shutdown waits for `offline` and DISCONNECT to go out.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// What the connection task and the record look-ups may queue for the adapter.
const INPUT_QUEUE: usize = 256;
const RECORD_QUEUE: usize = 16;

/// The running adapter.
pub struct MqttHandle {
    status: watch::Receiver<MqttStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
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

impl std::fmt::Debug for MqttHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttHandle")
            .field("status", &*self.status.borrow())
            .finish()
    }
}

/// Starts the adapter for `device_id`, publishing the alarm and the per-path figures of
/// `health`. Fails only when TLS cannot be set up (CA file).
pub fn spawn(
    config: &MqttConfig,
    device_id: &str,
    store: Store,
    alarm: AlarmHandle,
    health: watch::Receiver<HealthReport>,
) -> Result<MqttHandle, TlsError> {
    let settings = PublisherSettings::from_config(config, device_id);
    let (client, eventloop) =
        connection::client(config, device_id, &settings.topics.availability())?;
    let (input_tx, inputs) = mpsc::channel(INPUT_QUEUE);
    let (connection_stop, connection_stop_rx) = watch::channel(false);
    let connection = tokio::spawn(connection::drive(eventloop, input_tx, connection_stop_rx));

    let mut view = alarm.view();
    let first_view = view.borrow_and_update().clone();
    let publisher = Publisher::new(settings, first_view, now().instant);
    let (status_tx, status) = watch::channel(publisher.status().clone());
    let (stop, stop_rx) = watch::channel(false);
    let (record_tx, records) = mpsc::channel(RECORD_QUEUE);
    let adapter = Adapter {
        publisher,
        client,
        notices: alarm.notices(),
        view,
        health,
        alarm,
        store,
        status: status_tx,
        record_tx,
        disconnect_sent: false,
    };
    let task = tokio::spawn(adapter.run(inputs, records, stop_rx, connection, connection_stop));
    Ok(MqttHandle { status, stop, task })
}

/// The clocks, read here and nowhere in the publisher.
fn now() -> Now {
    Now {
        instant: std::time::Instant::now(),
        utc: Utc::now(),
    }
}

/// The task that follows the alarm.
struct Adapter {
    publisher: Publisher,
    client: AsyncClient,
    alarm: AlarmHandle,
    notices: broadcast::Receiver<AlarmNotice>,
    view: watch::Receiver<AlarmView>,
    health: watch::Receiver<HealthReport>,
    store: Store,
    status: watch::Sender<MqttStatus>,
    /// Where record look-ups report what they found.
    record_tx: mpsc::Sender<Input>,
    /// DISCONNECT was handed to the client (shutdown waits for it to go out).
    disconnect_sent: bool,
}

impl Adapter {
    async fn run(
        mut self,
        mut connection_inputs: mpsc::Receiver<Input>,
        mut records: mpsc::Receiver<Input>,
        mut stop: watch::Receiver<bool>,
        connection: JoinHandle<()>,
        connection_stop: watch::Sender<bool>,
    ) {
        let mut notices_open = true;
        let mut view_open = true;
        let mut health_open = true;
        let mut paths = Vec::new();
        loop {
            let deadline = self.publisher.deadline();
            let input = tokio::select! {
                _ = stop.changed() => break,
                Some(input) = connection_inputs.recv() => input,
                notice = self.notices.recv(), if notices_open => match notice {
                    Ok(notice) => Input::Notice(notice),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Input::Lagged { missed },
                    Err(broadcast::error::RecvError::Closed) => {
                        notices_open = false;
                        continue;
                    }
                },
                changed = self.view.changed(), if view_open => match changed {
                    Ok(()) => Input::ViewChanged(self.view.borrow_and_update().clone()),
                    Err(_) => {
                        view_open = false;
                        continue;
                    }
                },
                changed = self.health.changed(), if health_open => match changed {
                    Ok(()) => {
                        let now = self.health.borrow_and_update().paths.clone();
                        if now == paths {
                            continue;
                        }
                        paths.clone_from(&now);
                        Input::PathsChanged(now)
                    }
                    Err(_) => {
                        health_open = false;
                        continue;
                    }
                },
                Some(found) = records.recv() => found,
                _ = sleep_until(deadline), if deadline.is_some() => Input::Tick,
            };
            self.handle(input).await;
        }
        self.handle(Input::Stopping).await;
        if self.disconnect_sent {
            // Until DISCONNECT went out (the connection task then ends) or the link broke.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while let Some(input) = connection_inputs.recv().await {
                    if matches!(input, Input::Lost { .. }) {
                        break;
                    }
                }
            })
            .await;
        }
        let _ = connection_stop.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
    }

    /// Hands `input` to the publisher and carries out its actions in order; what an action
    /// reports back (not queued, a command's effects) goes to the publisher before the next
    /// action is carried out, and the actions that follow from it queue behind.
    async fn handle(&mut self, input: Input) {
        let mut actions: VecDeque<Action> = self.publisher.handle(input, now()).into();
        while let Some(action) = actions.pop_front() {
            if let Some(feedback) = self.carry_out(action).await {
                actions.extend(self.publisher.handle(feedback, now()));
            }
        }
        let status = self.publisher.status();
        self.status.send_if_modified(|shown| {
            let changed = shown != status;
            if changed {
                shown.clone_from(status);
            }
            changed
        });
    }

    /// Does `action`; returns what the publisher must be told about it, if anything.
    async fn carry_out(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::Publish(message) => self.publish(message),
            Action::Subscribe(filters) => {
                let filters = filters
                    .into_iter()
                    .map(|filter| SubscribeFilter::new(filter, QoS::AtLeastOnce));
                match self.client.try_subscribe_many(filters) {
                    Ok(()) => None,
                    Err(error) => {
                        tracing::error!(%error, "cannot subscribe to the MQTT command topics");
                        Some(Input::SubscribeNotQueued)
                    }
                }
            }
            Action::Alarm(event) => {
                self.alarm.send(event).await;
                None
            }
            Action::RunCommand(run) => {
                let effects = self.alarm.send(run.alarm_event()).await;
                Some(Input::CommandRan { run, effects })
            }
            Action::LookUpRecord(call) => {
                tokio::spawn(look_up_record(
                    self.store.clone(),
                    call,
                    self.record_tx.clone(),
                ));
                None
            }
            Action::Disconnect => {
                self.disconnect_sent = self.client.try_disconnect().is_ok();
                None
            }
        }
    }

    /// Queues one message (QoS 1) without waiting.
    fn publish(&self, message: Message) -> Option<Input> {
        match self.client.try_publish(
            message.topic.as_str(),
            QoS::AtLeastOnce,
            message.retain,
            message.payload.as_slice(),
        ) {
            Ok(()) => None,
            Err(ClientError::TryRequest(_) | ClientError::Request(_)) => {
                Some(Input::NotQueued(message))
            }
        }
    }
}

/// Waits (bounded) for the call record the recogniser writes right after raising the alarm.
async fn look_up_record(store: Store, call: ActiveCall, found: mpsc::Sender<Input>) {
    match CallLog::of(&store).wait_for(&call.key, RECORD_WAIT).await {
        Ok(Some(record)) => {
            let record = Box::new(record);
            let _ = found.send(Input::RecordFound { call, record }).await;
        }
        Ok(None) => tracing::debug!(key = call.key, "no call record to take the latency from"),
        Err(error) => tracing::warn!(key = call.key, %error, "the call record cannot be read"),
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
