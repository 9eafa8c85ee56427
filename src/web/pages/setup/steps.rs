//! The wizard's forms but the Event Hub one: the checks every form starts with (admin,
//! CSRF, a link to set up, the steps before done), then OAuth settings, the device-code
//! sign-in and its cancellation, the subscription and the test alarm.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::super::{csrf_ok, field, Form};
use super::render::{page, progress, store_failed, Typed};
use crate::alarm::{CallSummary, Event};
use crate::cloud_settings::{self, OAuthForm};
use crate::graph::tokens::AuthStatus;
use crate::web::link::LinkControl;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};
use crate::web::wizard::{self, Outcome, Step};

/// The checks every step's form starts with: an admin session, the CSRF token, a link to set
/// up, and the steps before this one done.
#[allow(clippy::result_large_err)]
pub(super) fn admit(
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
                ..CallSummary::default()
            },
        })
        .await;
    tracing::info!(by = session.user, "setup: test alarm sent");
    web.wizard.mark_test_alarm(now);
    respond::redirect("/setup#step-5")
}
