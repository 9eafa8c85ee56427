//! The console's pages, one file each; this file holds what they share: the layout (title,
//! user, navigation, logout form's token) and form helpers.

pub mod call_detail;
pub mod call_events;
pub mod calls;
pub mod chats;
pub mod dashboard;
pub mod first_run;
pub mod floor_plans;
pub mod login;
pub mod settings;
pub mod setup;

use std::collections::HashMap;

use super::csrf;
use super::session::{Role, Session};

/// What `base.html` shows around every page.
pub struct Layout {
    pub title: String,
    pub user: Option<String>,
    pub role: &'static str,
    pub admin: bool,
    /// The session's CSRF token (logout form).
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
}

impl Layout {
    /// The layout of a logged-in page.
    pub fn new(title: &str, nav: &'static str, session: &Session) -> Layout {
        Layout {
            title: title.to_string(),
            user: Some(session.user.clone()),
            role: session.role.name(),
            admin: session.role.allows(Role::Admin),
            csrf: session.csrf.clone(),
            nav,
        }
    }

    /// The layout of the login and first-run pages.
    pub fn anonymous(title: &str) -> Layout {
        Layout {
            title: title.to_string(),
            user: None,
            role: "",
            admin: false,
            csrf: String::new(),
            nav: "",
        }
    }
}

/// A submitted form.
pub type Form = HashMap<String, String>;

/// Field `name` of `form`, trimmed ("" when absent).
pub fn field<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map(|s| s.trim()).unwrap_or("")
}

/// Whether the form carries the session's CSRF token.
pub fn csrf_ok(session: &Session, form: &Form) -> bool {
    csrf::matches(&session.csrf, form.get(csrf::FIELD).map(String::as_str))
}

/// `2025-03-01 02:15:23 PST`: in the appliance's time zone ([`crate::local_time`]).
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    crate::local_time::shown(at)
}
