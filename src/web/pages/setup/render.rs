//! The setup page as the admin sees it: each step's state (done, open, locked), what was typed
//! (shown again with a problem, never a secret), the last outcome of each step.

use askama::Template;
use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::super::{field, time, Form, Layout};
use crate::cloud_settings::{self, FieldError};
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::web::link::LinkControl;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};
use crate::web::wizard::{self, Outcome, Progress, Step};

/// One step's heading line.
struct StepLine {
    number: u8,
    title: &'static str,
    /// "done", "open" or "locked".
    state: &'static str,
}

/// A last outcome as the template shows it.
struct Said {
    ok: bool,
    text: String,
}

impl From<Outcome> for Said {
    fn from(outcome: Outcome) -> Said {
        match outcome {
            Outcome::Worked(text) => Said { ok: true, text },
            Outcome::Failed(text) => Said { ok: false, text },
        }
    }
}

/// The code to enter while a sign-in waits.
struct Prompt {
    code: String,
    url: String,
    /// `m:ss` left.
    left: String,
    seconds: i64,
    expires: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    available: bool,
    steps: Vec<StepLine>,
    /// Whether steps 2 to 5 may be worked on.
    reach2: bool,
    reach3: bool,
    reach4: bool,
    reach5: bool,
    problem: Option<String>,
    /// The form field the problem is about (marked on the page).
    problem_field: String,
    // Step 1
    tenant_id: String,
    client_id: String,
    client_secret_set: bool,
    client_secret_expires: String,
    // Step 2
    namespace: String,
    hub: String,
    consumer_group: String,
    partitions: String,
    connection_string_set: bool,
    default_group: String,
    hub_test: Option<Said>,
    // Step 3
    prompt: Option<Prompt>,
    signing_in: bool,
    sign_in: Option<Said>,
    account: Option<String>,
    // Step 4
    summary: Vec<(String, String)>,
    subscription_now: String,
    subscription: Option<Said>,
    // Step 5
    test_alarm: Option<String>,
    /// Reload every few seconds (a sign-in is waiting for a person).
    refresh: bool,
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Audience::Page) {
        Ok(session) => page(web, &session, None, None, StatusCode::OK),
        Err(refused) => refused,
    }
}

/// What the admin typed, shown again with a problem (never a secret).
#[derive(Default)]
pub(super) struct Typed {
    fields: Vec<(&'static str, String)>,
}

impl Typed {
    pub(super) fn of(form: &Form, names: &[&'static str]) -> Typed {
        Typed {
            fields: names
                .iter()
                .map(|n| (*n, field(form, n).to_string()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

pub(super) fn page(
    web: &Web,
    session: &Session,
    problem: Option<FieldError>,
    typed: Option<Typed>,
    status: StatusCode,
) -> Response {
    let layout = Layout::new("Setup", "setup", session);
    let Some(control) = &web.context.cloud else {
        return respond::page_with_status(&unavailable(layout), status);
    };
    let store = &web.context.store;
    let (auth, subscription_status) = statuses(web);
    let progress = progress(web, control);
    let open = progress.first_open();
    let steps = Step::ALL
        .into_iter()
        .map(|step| StepLine {
            number: step.number(),
            title: step.title(),
            state: if progress.done(step) {
                "done"
            } else if Some(step) == open {
                "open"
            } else {
                "locked"
            },
        })
        .collect();
    let saved = cloud_settings::saved(store);
    let config = control.settings(store);
    let typed = typed.unwrap_or_default();
    let pick = |name: &str, stored: Option<String>| typed.get(name).or(stored).unwrap_or_default();
    let prompt = match &auth {
        Some(AuthStatus::SigningIn { prompt }) => {
            let left = (prompt.expires_at - Utc::now()).num_seconds().max(0);
            Some(Prompt {
                code: prompt.user_code.clone(),
                url: prompt.verification_uri.clone(),
                left: format!("{}:{:02}", left / 60, left % 60),
                seconds: left,
                expires: time(prompt.expires_at),
            })
        }
        _ => None,
    };
    let handles = control.handles.borrow().clone();
    let summary = match &handles.keeper {
        Some(keeper) => {
            let settings = keeper.settings();
            vec![
                ("Resource".to_string(), settings.resource()),
                ("Changes".into(), "created, updated".into()),
                ("Delivered to".into(), settings.notification_url()),
                (
                    "Content".into(),
                    if settings.rich.is_some() {
                        "rich (the message, encrypted for this appliance)".into()
                    } else {
                        "basic (Beacon fetches each message)".into()
                    },
                ),
                (
                    "Lifetime".into(),
                    "up to 3 days; Beacon renews it before it expires".into(),
                ),
            ]
        }
        None => Vec::new(),
    };
    let signing_in = web.wizard.signing_in();
    let body = SetupPage {
        layout,
        available: true,
        steps,
        reach2: progress.reachable(Step::EventHub),
        reach3: progress.reachable(Step::SignIn),
        reach4: progress.reachable(Step::Subscription),
        reach5: progress.reachable(Step::TestAlarm),
        problem_field: problem
            .as_ref()
            .map(|p| p.field.to_string())
            .unwrap_or_default(),
        problem: problem.map(|p| p.to_string()),
        tenant_id: pick("tenant_id", config.graph.tenant_id.clone()),
        client_id: pick("client_id", config.graph.client_id.clone()),
        client_secret_set: config.graph.client_secret.is_some(),
        client_secret_expires: pick(
            "client_secret_expires",
            config.graph.client_secret_expires.map(|d| d.to_string()),
        ),
        namespace: pick(
            "namespace",
            saved.hub.as_ref().map(|h| h.namespace.clone()).or_else(|| {
                config
                    .eventhub_target()
                    .ok()
                    .map(|t| t.namespace().to_string())
            }),
        ),
        hub: pick(
            "hub",
            config.eventhub_target().ok().map(|t| t.topic().to_string()),
        ),
        consumer_group: pick("consumer_group", config.eventhub.consumer_group.clone()),
        partitions: pick(
            "partitions",
            saved
                .hub
                .as_ref()
                .and_then(|h| h.partitions)
                .map(|p| p.to_string()),
        ),
        connection_string_set: config.eventhub.connection_string.is_some(),
        default_group: format!("beacon-{}", web.context.device_id),
        hub_test: web.wizard.hub_test().map(Said::from),
        refresh: signing_in || prompt.is_some(),
        prompt,
        signing_in,
        sign_in: web.wizard.sign_in_outcome().map(Said::from),
        account: crate::graph::account::stored(store).map(|a| wizard::account_words(&a)),
        summary,
        subscription_now: subscription_status
            .as_ref()
            .map(wizard::subscription_words)
            .unwrap_or_default(),
        subscription: web.wizard.subscription().map(Said::from),
        test_alarm: web.wizard.test_alarm().map(time),
    };
    respond::page_with_status(&body, status)
}

fn unavailable(layout: Layout) -> SetupPage {
    SetupPage {
        layout,
        available: false,
        steps: Vec::new(),
        reach2: false,
        reach3: false,
        reach4: false,
        reach5: false,
        problem: None,
        problem_field: String::new(),
        tenant_id: String::new(),
        client_id: String::new(),
        client_secret_set: false,
        client_secret_expires: String::new(),
        namespace: String::new(),
        hub: String::new(),
        consumer_group: String::new(),
        partitions: String::new(),
        connection_string_set: false,
        default_group: String::new(),
        hub_test: None,
        prompt: None,
        signing_in: false,
        sign_in: None,
        account: None,
        summary: Vec::new(),
        subscription_now: String::new(),
        subscription: None,
        test_alarm: None,
        refresh: false,
    }
}

/// The sign-in and subscription statuses as they are now.
pub(super) fn statuses(web: &Web) -> (Option<AuthStatus>, Option<SubscriptionStatus>) {
    let status = &web.context.status;
    (
        status.auth.as_ref().map(|a| a.borrow().clone()),
        status.subscription.as_ref().map(|s| s.borrow().clone()),
    )
}

pub(super) fn progress(web: &Web, control: &LinkControl) -> Progress {
    let (auth, subscription) = statuses(web);
    Progress::read(
        control,
        &web.context.store,
        auth.as_ref(),
        subscription.as_ref(),
        web.wizard.test_alarm().is_some(),
    )
}

pub(super) fn store_failed(
    web: &Web,
    session: &Session,
    error: &crate::store::StoreError,
) -> Response {
    tracing::error!(%error, "setup: the store could not save");
    page(
        web,
        session,
        Some(FieldError {
            field: "",
            label: "Storage",
            reason: format!("the settings could not be saved: {error}"),
        }),
        None,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}
