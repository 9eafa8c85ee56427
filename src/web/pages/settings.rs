//! `/settings` (admins only): the configuration in force — secrets shown only as "set" —,
//! the time zone times are shown in (a form to choose it), the console's users with a form to
//! add a guard or admin, and the API tokens.

use std::sync::Arc;

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{csrf_ok, field, Form, Layout};
use crate::web::password;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    config: Vec<(String, String)>,
    sections: Vec<crate::web::settings_view::Section>,
    users: Vec<(String, &'static str)>,
    /// API tokens: name, role, created, by whom.
    tokens: Vec<(String, &'static str, String, String)>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    /// The zone times are shown in (name) and a time in it, as an example.
    time_zone: String,
    time_zone_now: String,
    notice: Option<String>,
    problem: Option<String>,
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Audience::Page) {
        Ok(session) => page(web, &session, None, None, StatusCode::OK),
        Err(refused) => refused,
    }
}

fn page(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    page_with_token(web, session, notice, problem, None, status)
}

fn page_with_token(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
    new_token: Option<String>,
    status: StatusCode,
) -> Response {
    respond::page_with_status(
        &SettingsPage {
            layout: Layout::new("Settings", "settings", session),
            // What the setup wizard saved is in force too: show the file with it laid over.
            config: match &web.context.cloud {
                Some(control) => crate::web::summary(&control.settings(&web.context.store)),
                None => web.summary.clone(),
            },
            sections: web.sections.clone(),
            users: web
                .users
                .list()
                .into_iter()
                .map(|(n, r)| (n, r.name()))
                .collect(),
            tokens: web
                .tokens
                .list()
                .into_iter()
                .map(|t| (t.name, t.role.name(), super::time(t.created), t.created_by))
                .collect(),
            new_token,
            time_zone: crate::local_time::current().name().to_string(),
            time_zone_now: super::time(chrono::Utc::now()),
            notice,
            problem,
        },
        status,
    )
}

/// The checks every settings form starts with: an admin's session and its CSRF token.
#[allow(clippy::result_large_err)]
fn admit(web: &Web, caller: &Caller, form: &Form) -> Result<Session, Response> {
    let session = web.require(caller, Role::Admin, Audience::Page)?;
    if !csrf_ok(&session, form) {
        return Err(respond::csrf_refused());
    }
    Ok(session)
}

/// The form's `role` field.
fn role_of(form: &Form) -> Result<Role, String> {
    match field(form, "role") {
        "admin" => Ok(Role::Admin),
        "guard" => Ok(Role::Guard),
        _ => Err("The role is guard or admin.".into()),
    }
}

/// The page again with what a form did: a notice (200) or a problem (400).
fn answer(web: &Web, session: &Session, outcome: Result<String, String>) -> Response {
    match outcome {
        Ok(notice) => page(web, session, Some(notice), None, StatusCode::OK),
        Err(problem) => page(web, session, None, Some(problem), StatusCode::BAD_REQUEST),
    }
}

/// Adds (or replaces) a user.
pub fn add_user(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let user = field(&form, "user");
    let outcome = role_of(&form).and_then(|role| {
        let password = form.get("password").map(String::as_str).unwrap_or("");
        let confirm = form.get("confirm").map(String::as_str).unwrap_or("");
        password::check_new(password, confirm)
            .and_then(|()| web.users.set(user, password, role))
            .map_err(|problem| problem.to_string())?;
        web.sessions.remove_user(user);
        tracing::info!(
            by = session.user,
            user,
            role = role.name(),
            "console: user set"
        );
        Ok(format!("{user} can now log in as {}.", role.name()))
    });
    answer(&web, &session, outcome)
}

/// Makes an API token and shows it once.
pub fn create_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "name");
    let made = role_of(&form).and_then(|role| {
        web.tokens
            .create(name, role, &session.user, chrono::Utc::now())
            .map(|token| (token, role))
            .map_err(|problem| problem.to_string())
    });
    match made {
        Ok((token, role)) => {
            tracing::info!(
                by = session.user,
                name,
                role = role.name(),
                "console: API token created"
            );
            page_with_token(
                &web,
                &session,
                Some(format!(
                    "API token {name} created. Copy it now: it is not shown again."
                )),
                None,
                Some(token),
                StatusCode::OK,
            )
        }
        Err(problem) => answer(&web, &session, Err(problem)),
    }
}

/// Revokes an API token.
pub fn revoke_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "name");
    let outcome = web
        .tokens
        .revoke(name)
        .map(|()| {
            tracing::info!(by = session.user, name, "console: API token revoked");
            format!("API token {name} revoked.")
        })
        .map_err(|problem| problem.to_string());
    answer(&web, &session, outcome)
}

/// Chooses the time zone times are shown in (an IANA name; empty: the configuration file's or
/// the system's again). Kept in the store, so it outlasts a restart and wins over the file.
pub fn set_time_zone(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "time_zone");
    let store = &web.context.store;
    let outcome = if name.is_empty() {
        store
            .settings
            .remove(crate::local_time::SAVED_KEY)
            .map_err(|e| e.to_string())
            .map(|_| {
                crate::local_time::chosen(None, web.file_time_zone.as_deref())
                    .unwrap_or_else(crate::local_time::Zone::system)
            })
    } else {
        crate::local_time::Zone::named(name)
            .map_err(|problem| format!("Time zone: {problem}."))
            .and_then(|zone| {
                store
                    .settings
                    .insert(
                        crate::local_time::SAVED_KEY,
                        &serde_json::json!(zone.name()),
                    )
                    .map_err(|e| e.to_string())
                    .map(|()| zone)
            })
    }
    .map(|zone| {
        let shown = zone.format(chrono::Utc::now());
        tracing::info!(
            by = session.user,
            zone = zone.name(),
            "console: time zone set"
        );
        let said = format!("Times are now shown in {} (now {shown}).", zone.name());
        crate::local_time::set_current(zone);
        said
    });
    answer(&web, &session, outcome)
}
