//! The link to Microsoft's cloud: the token keeper (sign-in), the subscription keeper,
//! recognition, the Event Hub consumer and resync after gaps — everything that depends on the
//! cloud settings. The appliance starts it from the settings in force (the file with what the
//! setup wizard saved laid over it) and restarts it when the wizard saves new ones, while the
//! alarm, outputs, display and console stay up. An appliance that is not set up yet runs the link
//! with whatever is there: no consumer without an Event Hub, no sign-in without OAuth settings.
//!
//! The link reports into [`LinkReports`] that outlive it, so the display, the page, health and
//! the watchdog follow one status across restarts; [`LinkHandles`] lets the wizard reach the
//! running token and subscription keepers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{AppError, Core};
use crate::alarm_task::AlarmHandle;
use crate::config::Config;
use crate::eventhub::consumer::{self, ConsumerHandle, ConsumerSettings, ConsumerStatus};
use crate::graph::auth::{OAuthSettings, DEFAULT_SCOPES};
use crate::graph::call_events::CallEventsStatus;
use crate::graph::client::GraphClient;
use crate::graph::notification::LifecycleEvent;
use crate::graph::reconcile::{self, PollHandle, PollStatus};
use crate::graph::retry::RetryPolicy;
use crate::graph::subscription::{SubscriptionKeeper, SubscriptionSettings, SubscriptionStatus};
use crate::graph::tokens::{AuthStatus, TokenKeeper};
use crate::ingest;
use crate::recognise::{MessageSource, Recogniser};
use crate::store::Store;
use crate::web::LinkHandles;

/// How long a stopping link waits for recognition to finish what it holds.
const STAGE_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the link reports; made once by the appliance, outliving every link.
#[derive(Clone)]
pub struct LinkReports {
    pub auth: watch::Sender<AuthStatus>,
    pub subscription: watch::Sender<SubscriptionStatus>,
    pub hub: Arc<ConsumerStatus>,
    pub handles: watch::Sender<LinkHandles>,
    pub poll: watch::Sender<PollStatus>,
    /// The emergency-event subscriptions (empty when call events are off).
    pub call_events: watch::Sender<CallEventsStatus>,
}

/// A running link.
pub struct CloudLink {
    consumer: Option<ConsumerHandle>,
    stage: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl CloudLink {
    /// Starts the link from `file` with the wizard's settings laid over it. What cannot start
    /// is said in the log and in [`LinkHandles::missing`]; the link starts what it can.
    pub async fn start(
        file: &Config,
        core: &Core,
        alarm: &AlarmHandle,
        reports: &LinkReports,
    ) -> CloudLink {
        let config = crate::cloud_settings::overlay(file, &core.store);
        let mut handles = LinkHandles {
            keys: Some(core.keys.clone()),
            ..LinkHandles::default()
        };
        let mut tasks = Vec::new();
        let (source, tokens) = match graph_source(&config, &core.store) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "Graph sign-in settings are not usable");
                handles.missing.push(e.to_string());
                (MessageSource::Unavailable, None)
            }
        };
        if let Some(tokens) = &tokens {
            tasks.push(forward(tokens.status(), reports.auth.clone()));
            tasks.push(tokio::spawn(
                tokens.clone().run(std::future::pending::<()>()),
            ));
        } else {
            reports.auth.send_replace(AuthStatus::SignedOut);
            handles
                .missing
                .push("Microsoft sign-in is not set up (tenant and client id)".into());
            tracing::warn!("Graph sign-in is not configured: basic notifications wait in the inbox until it is");
        }
        let mut recogniser = match recogniser(&config, core, alarm.clone(), source.clone()) {
            Ok(r) => r,
            Err(e) => {
                // The rules were checked when the file was loaded; this cannot happen unless
                // the file changed under us. Recognition is what the appliance is for: say so.
                tracing::error!(error = %e, "recognition cannot start");
                handles.missing.push(e.to_string());
                return CloudLink::idle(reports, handles, tasks);
            }
        };
        let target = config.eventhub_target();
        let account = crate::graph::account::stored(&core.store);
        reports
            .subscription
            .send_replace(SubscriptionStatus::default());
        // The second source: independent of the service account's sign-in.
        let mut call_event_keeper = None;
        match super::call_events::keeper(&config, core, target.as_ref().ok()) {
            Ok(Some(keeper)) => {
                tasks.push(forward(keeper.status(), reports.call_events.clone()));
                tasks.push(tokio::spawn(
                    keeper.clone().run(std::future::pending::<()>()),
                ));
                handles.call_events = Some(keeper.clone());
                call_event_keeper = Some(keeper);
            }
            Ok(None) => {
                reports
                    .call_events
                    .send_replace(CallEventsStatus::default());
            }
            Err(e) => {
                tracing::error!(error = %e, "emergency call events cannot start");
                reports
                    .call_events
                    .send_replace(super::call_events::not_started(&config, &e));
                handles.missing.push(e);
            }
        }
        let mut subscription = None;
        let poll_handle = PollHandle::default();
        reports.poll.send_replace(PollStatus::default());
        match (&source, &account, &target) {
            (MessageSource::Graph(graph), Some(account), Ok(target)) => {
                let keeper = SubscriptionKeeper::new(
                    graph.clone(),
                    core.store.clone(),
                    core.client_states.clone(),
                    SubscriptionSettings {
                        service_account_id: account.id.clone(),
                        namespace: target.namespace().to_string(),
                        hub: target.topic().to_string(),
                        hub_tenant: config
                            .graph
                            .hub_tenant
                            .clone()
                            .or_else(|| config.graph.tenant_id.clone())
                            .unwrap_or_default(),
                        model_b: config.graph.model_b,
                        rich: config.graph.rich_notifications.then(|| core.keys.clone()),
                        lifetime_minutes: config.graph.subscription_minutes,
                    },
                );
                tasks.push(forward(keeper.status(), reports.subscription.clone()));
                if crate::cloud_settings::subscribe_wanted(&core.store) {
                    tasks.push(tokio::spawn(
                        keeper.clone().run(std::future::pending::<()>()),
                    ));
                    subscription = Some((graph.clone(), keeper.status()));
                } else {
                    handles
                        .missing
                        .push("the subscription has not been created yet".into());
                }
                handles.keeper = Some(keeper);
            }
            (MessageSource::Graph(_), None, _) => {
                handles
                    .missing
                    .push("the service account is not signed in".into());
                tracing::warn!("the service account is not signed in: sign in from the console's Setup page or run `beacon login` (no subscription is kept until then)");
            }
            _ => {}
        }
        // Lifecycle events go to the keeper of the subscription they name: the emergency-event
        // keeper takes its own, the chat keeper the rest (one it does not hold makes it look
        // at Graph's list again).
        let (lifecycle_tx, mut lifecycle_rx) = mpsc::channel(16);
        recogniser = recogniser.forward_lifecycle(lifecycle_tx);
        let chat_keeper = handles.keeper.clone();
        let poll = poll_handle.clone();
        tasks.push(tokio::spawn(async move {
            while let Some((id, event)) = lifecycle_rx.recv().await {
                if let Some(keeper) = &call_event_keeper {
                    if keeper.lifecycle(&id, event).await {
                        continue;
                    }
                }
                if event == LifecycleEvent::Missed {
                    // Graph lost chat notifications: read the chats now, not at the next poll.
                    poll.read_now();
                }
                if let Some(keeper) = &chat_keeper {
                    keeper.lifecycle(&id, event).await;
                }
            }
        }));
        if let Some(warning) = config.secret_expiry_warning(Utc::now().date_naive()) {
            tracing::warn!("{warning}");
        }
        let (tx, rx) = mpsc::channel(config.ingest.queue);
        // Push reporting a message the poll found first is noted on its call by recognition.
        let later_reports = recogniser.later_report_hook();
        let stage = tokio::spawn(recogniser.run(rx));
        match ingest::stage::resume(&core.store, &tx).await {
            Ok(0) => {}
            Ok(resumed) => tracing::info!(
                resumed,
                "handed on notifications pending from before the restart"
            ),
            Err(e) => tracing::error!(error = %e, "could not read the inbox"),
        }
        let consumer = match target {
            Ok(target) => {
                let settings = ConsumerSettings {
                    group_id: config.consumer_group(&core.device_id),
                    client_id: core.device_id.clone(),
                    // The shared trusted CAs (crate::trust) as librdkafka reads them.
                    ca_file: crate::trust::librdkafka_ca_file(
                        &config.data_dir.join("trust"),
                        config.eventhub.ca_file.as_deref(),
                    )
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "the Event Hub's CA certificates");
                        config.eventhub.ca_file.clone()
                    }),
                    instance_id: config
                        .eventhub
                        .static_membership
                        .then(|| core.device_id.clone()),
                    max_batch: config.ingest.max_batch,
                    commit: true,
                    target,
                };
                tracing::info!(
                    device_id = core.device_id,
                    bootstrap = settings.target.bootstrap,
                    topic = settings.target.topic(),
                    group = settings.group_id,
                    "consuming the Event Hub"
                );
                match consumer::spawn_reporting(
                    settings,
                    core.ingest(tx.clone()).on_duplicate(later_reports),
                    reports.hub.clone(),
                ) {
                    Ok(consumer) => Some(consumer),
                    Err(e) => {
                        tracing::error!(error = %e, "the Event Hub consumer could not start");
                        handles.missing.push(format!("Event Hub: {e}"));
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(reason = %e, "not consuming: the Event Hub is not set up");
                handles.missing.push(format!("Event Hub not set up: {e}"));
                set_hub_problem(
                    &reports.hub,
                    "not set up yet: open the console's Setup page",
                );
                None
            }
        };
        if let Some((graph, status)) = subscription {
            // Read the chats at start (the appliance was down until now), every poll interval
            // (push drops notifications silently) and after every gap — also while the hub
            // consumer could not start: the poll is then the only ear the box has.
            tasks.push(tokio::spawn(reconcile::run(
                graph,
                core.store.clone(),
                tx.downgrade(),
                reconcile::Gaps {
                    subscription: status,
                    hub: reports.hub.clone(),
                },
                config.graph.reconcile_every(),
                poll_handle,
                reports.poll.clone(),
            )));
        }
        drop(tx);
        handles.tokens = tokens;
        handles.graph = match &source {
            MessageSource::Graph(graph) => Some(graph.clone()),
            _ => None,
        };
        handles.consuming = consumer.is_some();
        reports.handles.send_replace(handles);
        CloudLink {
            consumer,
            stage,
            tasks,
        }
    }

    fn idle(reports: &LinkReports, handles: LinkHandles, tasks: Vec<JoinHandle<()>>) -> CloudLink {
        reports.handles.send_replace(handles);
        CloudLink {
            consumer: None,
            stage: tokio::spawn(async {}),
            tasks,
        }
    }

    /// Whether a consumer runs.
    pub fn consuming(&self) -> bool {
        self.consumer.is_some()
    }

    /// Stops in order: the consumer (it flushes and commits), then recognition drains what was
    /// handed on, then the keepers and forwarders end. The resync watermark is left where
    /// reading Graph put it: a clean stop is no proof that push delivered everything before
    /// it, so the next start looks back to there.
    pub async fn stop(mut self, store: &Store) {
        if let Some(consumer) = self.consumer.take() {
            if tokio::task::spawn_blocking(move || consumer.shutdown())
                .await
                .is_err()
            {
                tracing::error!("the consumer thread could not be joined");
            }
        }
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, "store flush at link stop");
        }
        for task in &self.tasks {
            // The resync trigger holds a weak sender only, so the stage can drain.
            task.abort();
        }
        // Recognition finishes what it holds; one stuck behind a retrying Graph fetch is cut
        // off after a while — its notification stays in the durable inbox and is taken up by
        // the next link.
        if tokio::time::timeout(STAGE_DRAIN, &mut self.stage)
            .await
            .is_err()
        {
            tracing::warn!("recognition did not finish in time; what it held stays in the inbox");
            self.stage.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        // The handles stay as they are until the next link reports (the wizard waits for that).
    }
}

fn set_hub_problem(status: &ConsumerStatus, problem: &str) {
    status.connected.store(false, Ordering::Relaxed);
    if let Ok(mut last) = status.last_error.lock() {
        *last = Some(problem.to_string());
    }
}

/// Copies every value of `from` into `to` until `from`'s sender is gone or the task is aborted.
fn forward<T: Clone + Send + Sync + 'static>(
    mut from: watch::Receiver<T>,
    to: watch::Sender<T>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            to.send_replace(from.borrow_and_update().clone());
            if from.changed().await.is_err() {
                return;
            }
        }
    })
}

/// The Graph message source and token keeper, when sign-in is configured.
pub(crate) fn graph_source(
    config: &Config,
    store: &Store,
) -> Result<(MessageSource, Option<Arc<TokenKeeper>>), AppError> {
    let (Some(tenant), Some(client_id)) = (&config.graph.tenant_id, &config.graph.client_id) else {
        return Ok((MessageSource::Unavailable, None));
    };
    let settings = OAuthSettings {
        login_url: config.graph.login_url.clone(),
        tenant: tenant.clone(),
        client_id: client_id.clone(),
        client_secret: config.graph.client_secret.clone(),
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    let tokens =
        TokenKeeper::new(settings, store.clone()).map_err(|e| AppError::Config(e.to_string()))?;
    let graph = GraphClient::new(
        &config.graph.graph_url,
        tokens.clone(),
        RetryPolicy::default(),
    )
    .map_err(|e| AppError::Config(e.to_string()))?;
    Ok((MessageSource::Graph(graph), Some(tokens)))
}

/// Recognition with the configured rules, taking calls to `alarm`.
pub(crate) fn recogniser(
    config: &Config,
    core: &Core,
    alarm: AlarmHandle,
    source: MessageSource,
) -> Result<Recogniser, AppError> {
    let checked = config
        .checked()
        .map_err(|e| AppError::Config(e.to_string()))?;
    Ok(
        Recogniser::new(core.store.clone(), checked.rules.clone(), alarm, source).correlate_within(
            chrono::Duration::seconds(config.ingest.path_window_secs.into()),
        ),
    )
}
