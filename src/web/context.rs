//! What the console is handed by the appliance: the store, the alarm, the ingest and delivery
//! counters, the status feeds it shows, the display mirror, the health report and (where a
//! cloud link runs) the link's control for the setup wizard, and the fleet's peer channel. Cheap to clone.

use std::sync::Arc;

use tokio::sync::watch;

use super::link::LinkControl;
use crate::alarm_task::AlarmHandle;
use crate::feeds::StatusFeeds;
use crate::health::{HealthReport, IngestCounters};
use crate::outputs::notify::tally::DeliveryTally;
use crate::store::Store;

/// See the module docs.
#[derive(Clone)]
pub struct ConsoleContext {
    pub store: Store,
    pub device_id: String,
    pub alarm: AlarmHandle,
    pub counters: Arc<IngestCounters>,
    /// Notification delivery attempts per channel and outcome; `None` when no channel is
    /// configured.
    pub deliveries: Option<Arc<DeliveryTally>>,
    pub status: StatusFeeds,
    /// The display as PNG, redrawn on every change (the web page's mirror).
    pub display_png: watch::Receiver<Vec<u8>>,
    /// The health supervisor's last assessment.
    pub health: watch::Receiver<HealthReport>,
    /// The link to the cloud, for the setup wizard; `None` where no link runs (`beacon demo`,
    /// tests of the console).
    pub cloud: Option<LinkControl>,
    /// The other boxes of the fleet: what they said and what was acknowledged on them; `None`
    /// where no peer channel runs (`beacon demo`, tests of the console).
    pub peers: Option<crate::outputs::peers::Peers>,
}
