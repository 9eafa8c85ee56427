//! `/first-run`: while no admin exists, whoever enters the one-time setup code (from the
//! log) sets the admin's password and is logged in. Wrong codes count as failed logins.

use std::sync::Arc;

use askama::Template;
use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::login::{pre_session_csrf_ok, pre_session_token};
use super::{field, Form, Layout};
use crate::web::password::{self, MIN_LENGTH};
use crate::web::session::{self, Role};
use crate::web::state::{Caller, Web};
use crate::web::{csrf, respond, setup_code};

#[derive(Template)]
#[template(path = "first_run.html")]
struct FirstRunPage {
    layout: Layout,
    csrf: String,
    user: String,
    problem: Option<String>,
    min_length: usize,
}

/// The form, only while there is no admin.
pub fn show(web: &Web, caller: &Caller) -> Response {
    if web.users.has_admin() {
        return respond::redirect("/login");
    }
    form_page(caller, "admin".into(), None, StatusCode::OK)
}

fn form_page(
    caller: &Caller,
    user: String,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let (token, fresh) = pre_session_token(caller);
    let page = FirstRunPage {
        layout: Layout::anonymous("First start"),
        csrf: token.clone(),
        user,
        problem,
        min_length: MIN_LENGTH,
    };
    let response = respond::page_with_status(&page, status);
    if fresh {
        respond::with_cookie(
            response,
            &session::set_cookie(
                csrf::COOKIE,
                &token,
                Some(chrono::Duration::hours(12)),
                caller.peer.tls,
            ),
        )
    } else {
        response
    }
}

/// Checks the code and the password, creates the admin, logs in.
pub fn submit(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    if web.users.has_admin() {
        return respond::redirect("/login");
    }
    if !pre_session_csrf_ok(&caller, &form) {
        return respond::csrf_refused();
    }
    let now = Utc::now();
    let ip = caller.peer.addr.ip();
    let user = field(&form, "user").to_string();
    if let Some(wait) = web
        .limiter
        .lock()
        .map(|mut l| l.wait(ip, now))
        .unwrap_or(None)
    {
        return form_page(
            &caller,
            user,
            Some(format!(
                "Too many wrong codes. Try again in {}.",
                crate::wording::count(
                    wait.num_seconds().max(1).unsigned_abs(),
                    "second",
                    "seconds"
                )
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let code_ok = web
        .setup_code
        .lock()
        .map(|code| {
            code.as_deref()
                .is_some_and(|c| setup_code::matches(c, field(&form, "code")))
        })
        .unwrap_or(false);
    if !code_ok {
        if let Ok(mut limiter) = web.limiter.lock() {
            limiter.failed(ip, now);
        }
        tracing::warn!(%ip, "console: wrong setup code entered");
        return form_page(
            &caller,
            user,
            Some("That is not the setup code shown in the log.".into()),
            StatusCode::UNAUTHORIZED,
        );
    }
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let confirm = form.get("confirm").map(String::as_str).unwrap_or("");
    let created = password::check_new(password, confirm)
        .and_then(|()| web.users.set(&user, password, Role::Admin));
    if let Err(problem) = created {
        return form_page(
            &caller,
            user,
            Some(problem.to_string()),
            StatusCode::BAD_REQUEST,
        );
    }
    if let Ok(mut code) = web.setup_code.lock() {
        *code = None;
    }
    web.context.status.setup_code.send_replace(None);
    match std::fs::remove_file(&web.setup_code_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, "the first boot's setup code file could not be removed")
        }
    }
    tracing::info!(user, "console: administrator created with the setup code");
    let (token, _) = web.sessions.create(&user, Role::Admin, now);
    let cookie = session::set_cookie(
        session::SESSION_COOKIE,
        &token,
        Some(web.session_age()),
        caller.peer.tls,
    );
    respond::with_cookie(respond::redirect("/"), &cookie)
}
