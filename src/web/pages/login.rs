//! `/login` and `/logout`: the login form (with a pre-session CSRF cookie), password check
//! through the rate limiter, the session cookie; logout ends the session.

use std::sync::Arc;

use askama::Template;
use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{field, Form, Layout};
use crate::web::state::{Caller, Web};
use crate::web::{csrf, respond, session};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    user: String,
    problem: Option<String>,
}

/// The form; a new pre-session CSRF cookie when the browser has none.
pub fn show(web: &Web, caller: &Caller) -> Response {
    if !web.users.has_admin() {
        return respond::redirect("/first-run");
    }
    if web.session(caller).is_some() {
        return respond::redirect("/");
    }
    form_page(caller, String::new(), None, StatusCode::OK)
}

/// Renders the form with the caller's pre-session token (made now if it has none).
fn form_page(
    caller: &Caller,
    user: String,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let (token, fresh) = pre_session_token(caller);
    let page = LoginPage {
        layout: Layout::anonymous("Log in"),
        csrf: token.clone(),
        user,
        problem,
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

/// The caller's pre-session CSRF token, or a new one (`true`).
pub fn pre_session_token(caller: &Caller) -> (String, bool) {
    match caller.cookie(csrf::COOKIE).filter(|t| t.len() >= 32) {
        Some(token) => (token.to_string(), false),
        None => (session::random_token(), true),
    }
}

/// Whether a pre-login form carries the token of its CSRF cookie.
pub fn pre_session_csrf_ok(caller: &Caller, form: &Form) -> bool {
    match caller.cookie(csrf::COOKIE) {
        Some(expected) => csrf::matches(expected, form.get(csrf::FIELD).map(String::as_str)),
        None => false,
    }
}

/// Checks the password (rate-limited per address) and starts a session.
pub async fn submit(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    if !pre_session_csrf_ok(&caller, &form) {
        return respond::csrf_refused();
    }
    let now = Utc::now();
    let ip = caller.peer.addr.ip();
    let user = field(&form, "user").to_string();
    let wait = web
        .limiter
        .lock()
        .map(|mut l| l.wait(ip, now))
        .unwrap_or(None);
    if let Some(wait) = wait {
        tracing::warn!(%ip, "console: too many failed logins; refused");
        let mut response = form_page(
            &caller,
            user,
            Some(format!(
                "Too many failed attempts. Try again in {}.",
                crate::wording::count(
                    wait.num_seconds().max(1).unsigned_abs(),
                    "second",
                    "seconds"
                )
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(value) = warp::http::HeaderValue::from_str(&wait.num_seconds().max(1).to_string())
        {
            response
                .headers_mut()
                .insert(warp::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    let password = form.get("password").map(String::as_str).unwrap_or("");
    match web.users.authenticate(&user, password).await {
        Some(role) => {
            if let Ok(mut limiter) = web.limiter.lock() {
                limiter.succeeded(ip);
            }
            tracing::info!(user, role = role.name(), %ip, "console: logged in");
            let (token, _) = web.sessions.create(&user, role, now);
            let cookie = session::set_cookie(
                session::SESSION_COOKIE,
                &token,
                Some(web.session_age()),
                caller.peer.tls,
            );
            respond::with_cookie(respond::redirect("/"), &cookie)
        }
        None => {
            if let Ok(mut limiter) = web.limiter.lock() {
                limiter.failed(ip, now);
            }
            tracing::warn!(%ip, "console: failed login");
            form_page(
                &caller,
                user,
                Some("Wrong user name or password.".into()),
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

/// Ends the session (the form carries its CSRF token).
pub fn logout(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let Some((token, session)) = web.session(&caller) else {
        return respond::redirect("/login");
    };
    if !super::csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    web.sessions.remove(&token);
    tracing::info!(user = session.user, "console: logged out");
    let cookie = session::set_cookie(session::SESSION_COOKIE, "", None, caller.peer.tls);
    respond::with_cookie(respond::redirect("/login"), &cookie)
}
