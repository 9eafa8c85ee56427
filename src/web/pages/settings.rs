//! `/settings` (admins only): the configuration in force — secrets shown only as "set" —
//! and the console's users, with a form to add a guard or admin.

use std::sync::Arc;

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{csrf_ok, field, Form, Layout};
use crate::web::password;
use crate::web::respond;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Kind, Web};

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
    notice: Option<String>,
    problem: Option<String>,
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Kind::Page) {
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
            config: match &web.services.cloud {
                Some(control) => crate::web::summary(&control.settings(&web.services.store)),
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
            notice,
            problem,
        },
        status,
    )
}

/// Adds (or replaces) a user.
pub fn add_user(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Kind::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    let user = field(&form, "user");
    let role = match field(&form, "role") {
        "admin" => Role::Admin,
        "guard" => Role::Guard,
        _ => {
            return page(
                &web,
                &session,
                None,
                Some("The role is guard or admin.".into()),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let confirm = form.get("confirm").map(String::as_str).unwrap_or("");
    match password::check_new(password, confirm).and_then(|()| web.users.set(user, password, role))
    {
        Ok(()) => {
            web.sessions.remove_user(user);
            tracing::info!(
                by = session.user,
                user,
                role = role.name(),
                "console: user set"
            );
            page(
                &web,
                &session,
                Some(format!("{user} can now log in as {}.", role.name())),
                None,
                StatusCode::OK,
            )
        }
        Err(problem) => page(
            &web,
            &session,
            None,
            Some(problem.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// Makes an API token and shows it once.
pub fn create_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Kind::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    let name = field(&form, "name");
    let role = match field(&form, "role") {
        "admin" => Role::Admin,
        "guard" => Role::Guard,
        _ => {
            return page(
                &web,
                &session,
                None,
                Some("The role is guard or admin.".into()),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    match web
        .tokens
        .create(name, role, &session.user, chrono::Utc::now())
    {
        Ok(token) => {
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
        Err(problem) => page(
            &web,
            &session,
            None,
            Some(problem.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// Revokes an API token.
pub fn revoke_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Kind::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    let name = field(&form, "name");
    match web.tokens.revoke(name) {
        Ok(()) => {
            tracing::info!(by = session.user, name, "console: API token revoked");
            page(
                &web,
                &session,
                Some(format!("API token {name} revoked.")),
                None,
                StatusCode::OK,
            )
        }
        Err(problem) => page(
            &web,
            &session,
            None,
            Some(problem.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}
