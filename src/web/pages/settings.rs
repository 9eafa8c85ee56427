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
    users: Vec<(String, &'static str)>,
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
    respond::page_with_status(
        &SettingsPage {
            layout: Layout::new("Settings", "settings", session),
            config: web.summary.clone(),
            users: web
                .users
                .list()
                .into_iter()
                .map(|(n, r)| (n, r.name()))
                .collect(),
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
