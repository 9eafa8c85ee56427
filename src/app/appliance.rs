//! The one assembly of the appliance, used by `beacon run`, `beacon demo` and the tests.
//!
//! [`Appliance::start`] takes an opened [`Core`] (the store, device id and keys) and starts, in
//! this order: the alarm; the outputs on the chosen [`Board`]; the status feeds; MQTT; health
//! supervision; the display; the notifiers; the console; and last the [`Feed`] — the link to
//! the cloud (`beacon run`) or a direct inbox (`beacon demo`, tests) — so that calls it raises
//! at once find MQTT and the notifiers already following the alarm. A part that cannot start
//! is a trouble, never a failed start ([`super::start::or_trouble`]).
//!
//! [`Appliance::run_until`] runs until the shutdown future resolves (restarting the cloud link
//! when the setup wizard asks), then [`Appliance::stop`] stops in the one order that loses
//! nothing: the feed first (the consumer flushes and commits, recognition drains), the store
//! flushed, the console, notifiers, supervisor, MQTT (it publishes `offline`), the outputs,
//! and last the alarm, which persists its state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::cloud_link::{recogniser, CloudLink, LinkReports};
use super::start::or_trouble;
use super::{AppError, Core};
use crate::alarm::Event;
use crate::alarm_task::{self, AlarmHandle};
use crate::config::Config;
use crate::eventhub::consumer::ConsumerStatus;
use crate::feeds::StatusFeeds;
use crate::graph::reconcile::PollStatus;
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::health::{HealthReport, Limits, Supervisor};
use crate::hw::sim::SimLamps;
use crate::ingest::InboxEntry;
use crate::outputs::mqtt::MqttHandle;
use crate::outputs::notify::Notifier;
use crate::recognise::MessageSource;
use crate::service_manager::watchdog::Watchdog;
use crate::service_manager::SystemdNotifier;
use crate::store::Store;
use crate::web::{ConsoleContext, LinkControl, LinkHandles, WebConfig, WebServer};

/// How long recognition of a direct feed may take to finish what it holds at stop.
const DIRECT_DRAIN: Duration = Duration::from_secs(10);
/// How long the outputs may take to de-energise and blank once the alarm has ended.
const OUTPUTS_SETTLE: Duration = Duration::from_secs(5);

/// What the relays, button and display are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// The GPIO lines and I2C display of `[outputs]` (Linux; elsewhere nothing is driven).
    Configured,
    /// Three simulated relays in memory ([`Appliance::lamps`]) and a display mirrored to the
    /// console only.
    Simulated,
}

/// Where notifications come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The link to Microsoft's cloud (sign-in, subscription, Event Hub), restarted when the
    /// setup wizard saves new settings.
    Cloud,
    /// Inbox entries handed in through [`Appliance::inbox`] (`beacon demo`'s player, tests).
    /// It stands in for the hub, so the hub counts as connected and nothing is to be set up.
    Direct,
}

/// How to assemble the appliance.
#[derive(Debug, Clone)]
pub struct Options {
    pub board: Board,
    pub feed: Feed,
    /// `beacon demo`: the dashboard's "play an emergency call" button sends here.
    pub demo_call: Option<mpsc::Sender<()>>,
}

impl Options {
    /// `beacon run`: the configured board, fed by the cloud.
    pub fn service() -> Options {
        Options {
            board: Board::Configured,
            feed: Feed::Cloud,
            demo_call: None,
        }
    }

    /// The simulated board fed directly (`beacon demo`, tests).
    pub fn simulated() -> Options {
        Options {
            board: Board::Simulated,
            feed: Feed::Direct,
            demo_call: None,
        }
    }
}

/// The running feed.
enum RunningFeed {
    Cloud {
        /// `None` only while it restarts.
        link: Option<CloudLink>,
        reports: LinkReports,
        restart_requests: mpsc::Receiver<()>,
    },
    Direct {
        inbox: mpsc::Sender<InboxEntry>,
        stage: JoinHandle<()>,
    },
}

/// A running appliance. See the module docs.
pub struct Appliance {
    /// The configuration file as loaded (the wizard's settings are laid over it per link).
    config: Arc<Config>,
    core: Core,
    alarm: AlarmHandle,
    alarm_task: JoinHandle<()>,
    lamps: Option<SimLamps>,
    systemd: SystemdNotifier,
    watchdog: Watchdog,
    /// The relay and display loops: they de-energise and blank, and end, once the alarm has.
    followers: Vec<JoinHandle<()>>,
    /// The button loop: it holds an alarm handle, so it is ended before the alarm.
    button: Option<JoinHandle<()>>,
    supervisor: JoinHandle<()>,
    mqtt: Option<MqttHandle>,
    notifier: Option<Notifier>,
    console: Option<WebServer>,
    context: ConsoleContext,
    /// The peer channel's sender (it holds an alarm handle: ended before the alarm).
    peers_task: JoinHandle<()>,
    feed: RunningFeed,
}

impl Appliance {
    /// Starts every part over `core` (see the module docs for the order).
    pub async fn start(
        config: Config,
        core: Core,
        options: Options,
    ) -> Result<Appliance, AppError> {
        let config = Arc::new(config);
        let saved_zone = core
            .store
            .settings
            .get(crate::local_time::SAVED_KEY)
            .ok()
            .flatten();
        let saved_zone = saved_zone.as_ref().and_then(|v| v.as_str());
        if let Some(zone) = crate::local_time::chosen(saved_zone, config.time_zone.as_deref()) {
            crate::local_time::set_current(zone);
        }
        let (alarm, alarm_task) =
            alarm_task::spawn(config.alarm.clone(), core.store.clone(), Utc::now());
        for (component, detail) in &core.start_troubles {
            alarm
                .send(Event::TroubleRaised {
                    component: component.clone(),
                    detail: detail.clone(),
                })
                .await;
        }
        let (mut followers, button, lamps) = start_outputs(&config, options.board, &alarm).await;

        let hub = Arc::new(ConsumerStatus::default());
        // Until the cloud link reports (it starts last), sign-in is "starting", not "signed
        // out": the supervisor's first look comes before the link, and SignedOut there flashed
        // the trouble output of a signed-in box for one interval at every start.
        let (auth, auth_feed) = watch::channel(AuthStatus::Retrying {
            sentence: "starting: the cloud link has not reported yet".into(),
            since: Utc::now(),
        });
        let (subscription, subscription_feed) = watch::channel(SubscriptionStatus::default());
        let (handles, handles_feed) = watch::channel(LinkHandles::default());
        let (poll, poll_feed) = watch::channel(PollStatus::default());
        let (call_events, call_events_feed) =
            watch::channel(crate::graph::call_events::CallEventsStatus::default());
        let cloud = options.feed == Feed::Cloud;
        if !cloud {
            hub.connected
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut status = StatusFeeds {
            auth: cloud.then_some(auth_feed),
            subscription: cloud.then_some(subscription_feed),
            hub: hub.clone(),
            poll: cloud.then_some(poll_feed),
            call_events: cloud.then_some(call_events_feed),
            last_call: crate::outputs::display::last_call::follow(&core.store, &alarm),
            mqtt: None,
            setup_code: crate::feeds::no_setup_code(),
            certificate: crate::feeds::no_setup_code(),
            join_code: crate::feeds::no_join_code(),
        };
        let systemd = SystemdNotifier::from_env();
        let watchdog = Watchdog::spawn_from_env(&systemd, hub.clone(), &alarm);

        let (health_report, health) = watch::channel(HealthReport::default());
        let mqtt = if config.mqtt.enabled {
            let mut mqtt = config.mqtt.clone();
            if mqtt.configuration_url.is_none() {
                mqtt.configuration_url = config.web.as_ref().map(WebConfig::console_url);
            }
            let started = crate::outputs::mqtt::spawn(
                &mqtt,
                &core.device_id,
                core.store.clone(),
                alarm.clone(),
                health.clone(),
            )
            .map_err(|e| format!("MQTT cannot start: {e}"));
            or_trouble(&alarm, crate::outputs::mqtt::TROUBLE_COMPONENT, started).await
        } else {
            None
        };
        status.mqtt = mqtt.as_ref().map(|m| m.status());

        let supervisor = tokio::spawn(
            Supervisor {
                store: core.store.clone(),
                alarm: alarm.clone(),
                status: status.clone(),
                counters: core.counters.clone(),
                limits: Limits {
                    path_window: chrono::Duration::seconds(config.ingest.path_window_secs.into()),
                    ..Limits::default()
                },
                interval: crate::health::supervisor::INTERVAL,
            }
            .run(health_report),
        );

        let (display_png, display_mirror) = watch::channel(Vec::new());
        followers
            .push(start_display(&config, options.board, cloud, &alarm, &status, display_png).await);

        let notifier = match config.checked() {
            Ok(checked) => or_trouble(
                &alarm,
                "notify",
                Notifier::start(
                    &config.notify,
                    checked.templates.clone(),
                    core.store.clone(),
                    &core.device_id,
                    alarm.clone(),
                ),
            )
            .await
            .flatten(),
            Err(error) => or_trouble::<Notifier, _>(&alarm, "notify", Err(error)).await,
        };

        let (control, restart_requests) = LinkControl::new(handles_feed, config.clone());
        // The other boxes of the fleet (none until this box joins one or one joins it).
        let (peers, peers_task) = crate::outputs::peers::Peers::start(
            &core.device_id,
            config
                .web
                .as_ref()
                .and_then(|web| web.certificate_file(&config.data_dir)),
            core.store.clone(),
            alarm.clone(),
            status.subscription.clone(),
        );
        let context = ConsoleContext {
            store: core.store.clone(),
            device_id: core.device_id.clone(),
            alarm: alarm.clone(),
            counters: core.counters.clone(),
            deliveries: notifier.as_ref().map(Notifier::deliveries),
            status,
            display_png: display_mirror,
            health,
            cloud: cloud.then_some(control),
            peers: Some(peers),
        };
        let console = match &config.web {
            Some(web) => {
                let started = crate::web::start(
                    web,
                    &config.data_dir,
                    &context,
                    crate::web::Options {
                        summary: crate::web::summary(&config),
                        demo_call: options.demo_call,
                        sections: crate::web::settings_view::sections(&config),
                        file_time_zone: config.time_zone.clone(),
                        zones: config
                            .emergency
                            .zones
                            .iter()
                            .map(|zone| zone.name.trim().to_string())
                            .collect(),
                    },
                )
                .await;
                or_trouble(&alarm, "console", started).await
            }
            None => {
                tracing::info!("no [web] section: the console is off");
                None
            }
        };

        // The feed last: calls it raises at once (inbox entries left from before a restart)
        // must find MQTT and the notifiers already following the alarm's notices.
        let feed = if cloud {
            let reports = LinkReports {
                auth,
                subscription,
                hub,
                handles,
                poll,
                call_events,
            };
            let link = CloudLink::start(&config, &core, &alarm, &reports).await;
            RunningFeed::Cloud {
                link: Some(link),
                reports,
                restart_requests,
            }
        } else {
            let recogniser = recogniser(&config, &core, alarm.clone(), MessageSource::Unavailable)?;
            let (inbox, entries) = mpsc::channel(config.ingest.queue);
            RunningFeed::Direct {
                inbox,
                stage: tokio::spawn(recogniser.run(entries)),
            }
        };
        let appliance = Appliance {
            config,
            core,
            alarm,
            alarm_task,
            lamps,
            systemd,
            watchdog,
            followers,
            button,
            supervisor,
            mqtt,
            notifier,
            console,
            context,
            peers_task,
            feed,
        };
        appliance.systemd.ready(&appliance.readiness());
        Ok(appliance)
    }

    /// What systemd's status line says once started.
    fn readiness(&self) -> String {
        let id = &self.core.device_id;
        match &self.feed {
            RunningFeed::Cloud { link, .. } if link.as_ref().is_some_and(CloudLink::consuming) => {
                format!("consuming the Event Hub as {id}")
            }
            RunningFeed::Cloud { .. } => {
                format!("{id} is not set up yet: waiting for the console's Setup page")
            }
            RunningFeed::Direct { .. } => format!("{id} fed directly (no cloud link)"),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// A handle on the alarm (drop it before [`Appliance::stop`] returns: the alarm ends when
    /// its last handle goes).
    pub fn alarm(&self) -> &AlarmHandle {
        &self.alarm
    }

    /// The simulated lamps, on [`Board::Simulated`].
    pub fn lamps(&self) -> Option<&SimLamps> {
        self.lamps.as_ref()
    }

    /// The running console, when `[web]` is configured and it started.
    pub fn console(&self) -> Option<&WebServer> {
        self.console.as_ref()
    }

    /// What the console is handed (its status feeds, display mirror and health report).
    pub fn context(&self) -> &ConsoleContext {
        &self.context
    }

    /// Where inbox entries are handed in, on [`Feed::Direct`].
    pub fn inbox(&self) -> Option<mpsc::Sender<InboxEntry>> {
        match &self.feed {
            RunningFeed::Direct { inbox, .. } => Some(inbox.clone()),
            RunningFeed::Cloud { .. } => None,
        }
    }

    /// Runs until `shutdown` resolves, restarting the cloud link when the setup wizard saves
    /// new settings; then stops (see [`Appliance::stop`]).
    pub async fn run_until<S: Future<Output = ()>>(mut self, shutdown: S) -> Result<(), AppError> {
        tokio::pin!(shutdown);
        loop {
            let RunningFeed::Cloud {
                link,
                reports,
                restart_requests,
            } = &mut self.feed
            else {
                (&mut shutdown).await;
                break;
            };
            tokio::select! {
                _ = &mut shutdown => break,
                Some(()) = restart_requests.recv() => {
                    tracing::info!("the cloud settings changed: restarting the link");
                    if let Some(old) = link.take() {
                        old.stop(&self.core.store).await;
                    }
                    // A join from the settings page stored the fleet's secrets and keys.
                    reload_fleet(&mut self.core);
                    *link = Some(
                        CloudLink::start(&self.config, &self.core, &self.alarm, reports).await,
                    );
                }
            }
        }
        self.stop().await
    }

    /// Stops every part in the order that loses nothing (see the module docs).
    pub async fn stop(self) -> Result<(), AppError> {
        let Appliance {
            config: _,
            core,
            alarm,
            alarm_task,
            lamps: _,
            systemd,
            watchdog,
            followers,
            button,
            supervisor,
            mqtt,
            notifier,
            console,
            context,
            peers_task,
            feed,
        } = self;
        tracing::info!("shutting down");
        systemd.stopping();
        watchdog.stop().await;
        match feed {
            RunningFeed::Cloud { link, .. } => {
                if let Some(link) = link {
                    link.stop(&core.store).await;
                }
            }
            RunningFeed::Direct { inbox, mut stage } => {
                drop(inbox);
                if tokio::time::timeout(DIRECT_DRAIN, &mut stage)
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "recognition did not finish in time; what it held stays in the inbox"
                    );
                    stage.abort();
                }
            }
        }
        core.store.flush()?;
        // The console's routes and connections hold alarm handles: gone before the alarm ends.
        if let Some(console) = console {
            console.stop().await;
        }
        if let Some(notifier) = notifier {
            notifier.shutdown().await;
        }
        drop(context);
        peers_task.abort();
        let _ = peers_task.await;
        supervisor.abort();
        let _ = supervisor.await;
        // MQTT publishes `offline` and lets go of its alarm handle.
        if let Some(mqtt) = mqtt {
            mqtt.shutdown().await;
        }
        if let Some(button) = button {
            button.abort();
            let _ = button.await;
        }
        // That was the last alarm handle: the alarm task drains what is queued, persists, and
        // ends; then the relays de-energise and the display blanks as the alarm's view closes.
        drop(alarm);
        let _ = alarm_task.await;
        for task in followers {
            let _ = tokio::time::timeout(OUTPUTS_SETTLE, task).await;
        }
        core.store.flush()?;
        Ok(())
    }
}

/// Reads the fleet's secrets and the rich-notification keys again (the running link loaded
/// them once; a join from the settings page replaced them). On a failure the old ones stay.
fn reload_fleet(core: &mut Core) {
    if let Err(error) = core.client_states.reload(&core.store) {
        tracing::error!(%error, "the fleet's secrets cannot be read again: the old ones stay");
    }
    match super::load_keys(&core.store) {
        Ok(keys) => core.keys = keys,
        Err(error) => {
            tracing::error!(%error, "the rich-notification keys cannot be read again: the old ones stay")
        }
    }
}

/// The relay loop (and the button loop) on `board`; the simulated lamps when simulated.
async fn start_outputs(
    config: &Config,
    board: Board,
    alarm: &AlarmHandle,
) -> (
    Vec<JoinHandle<()>>,
    Option<JoinHandle<()>>,
    Option<SimLamps>,
) {
    match board {
        Board::Simulated => {
            let (relays, lamps) = crate::hw::sim::relays(true);
            let relays = tokio::spawn(crate::outputs::relays::run(alarm.view(), relays));
            (vec![relays], None, Some(lamps))
        }
        #[cfg(target_os = "linux")]
        Board::Configured => {
            let (relays, button) = super::start::board::start_outputs(config, alarm).await;
            (relays.into_iter().collect(), button, None)
        }
        #[cfg(not(target_os = "linux"))]
        Board::Configured => {
            let _ = config;
            tracing::warn!("GPIO outputs are only driven on Linux");
            (Vec::new(), None, None)
        }
    }
}

/// The display loop: the panel of `[outputs.display]` on the configured board (Linux), mirrored
/// to the console either way. A directly fed appliance has nothing to set up, so its display
/// never shows the setup screen.
async fn start_display(
    config: &Config,
    board: Board,
    cloud: bool,
    alarm: &AlarmHandle,
    status: &StatusFeeds,
    mirror: watch::Sender<Vec<u8>>,
) -> JoinHandle<()> {
    let statuses = status.clone();
    let screen = move |tick| {
        let mut screen = statuses.screen(tick);
        if !cloud {
            screen.setup = None;
        }
        screen
    };
    // The display follows the statuses and the alarm's view but holds no alarm handle: it
    // blanks the panel when the alarm task ends at shutdown.
    #[cfg(target_os = "linux")]
    if board == Board::Configured {
        let panel = super::start::board::open_display(config, alarm).await;
        return tokio::spawn(crate::outputs::display::task::run(
            alarm.view(),
            screen,
            panel,
            mirror,
        ));
    }
    let _ = (config, board);
    tokio::spawn(
        crate::outputs::display::task::run::<crate::hw::sim::NoBus, _>(
            alarm.view(),
            screen,
            None,
            mirror,
        ),
    )
}
