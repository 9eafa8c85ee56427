//! What every route shares: the appliance's parts ([`ConsoleContext`]), the `[web]` settings,
//! users, sessions, the first-run setup code and the login limiter; and the access check every
//! route but the login, first-run and static ones starts with.

use std::net::SocketAddr;
use std::sync::Mutex;

use chrono::Utc;
use tokio::sync::mpsc;
use warp::reply::Response;

use super::config::WebConfig;
use super::password::Users;
use super::rate_limit::LoginLimiter;
use super::respond::{self, Audience};
use super::server::Peer;
use super::session::{self, Role, Session, Sessions};
use crate::web::context::ConsoleContext;

/// Shared by every route.
pub struct Web {
    pub context: ConsoleContext,
    pub config: WebConfig,
    pub users: Users,
    pub sessions: Sessions,
    /// The one-time code while no admin exists.
    pub setup_code: Mutex<Option<String>>,
    /// Where the image's first boot left the code (removed once the admin is set).
    pub setup_code_file: std::path::PathBuf,
    pub limiter: Mutex<LoginLimiter>,
    /// The configuration in force as (key, value) rows; secrets only as "set".
    pub summary: Vec<(String, String)>,
    /// `beacon demo`: plays a demonstration call when sent to (the dashboard's button).
    pub demo_call: Option<mpsc::Sender<()>>,
    /// The settings page's views of outputs, zones, MQTT and channels.
    pub sections: Vec<super::settings_view::Section>,
    /// The configuration file's `time_zone`.
    pub file_time_zone: Option<String>,
    /// The configured zones' names: what floor plans outline.
    pub zones: Vec<String>,
    /// API tokens for machines.
    pub tokens: super::api_tokens::ApiTokens,
    /// The setup wizard's last outcomes.
    pub wizard: super::wizard::WizardState,
    /// The one-time code for a box joining this box's fleet.
    pub join_codes: Mutex<super::join_code::JoinCodes>,
    /// The console's certificate (PEM); `None` over plain HTTP. Read whenever its fingerprint
    /// is wanted (`web::fleet_join::served_certificate_sha256`): a renewal replaces it while the console runs.
    pub certificate_file: Option<std::path::PathBuf>,
    /// The port the console listens on (the configured one, or the one given for port 0).
    pub port: std::sync::OnceLock<u16>,
}

/// What a route knows of the request before it looks at the body.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Peer,
    pub cookies: Option<String>,
    /// `Authorization: Bearer …`, for API clients (see `api_tokens`).
    pub bearer: Option<crate::secret::Secret>,
}

impl Caller {
    pub fn new(peer: Option<Peer>, cookies: Option<String>, authorization: Option<String>) -> Self {
        Caller {
            peer: peer.unwrap_or(Peer {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                tls: false,
            }),
            cookies,
            bearer: authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(|t| crate::secret::Secret::new(t.trim().to_string())),
        }
    }

    /// A cookie of this request.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        session::cookie(self.cookies.as_deref(), name)
    }
}

impl Web {
    /// The caller's session and its token, when logged in.
    pub fn session(&self, caller: &Caller) -> Option<(String, Session)> {
        let token = caller.cookie(session::SESSION_COOKIE)?;
        self.sessions
            .get(token, Utc::now())
            .map(|s| (token.to_string(), s))
    }

    /// The caller's session when it has `role`; otherwise the response to send: the login
    /// (or first-run) page for a page, 401 for the API, 403 when the role is too low.
    // The refusal is the response itself, made once per refused request: boxing it would only
    // add a dereference at every route.
    #[allow(clippy::result_large_err)]
    pub fn require(
        &self,
        caller: &Caller,
        role: Role,
        audience: Audience,
    ) -> Result<Session, Response> {
        if let (Audience::Api, Some(bearer)) = (audience, &caller.bearer) {
            // A machine's token: only on the API, never for pages.
            return match self.tokens.check(bearer.expose()) {
                Some(token) if token.role.allows(role) => Ok(Session {
                    user: format!("token:{}", token.name),
                    role: token.role,
                    csrf: String::new(),
                    expires: Utc::now(),
                }),
                Some(_) => Err(respond::text(
                    warp::http::StatusCode::FORBIDDEN,
                    "This token's role may not do that.",
                )),
                None => Err(respond::unauthorized()),
            };
        }
        match self.session(caller) {
            Some((_, session)) if session.role.allows(role) => Ok(session),
            Some((_, session)) => Err(respond::forbidden(&session, audience)),
            None if audience == Audience::Api => Err(respond::unauthorized()),
            None if !self.users.has_admin() => Err(respond::redirect("/first-run")),
            None => Err(respond::redirect("/login")),
        }
    }

    /// Session lifetime as a cookie age.
    pub fn session_age(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.config.session_minutes))
    }
}
