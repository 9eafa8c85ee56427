//! The setup wizard's steps, in the seed's order, and what each has to show: Microsoft
//! sign-in settings, Event Hub settings (saved only after a live connection test), the service
//! account's device-code sign-in, the subscription, a test alarm. A step opens only when the
//! ones before it are done ([`Progress::first_open`]); what a step did last (test result,
//! sign-in outcome, subscription result) is kept in [`WizardState`] for the page to show.
//!
//! The work itself is done by the parts that do it in normal operation: `cloud_settings`
//! (checks, store), `eventhub::probe`, the running link's token and subscription keepers.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::link::{LinkControl, LinkHandles};
use crate::graph::account::Account;
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::store::Store;

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    OAuth = 1,
    EventHub = 2,
    SignIn = 3,
    Subscription = 4,
    TestAlarm = 5,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::OAuth,
        Step::EventHub,
        Step::SignIn,
        Step::Subscription,
        Step::TestAlarm,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Step::OAuth => "OAuth settings",
            Step::EventHub => "Event Hub settings",
            Step::SignIn => "Authenticate service account",
            Step::Subscription => "Create subscription",
            Step::TestAlarm => "Send a test alarm",
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

/// What is done, from the settings in force and the link's statuses.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub oauth: bool,
    pub event_hub: bool,
    pub signed_in: bool,
    pub subscribed: bool,
    pub test_sent: bool,
}

impl Progress {
    /// Reads what is done. Pure apart from the reads of `store` (via `control`).
    pub fn read(
        control: &LinkControl,
        store: &Store,
        auth: Option<&AuthStatus>,
        subscription: Option<&SubscriptionStatus>,
        test_sent: bool,
    ) -> Progress {
        let config = control.settings(store);
        let oauth = config.graph.tenant_id.is_some() && config.graph.client_id.is_some();
        let event_hub = config.eventhub_target().is_ok();
        let signed_in = crate::graph::account::stored(store).is_some()
            && matches!(
                auth,
                Some(AuthStatus::SignedIn { .. } | AuthStatus::Retrying { .. })
            );
        let subscribed = subscription
            .is_some_and(|s| s.subscription_id.is_some() && s.problem.is_none())
            && crate::cloud_settings::subscribe_wanted(store);
        Progress {
            oauth,
            event_hub,
            signed_in,
            subscribed,
            test_sent,
        }
    }

    pub fn done(&self, step: Step) -> bool {
        match step {
            Step::OAuth => self.oauth,
            Step::EventHub => self.event_hub,
            Step::SignIn => self.signed_in,
            Step::Subscription => self.subscribed,
            Step::TestAlarm => self.test_sent,
        }
    }

    /// The first step not done (the one the page opens), `None` when all are.
    pub fn first_open(&self) -> Option<Step> {
        Step::ALL.into_iter().find(|s| !self.done(*s))
    }

    /// Whether `step` may be worked on: every step before it is done.
    pub fn reachable(&self, step: Step) -> bool {
        Step::ALL
            .into_iter()
            .take_while(|s| *s < step)
            .all(|s| self.done(s))
    }
}

/// A step's last outcome, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Worked(String),
    Failed(String),
}

/// A device-code sign-in started from the page.
#[derive(Default)]
pub enum SignInRun {
    #[default]
    Idle,
    Running {
        cancel: Option<oneshot::Sender<()>>,
    },
    Finished(Outcome),
}

/// What the wizard remembers between requests (per appliance, not per session: there is one
/// service account and one subscription).
#[derive(Default)]
pub struct WizardState {
    pub hub_test: Mutex<Option<Outcome>>,
    pub sign_in: Mutex<SignInRun>,
    pub subscription: Mutex<Option<Outcome>>,
    pub test_alarm: Mutex<Option<DateTime<Utc>>>,
}

impl WizardState {
    pub fn set_hub_test(&self, outcome: Outcome) {
        if let Ok(mut slot) = self.hub_test.lock() {
            *slot = Some(outcome);
        }
    }

    pub fn hub_test(&self) -> Option<Outcome> {
        self.hub_test.lock().ok().and_then(|o| o.clone())
    }

    pub fn set_subscription(&self, outcome: Outcome) {
        if let Ok(mut slot) = self.subscription.lock() {
            *slot = Some(outcome);
        }
    }

    pub fn subscription(&self) -> Option<Outcome> {
        self.subscription.lock().ok().and_then(|o| o.clone())
    }

    /// Starts a sign-in unless one runs; returns the cancel receiver for the task.
    pub fn begin_sign_in(&self) -> Option<oneshot::Receiver<()>> {
        let mut run = self.sign_in.lock().ok()?;
        if matches!(*run, SignInRun::Running { .. }) {
            return None;
        }
        let (cancel, cancelled) = oneshot::channel();
        *run = SignInRun::Running {
            cancel: Some(cancel),
        };
        Some(cancelled)
    }

    pub fn finish_sign_in(&self, outcome: Outcome) {
        if let Ok(mut run) = self.sign_in.lock() {
            *run = SignInRun::Finished(outcome);
        }
    }

    /// Cancels a running sign-in; false when none runs.
    pub fn cancel_sign_in(&self) -> bool {
        match self.sign_in.lock() {
            Ok(mut run) => match &mut *run {
                SignInRun::Running { cancel } => {
                    if let Some(cancel) = cancel.take() {
                        let _ = cancel.send(());
                    }
                    true
                }
                _ => false,
            },
            Err(_) => false,
        }
    }

    pub fn signing_in(&self) -> bool {
        self.sign_in
            .lock()
            .is_ok_and(|r| matches!(*r, SignInRun::Running { .. }))
    }

    pub fn sign_in_outcome(&self) -> Option<Outcome> {
        match &*self.sign_in.lock().ok()? {
            SignInRun::Finished(outcome) => Some(outcome.clone()),
            _ => None,
        }
    }

    pub fn mark_test_alarm(&self, at: DateTime<Utc>) {
        if let Ok(mut slot) = self.test_alarm.lock() {
            *slot = Some(at);
        }
    }

    pub fn test_alarm(&self) -> Option<DateTime<Utc>> {
        self.test_alarm.lock().ok().and_then(|t| *t)
    }
}

/// "Signed in as E911 Desk (e911-desk@contoso.com)".
pub fn account_words(account: &Account) -> String {
    match (&account.display_name, &account.upn) {
        (Some(name), Some(upn)) => format!("{name} ({upn})"),
        (Some(name), None) => name.clone(),
        (None, Some(upn)) => upn.clone(),
        (None, None) => account.id.clone(),
    }
}

/// The subscription in words for the summary and the result.
pub fn subscription_words(status: &SubscriptionStatus) -> String {
    let words = match (&status.subscription_id, status.expires_at, &status.problem) {
        (_, _, Some(problem)) => problem.clone(),
        (Some(id), Some(expires), None) => format!(
            "Subscription {id} is active until {}; Beacon renews it before then.",
            crate::local_time::current().format_minutes(expires)
        ),
        (Some(id), None, None) => format!("Subscription {id} is active."),
        (None, _, None) => "No subscription yet.".into(),
    };
    // Said where the subscription is set up, before the quota runs out (B.1, G11).
    match &status.quota_warning {
        Some(warning) => format!("{words} {warning}"),
        None => words,
    }
}

/// Whether the link has what the step needs, or why not.
pub fn link_ready(handles: &LinkHandles, step: Step) -> Result<(), String> {
    match step {
        Step::SignIn if handles.tokens.is_none() => {
            Err("sign-in is not available: save the OAuth settings first".into())
        }
        Step::Subscription if handles.keeper.is_none() => Err(handles
            .missing
            .first()
            .cloned()
            .unwrap_or_else(|| "the service account must be signed in first".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_page_warns_of_the_evaluation_quota_before_it_runs_out() {
        let status = SubscriptionStatus {
            subscription_id: Some("sub-1".into()),
            quota_warning: Some(crate::graph::subscription::EVALUATION_QUOTA_WARNING.to_string()),
            ..SubscriptionStatus::default()
        };
        let words = subscription_words(&status);
        assert!(
            words.starts_with("Subscription sub-1 is active."),
            "{words}"
        );
        assert!(words.contains("evaluation mode"), "{words}");
        let metered = SubscriptionStatus {
            quota_warning: None,
            ..status
        };
        assert!(!subscription_words(&metered).contains("evaluation"));
    }

    #[test]
    fn a_step_opens_only_when_the_ones_before_it_are_done() {
        let mut progress = Progress::default();
        assert_eq!(progress.first_open(), Some(Step::OAuth));
        assert!(progress.reachable(Step::OAuth));
        assert!(!progress.reachable(Step::EventHub));
        progress.oauth = true;
        progress.event_hub = true;
        assert_eq!(progress.first_open(), Some(Step::SignIn));
        assert!(progress.reachable(Step::SignIn));
        assert!(!progress.reachable(Step::Subscription));
        progress.signed_in = true;
        progress.subscribed = true;
        progress.test_sent = true;
        assert_eq!(progress.first_open(), None);
    }

    #[test]
    fn only_one_sign_in_runs_and_it_can_be_cancelled() {
        let state = WizardState::default();
        let mut cancelled = state.begin_sign_in().expect("first start");
        assert!(state.begin_sign_in().is_none(), "a second start is refused");
        assert!(state.cancel_sign_in());
        assert!(cancelled.try_recv().is_ok());
        state.finish_sign_in(Outcome::Failed("cancelled".into()));
        assert!(!state.signing_in());
        assert!(state.begin_sign_in().is_some(), "a new one may start after");
    }
}
