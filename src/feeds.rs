//! The statuses of the appliance's parts — sign-in, subscription, Event Hub, MQTT, the newest
//! call, the console's setup code — as one bundle of receivers that the display, the console
//! and health supervision follow. The parts that report (the cloud link, MQTT, the console)
//! hold the sending ends; these outlive a restart of the cloud link.

use std::sync::Arc;

use crate::eventhub::consumer::ConsumerStatus;
use crate::graph::reconcile::PollStatus;
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::outputs::display::{
    JoinCodeInfo, LastCall, ScreenContext, SetupInfo, SignInCode, StatusTicks,
};
use crate::outputs::mqtt::MqttStatus;
use tokio::sync::watch;

/// The statuses of the feed's parts, as the display, the web page and health supervision
/// follow them.
#[derive(Clone)]
pub struct StatusFeeds {
    /// Sign-in status; `None` when Graph sign-in is not configured.
    pub auth: Option<watch::Receiver<AuthStatus>>,
    /// Subscription status; `None` until the service account is signed in.
    pub subscription: Option<watch::Receiver<SubscriptionStatus>>,
    /// Event Hub connection.
    pub hub: Arc<ConsumerStatus>,
    /// The reconciliation poll; `None` without the cloud feed.
    pub poll: Option<watch::Receiver<PollStatus>>,
    /// The emergency-event subscriptions; `None` without the cloud feed, empty when off.
    pub call_events: Option<watch::Receiver<crate::graph::call_events::CallEventsStatus>>,
    /// The newest call (the ready screen's "Last call").
    pub last_call: watch::Receiver<Option<LastCall>>,
    /// MQTT broker link; `None` when MQTT is off.
    pub mqtt: Option<watch::Receiver<MqttStatus>>,
    /// The console's one-time setup code while no admin exists (the console sets it; the
    /// display shows it on the setup screen).
    pub setup_code: Arc<watch::Sender<Option<String>>>,
    /// The SHA-256 fingerprint of the console's certificate, while it serves HTTPS (the
    /// console sets it; the setup screen shows its start).
    pub certificate: Arc<watch::Sender<Option<String>>>,
    /// A fleet join code while one is open (the console sets it; the display shows it).
    pub join_code: Arc<watch::Sender<Option<JoinCodeInfo>>>,
}

/// A join-code feed with no code in it.
pub fn no_join_code() -> Arc<watch::Sender<Option<JoinCodeInfo>>> {
    Arc::new(watch::channel(None).0)
}

/// A setup-code feed with no code in it.
pub fn no_setup_code() -> Arc<watch::Sender<Option<String>>> {
    Arc::new(watch::channel(None).0)
}

impl StatusFeeds {
    /// The display's context at redraw number `tick`.
    pub fn screen(&self, tick: u64) -> ScreenContext {
        let auth = self.auth.as_ref().map(|a| a.borrow().clone());
        let setup = match &auth {
            Some(AuthStatus::SigningIn { prompt }) => Some(SetupInfo {
                address: "https://beacon.local".into(),
                sign_in: Some(SignInCode {
                    code: prompt.user_code.clone(),
                    url: prompt.verification_uri.clone(),
                }),
                setup_code: None,
                certificate: self.certificate.borrow().clone(),
            }),
            None | Some(AuthStatus::SignedOut) => Some(SetupInfo {
                address: "https://beacon.local".into(),
                sign_in: None,
                setup_code: self.setup_code.borrow().clone(),
                certificate: self.certificate.borrow().clone(),
            }),
            _ => None,
        };
        let (now, zone) = crate::local_time::current().local(chrono::Utc::now());
        ScreenContext {
            now,
            zone,
            tick,
            status: StatusTicks {
                signed_in: matches!(auth, Some(AuthStatus::SignedIn { .. })),
                subscribed: self.subscription.as_ref().is_some_and(|s| {
                    s.borrow().subscription_id.is_some() && s.borrow().problem.is_none()
                }),
                hub_connected: self
                    .hub
                    .connected
                    .load(std::sync::atomic::Ordering::Relaxed),
                mqtt_connected: self.mqtt.as_ref().is_some_and(|m| m.borrow().connected),
            },
            last_call: self.last_call.borrow().clone(),
            setup,
            join_code: self.join_code.borrow().clone(),
        }
    }
}
