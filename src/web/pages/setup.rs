//! `/setup` (admins only): the setup wizard — OAuth settings, Event Hub settings with a live
//! connection test, the service account's device-code sign-in (code, address, countdown,
//! result), the subscription (summary, create, result in words) and a test alarm. Each form
//! posts to `/setup/<step>`; a step whose predecessors are not done is refused (409). Secrets
//! are write-only: the page says whether one is set, never its value.
//!
//! Saving OAuth or Event Hub settings, a finished sign-in and a created subscription restart
//! the cloud link so the appliance runs with them at once.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{csrf_ok, field, time, Form, Layout};
use crate::alarm::{CallSummary, Event};
use crate::cloud_settings::{self, FieldError, HubForm, OAuthForm};
use crate::eventhub::consumer::ConsumerSettings;
use crate::graph::subscription::SubscriptionStatus;
use crate::graph::tokens::AuthStatus;
use crate::web::link::LinkControl;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};
use crate::web::wizard::{self, Outcome, Progress, Step};

/// How long the live Event Hub test may take.
const HUB_TEST_TIMEOUT: Duration = Duration::from_secs(15);

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
struct Typed {
    fields: Vec<(&'static str, String)>,
}

impl Typed {
    fn of(form: &Form, names: &[&'static str]) -> Typed {
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

fn page(
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
fn statuses(web: &Web) -> (Option<AuthStatus>, Option<SubscriptionStatus>) {
    let status = &web.context.status;
    (
        status.auth.as_ref().map(|a| a.borrow().clone()),
        status.subscription.as_ref().map(|s| s.borrow().clone()),
    )
}

fn progress(web: &Web, control: &LinkControl) -> Progress {
    let (auth, subscription) = statuses(web);
    Progress::read(
        control,
        &web.context.store,
        auth.as_ref(),
        subscription.as_ref(),
        web.wizard.test_alarm().is_some(),
    )
}

/// The checks every step's form starts with: an admin session, the CSRF token, a link to set
/// up, and the steps before this one done.
#[allow(clippy::result_large_err)]
fn admit(
    web: &Web,
    caller: &Caller,
    form: &Form,
    step: Step,
) -> Result<(Session, LinkControl), Response> {
    let session = web.require(caller, Role::Admin, Audience::Page)?;
    if !csrf_ok(&session, form) {
        return Err(respond::csrf_refused());
    }
    let Some(control) = web.context.cloud.clone() else {
        return Err(respond::text(
            StatusCode::CONFLICT,
            "Setup runs on the appliance (`beacon run`); this console has no link to set up.",
        ));
    };
    if !progress(web, &control).reachable(step) {
        return Err(respond::text(
            StatusCode::CONFLICT,
            &format!("Finish the steps before \"{}\" first.", step.title()),
        ));
    }
    Ok((session, control))
}

/// Step 1: saves the OAuth settings and restarts the link with them.
pub async fn oauth(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, control) = match admit(&web, &caller, &form, Step::OAuth) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let checked = cloud_settings::check_oauth(&OAuthForm {
        tenant_id: field(&form, "tenant_id"),
        client_id: field(&form, "client_id"),
        client_secret: form.get("client_secret").map(String::as_str).unwrap_or(""),
        client_secret_expires: field(&form, "client_secret_expires"),
        clear_secret: field(&form, "clear_secret") == "on",
    });
    let (choice, secret) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            let typed = Typed::of(&form, &["tenant_id", "client_id", "client_secret_expires"]);
            return page(
                &web,
                &session,
                Some(problem),
                Some(typed),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let before = control.settings(&web.context.store);
    let in_force = (
        before.graph.tenant_id.as_deref(),
        before.graph.client_id.as_deref(),
    );
    if let Err(e) = cloud_settings::save_oauth(&web.context.store, &choice, secret, in_force) {
        return store_failed(&web, &session, &e);
    }
    tracing::info!(
        by = session.user,
        tenant = choice.tenant_id,
        client_id = choice.client_id,
        "setup: OAuth settings saved"
    );
    control.restart().await;
    respond::redirect("/setup#step-2")
}

/// Step 2: tests the connection live and saves the Event Hub settings only when it worked.
pub async fn event_hub(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, control) = match admit(&web, &caller, &form, Step::EventHub) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let store = web.context.store.clone();
    let stored = cloud_settings::stored_connection_string(&store)
        .or_else(|| control.file.eventhub.connection_string.clone());
    let typed = Typed::of(&form, &["namespace", "hub", "consumer_group", "partitions"]);
    let checked = cloud_settings::check_hub(
        &HubForm {
            namespace: field(&form, "namespace"),
            hub: field(&form, "hub"),
            consumer_group: field(&form, "consumer_group"),
            connection_string: form
                .get("connection_string")
                .map(String::as_str)
                .unwrap_or(""),
            partitions: field(&form, "partitions"),
        },
        stored.as_ref(),
    );
    let (choice, secret) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            return page(
                &web,
                &session,
                Some(problem),
                Some(typed),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    // The target exactly as the consumer will use it (the file's bootstrap override and CA
    // stay in force).
    let mut trial = (*control.file).clone();
    trial.eventhub.connection_string = secret.clone().or(stored);
    trial.eventhub.hub = Some(choice.hub.clone());
    let target = match trial.eventhub_target() {
        Ok(target) => target,
        Err(e) => {
            let problem = FieldError {
                field: "connection_string",
                label: "Connection string",
                reason: format!("{e} (the value is not shown)"),
            };
            return page(
                &web,
                &session,
                Some(problem),
                Some(typed),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let settings = ConsumerSettings {
        group_id: choice
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("beacon-{}", web.context.device_id)),
        client_id: format!("{}-setup", web.context.device_id),
        ca_file: trial.eventhub.ca_file.clone(),
        instance_id: None,
        max_batch: 1,
        commit: false,
        target,
    };
    let probed = tokio::task::spawn_blocking(move || {
        crate::eventhub::probe::probe(&settings, HUB_TEST_TIMEOUT)
    })
    .await
    .unwrap_or_else(|e| Err(format!("the test did not finish: {e}")));
    match probed {
        Ok(found) => {
            let mut words = format!(
                "Connected to {} over SASL_SSL: event hub '{}' has {} partition{}.",
                found.bootstrap,
                found.hub,
                found.partitions,
                if found.partitions == 1 { "" } else { "s" }
            );
            if let Some(expected) = choice
                .partitions
                .filter(|p| *p as usize != found.partitions)
            {
                words.push_str(&format!(
                    " You expected {expected}: Beacon reads every partition either way."
                ));
            }
            if let Err(e) = cloud_settings::save_hub(&store, &choice, secret) {
                return store_failed(&web, &session, &e);
            }
            tracing::info!(
                by = session.user,
                hub = choice.hub,
                namespace = choice.namespace,
                "setup: Event Hub settings tested and saved"
            );
            web.wizard.set_hub_test(Outcome::Worked(words));
            control.restart().await;
            respond::redirect("/setup#step-3")
        }
        Err(reason) => {
            tracing::warn!(
                by = session.user,
                problem = reason,
                "setup: Event Hub test failed; nothing saved"
            );
            web.wizard
                .set_hub_test(Outcome::Failed(format!("{reason}. Nothing was saved.")));
            page(&web, &session, None, Some(typed), StatusCode::BAD_GATEWAY)
        }
    }
}

/// Step 3: starts the device-code sign-in; the page shows the code until it is done.
pub async fn sign_in(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, control) = match admit(&web, &caller, &form, Step::SignIn) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let handles = control.handles.borrow().clone();
    if let Err(why) = wizard::link_ready(&handles, Step::SignIn) {
        return respond::text(StatusCode::CONFLICT, &why);
    }
    let (Some(tokens), Some(graph)) = (handles.tokens, handles.graph) else {
        return respond::text(StatusCode::CONFLICT, "sign-in is not available yet");
    };
    let Some(cancelled) = web.wizard.begin_sign_in() else {
        return respond::redirect("/setup#step-3"); // one is running already
    };
    tracing::info!(by = session.user, "setup: device-code sign-in started");
    let task_web = web.clone();
    tokio::spawn(async move {
        let result = tokens
            .sign_in(|_| {}, async {
                let _ = cancelled.await;
            })
            .await;
        let outcome = match result {
            Err(e) => Outcome::Failed(format!("Sign-in did not complete: {e}")),
            Ok(()) => {
                match crate::graph::account::fetch_and_store(&graph, &task_web.context.store).await
                {
                    Ok(account) => Outcome::Worked(format!(
                        "Signed in as {}.",
                        wizard::account_words(&account)
                    )),
                    Err(e) => Outcome::Failed(format!(
                        "Signed in, but Graph did not say who the account is (GET /me): {e}"
                    )),
                }
            }
        };
        let worked = matches!(outcome, Outcome::Worked(_));
        task_web.wizard.finish_sign_in(outcome);
        if worked {
            control.restart().await;
        }
    });
    // Let the keeper fetch the code before the page shows, so it shows it at once.
    let mut auth = web.context.status.auth.clone();
    if let Some(auth) = auth.as_mut() {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            auth.wait_for(|a| matches!(a, AuthStatus::SigningIn { .. })),
        )
        .await;
    }
    respond::redirect("/setup#step-3")
}

/// Step 3: stops waiting for the person.
pub async fn cancel_sign_in(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    web.wizard.cancel_sign_in();
    respond::redirect("/setup#step-3")
}

/// Step 4: creates the subscription now and says how it went.
pub async fn subscription(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, control) = match admit(&web, &caller, &form, Step::Subscription) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let handles = control.handles.borrow().clone();
    if let Err(why) = wizard::link_ready(&handles, Step::Subscription) {
        return respond::text(StatusCode::CONFLICT, &why);
    }
    let Some(keeper) = handles.keeper else {
        return respond::text(StatusCode::CONFLICT, "sign in first");
    };
    if let Err(e) = cloud_settings::want_subscription(&web.context.store) {
        return store_failed(&web, &session, &e);
    }
    let outcome = match keeper.settle(Utc::now()).await {
        Ok(status) if status.subscription_id.is_some() => {
            Outcome::Worked(wizard::subscription_words(&status))
        }
        Ok(status) => Outcome::Failed(wizard::subscription_words(&status)),
        Err(e) => Outcome::Failed(crate::graph::subscription::explain(&e)),
    };
    tracing::info!(by = session.user, ?outcome, "setup: create subscription");
    web.wizard.set_subscription(outcome);
    // The link restarts with the keeper on its schedule (renewals, resync after gaps).
    control.restart().await;
    respond::redirect("/setup#step-4")
}

/// Step 5: a test call on the alarm: the outputs show the test pattern, the display "THIS IS
/// A TEST", until someone acknowledges it.
pub async fn test_alarm(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, _) = match admit(&web, &caller, &form, Step::TestAlarm) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let now = Utc::now();
    web.context
        .alarm
        .send(Event::CallRaised {
            key: format!("setup-test/{}", now.timestamp_millis()),
            summary: CallSummary {
                caller_name: Some(format!("Setup test by {}", session.user)),
                location: Some("Beacon setup page".into()),
                dial_string: None,
                callback_number: None,
                is_test: true,
            },
        })
        .await;
    tracing::info!(by = session.user, "setup: test alarm sent");
    web.wizard.mark_test_alarm(now);
    respond::redirect("/setup#step-5")
}

fn store_failed(web: &Web, session: &Session, error: &crate::store::StoreError) -> Response {
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
