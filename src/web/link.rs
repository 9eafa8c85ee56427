//! The console's hold on the cloud link: what the running link offers the setup wizard
//! ([`LinkHandles`]: the token and subscription keepers (chat and emergency events), the Graph client, what is missing) and
//! a way to ask the appliance for a restart of the link with the settings the wizard just saved
//! ([`LinkControl`]). The appliance makes both when it starts and reports into them.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::graph::call_events::CallEventKeeper;
use crate::graph::client::GraphClient;
use crate::graph::crypto::KeyRing;
use crate::graph::subscription::SubscriptionKeeper;
use crate::graph::tokens::TokenKeeper;
use crate::store::Store;

/// What the running link offers the setup wizard.
#[derive(Clone, Default)]
pub struct LinkHandles {
    pub tokens: Option<Arc<TokenKeeper>>,
    pub graph: Option<GraphClient>,
    pub keeper: Option<Arc<SubscriptionKeeper>>,
    /// The rich-notification keys the link's keepers and ingest use (a rotation makes a new
    /// one current for all of them).
    pub keys: Option<KeyRing>,
    /// The emergency-event subscriptions' keeper, when call events are on.
    pub call_events: Option<Arc<CallEventKeeper>>,
    /// Whether the consumer runs.
    pub consuming: bool,
    /// What the link lacks or what failed, in words.
    pub missing: Vec<String>,
}

/// The console's hold on the link: what runs, and a way to ask for a restart with the
/// settings the wizard just saved.
#[derive(Clone)]
pub struct LinkControl {
    pub handles: watch::Receiver<LinkHandles>,
    /// The configuration file as loaded (the wizard's settings are laid over it).
    pub file: Arc<Config>,
    restart: mpsc::Sender<()>,
}

impl LinkControl {
    /// A control and the receiving end the appliance listens on.
    pub fn new(
        handles: watch::Receiver<LinkHandles>,
        file: Arc<Config>,
    ) -> (LinkControl, mpsc::Receiver<()>) {
        let (restart, requests) = mpsc::channel(4);
        (
            LinkControl {
                handles,
                file,
                restart,
            },
            requests,
        )
    }

    /// The settings in force: the file with the wizard's settings laid over it.
    pub fn settings(&self, store: &Store) -> Config {
        crate::cloud_settings::overlay(&self.file, store)
    }

    /// Asks the appliance to restart the link, and waits until the new one reports.
    pub async fn restart(&self) {
        let mut handles = self.handles.clone();
        handles.mark_unchanged();
        if self.restart.send(()).await.is_ok() {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(30), handles.changed()).await;
        }
    }
}
