//! `/setup/call-events` (admins only): the second source, Graph emergency call events — the
//! emergency calling policies to watch (saved over the file, the link restarts with them),
//! what Entra needs (the application permission, admin consent, and the appliance's
//! certificate to upload, downloadable as `.cer` or `.pem` with its thumbprint), and each
//! policy's subscription as the keeper last reported it, refusals in words. The certificate
//! holds no secret; its private key never leaves the store.

use std::sync::Arc;

use askama::Template;
use chrono::Utc;
use warp::http::{header, StatusCode};
use warp::reply::{Reply, Response};

use super::{csrf_ok, field, time, Form, Layout};
use crate::cloud_settings;
use crate::graph::call_events::app_token::EMERGENCY_ROLE;
use crate::graph::call_events::{AppCertificate, CredentialKind};
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};

/// One policy's line.
struct PolicyLine {
    policy: String,
    state: String,
    ok: bool,
}

#[derive(Template)]
#[template(path = "call_events.html")]
struct CallEventsPage {
    layout: Layout,
    available: bool,
    policies: String,
    role: &'static str,
    credential_is_certificate: bool,
    thumbprint: String,
    not_after: String,
    lines: Vec<PolicyLine>,
    problem: Option<String>,
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Audience::Page) {
        Ok(session) => page(web, &session, None, StatusCode::OK),
        Err(refused) => refused,
    }
}

fn page(web: &Web, session: &Session, problem: Option<String>, status: StatusCode) -> Response {
    let store = &web.context.store;
    let settings = web.context.cloud.as_ref().map(|c| c.settings(store));
    let section = settings
        .as_ref()
        .map(|c| c.call_events.clone())
        .unwrap_or_default();
    // Made on first view, so the admin can upload it before turning call events on.
    let certificate = AppCertificate::load_or_create(store, Utc::now());
    let (thumbprint, not_after) = match &certificate {
        Ok(c) => (c.thumbprint(), time(c.not_after)),
        Err(e) => (format!("unavailable: {e}"), String::new()),
    };
    let status_now = web
        .context
        .status
        .call_events
        .as_ref()
        .map(|s| s.borrow().clone())
        .unwrap_or_default();
    let lines = status_now
        .policies
        .iter()
        .map(|p| match (&p.problem, &p.subscription_id) {
            (Some(problem), _) => PolicyLine {
                policy: p.policy.clone(),
                state: problem.clone(),
                ok: false,
            },
            (None, Some(id)) => PolicyLine {
                policy: p.policy.clone(),
                state: format!(
                    "subscribed ({id}), expires {}",
                    p.expires_at.map(time).unwrap_or_default()
                ),
                ok: true,
            },
            (None, None) => PolicyLine {
                policy: p.policy.clone(),
                state: "not subscribed yet".into(),
                ok: false,
            },
        })
        .collect();
    respond::page_with_status(
        &CallEventsPage {
            layout: Layout::new("Emergency call events", "setup", session),
            available: web.context.cloud.is_some(),
            policies: section.policies.join("\n"),
            role: EMERGENCY_ROLE,
            credential_is_certificate: section.credential == CredentialKind::Certificate,
            thumbprint,
            not_after,
            lines,
            problem,
        },
        status,
    )
}

/// Saves the policy names and restarts the link with them.
pub async fn save(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    let Some(control) = web.context.cloud.clone() else {
        return respond::text(
            StatusCode::CONFLICT,
            "Setup runs on the appliance (`beacon run`); this console has no link to set up.",
        );
    };
    let config = control.settings(&web.context.store);
    let policies =
        match cloud_settings::check_call_event_policies(field(&form, "policies"), &config) {
            Ok(p) => p,
            Err(e) => return page(&web, &session, Some(e.to_string()), StatusCode::BAD_REQUEST),
        };
    if let Err(e) = cloud_settings::save_call_event_policies(&web.context.store, &policies) {
        return page(
            &web,
            &session,
            Some(format!("could not save: {e}")),
            StatusCode::INTERNAL_SERVER_ERROR,
        );
    }
    tracing::info!(
        by = session.user,
        count = policies.len(),
        "setup: emergency calling policies saved"
    );
    control.restart().await;
    respond::redirect("/setup/call-events")
}

/// The certificate to upload in Entra: `pem` (text) or `cer` (DER).
pub fn certificate(web: &Web, caller: &Caller, format: &str) -> Response {
    if let Err(refused) = web.require(caller, Role::Admin, Audience::Page) {
        return refused;
    }
    let certificate = match AppCertificate::load_or_create(&web.context.store, Utc::now()) {
        Ok(c) => c,
        Err(e) => return respond::text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (body, content_type) = match format {
        "pem" => (
            certificate.certificate_pem().map(String::into_bytes),
            "application/x-pem-file",
        ),
        _ => (certificate.certificate_der(), "application/pkix-cert"),
    };
    match body {
        Ok(bytes) => {
            let mut response =
                warp::reply::with_header(bytes, header::CONTENT_TYPE, content_type).into_response();
            if let Ok(value) =
                format!("attachment; filename=\"beacon-call-events.{format}\"").parse()
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => respond::text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
