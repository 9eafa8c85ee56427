//! What the parts beside the call path (display, MQTT, notifiers, the web console, health
//! supervision) are handed by `app::run`: [`Services`] and the status feeds they show.

use std::sync::Arc;

use crate::alarm_service::AlarmHandle;
use crate::health::{HealthReport, IngestCounters};
use crate::store::Store;

/// What the parts beside the call path (display, MQTT, notifiers, the web console, health
/// supervision) are handed: the store, the alarm, and the statuses they show. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub device_id: String,
    pub alarm: AlarmHandle,
    pub counters: Arc<IngestCounters>,
    pub status: StatusFeeds,
    /// The display as PNG, redrawn on every change (the web page's mirror).
    pub display_png: tokio::sync::watch::Receiver<Vec<u8>>,
    /// The health supervisor's last assessment.
    pub health: tokio::sync::watch::Receiver<HealthReport>,
    /// The link to the cloud, for the setup wizard; `None` where no link runs (`beacon demo`,
    /// tests of the side parts).
    pub cloud: Option<crate::cloud_link::Control>,
}

/// The statuses of the feed's parts, as the display, the web page and health supervision
/// follow them.
#[derive(Clone)]
pub struct StatusFeeds {
    /// Sign-in status; `None` when Graph sign-in is not configured.
    pub auth: Option<tokio::sync::watch::Receiver<crate::graph::tokens::AuthStatus>>,
    /// Subscription status; `None` until the service account is signed in.
    pub subscription:
        Option<tokio::sync::watch::Receiver<crate::graph::subscription::SubscriptionStatus>>,
    /// Event Hub connection.
    pub hub: Arc<crate::eventhub::consumer::ConsumerStatus>,
    /// The newest call (the ready screen's "Last call").
    pub last_call: tokio::sync::watch::Receiver<Option<crate::outputs::display::LastCall>>,
    /// MQTT broker link; `None` when MQTT is off.
    pub mqtt: Option<tokio::sync::watch::Receiver<crate::outputs::mqtt::MqttStatus>>,
    /// The console's one-time setup code while no admin exists (the console sets it; the
    /// display shows it on the setup screen).
    pub setup_code: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

/// A setup-code feed with no code in it.
pub fn no_setup_code() -> Arc<tokio::sync::watch::Sender<Option<String>>> {
    Arc::new(tokio::sync::watch::channel(None).0)
}

impl StatusFeeds {
    /// The display's context at redraw number `tick`.
    pub fn screen(&self, tick: u64) -> crate::outputs::display::ScreenContext {
        use crate::graph::tokens::AuthStatus;
        use crate::outputs::display::{ScreenContext, SetupInfo, SignInCode, StatusTicks};
        let auth = self.auth.as_ref().map(|a| a.borrow().clone());
        let setup = match &auth {
            Some(AuthStatus::SigningIn { prompt }) => Some(SetupInfo {
                address: "https://beacon.local".into(),
                sign_in: Some(SignInCode {
                    code: prompt.user_code.clone(),
                    url: prompt.verification_uri.clone(),
                }),
                setup_code: None,
            }),
            None | Some(AuthStatus::SignedOut) => Some(SetupInfo {
                address: "https://beacon.local".into(),
                sign_in: None,
                setup_code: self.setup_code.borrow().clone(),
            }),
            _ => None,
        };
        ScreenContext {
            now: chrono::Local::now().fixed_offset(),
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
        }
    }
}
