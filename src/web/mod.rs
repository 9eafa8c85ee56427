//! The setup page and console: warp routes over server-rendered askama pages, embedded static
//! files, server-sent events, a JSON API and Prometheus metrics, served over HTTPS (a
//! self-signed certificate made on first start unless one is configured), with a one-time
//! setup code for the first admin, Argon2 passwords, guard and admin roles, strict session
//! cookies, CSRF tokens on every form, login rate limiting and security headers.
//!
//! [`start`] binds and serves; [`WebServer::stop`] drops every connection and the routes,
//! so the alarm handle they hold is gone before the alarm task is asked to end.
//!
//! Routes: `/login`, `/logout`, `/first-run`, `/` (dashboard), `/live`, `/acknowledge`, `/confirm`,
//! `/display.png`, `/calls`, `/calls.csv`, `/calls/{id}`, `/chats`, `/settings`,
//! `/settings/users`, `/settings/tokens`, `/settings/tokens/revoke`, `/settings/time-zone`, `/settings/fleet/code`,
//! `/settings/fleet/rotate`, `/settings/fleet/leave`, `/settings/fleet/acknowledgements`, `/settings/fleet/join`, `/settings/fleet/replace-subscription`, `/settings/floor-plans` (and `/remove`),
//! `/floor-plans/{id}` (a plan's image), `/fleet/join` (a joining box, authenticated by a join code), `/fleet/peer` (another member, authenticated by the fleet's peer key), `/setup` and its steps' `/setup/…` forms, `/setup/call-events` (emergency call events: policies, the certificate to upload), `/demo/call`, `/api/calls`, `/api/calls/{id}`, `/api/health`,
//! `/api/events`, `/metrics`, `/static/…`. All but the login, first-run and static ones need a
//! session.

pub mod api;
pub mod api_tokens;
pub mod assets;
pub mod client_prefix;
pub mod config;
pub mod connection_limit;
pub mod context;
pub mod csrf;
pub mod fleet_join;
pub mod fleet_peer;
pub mod floor_plan;
pub mod join_code;
pub mod link;
pub mod metrics;
pub mod pages;
pub mod password;
pub mod rate_limit;
pub mod records;
pub mod respond;
pub mod server;
pub mod session;
pub mod settings_view;
pub mod setup_code;
pub mod sse;
pub mod state;
pub mod status;
pub mod tls;
pub mod upload;
pub mod wizard;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

pub use config::WebConfig;
pub use context::ConsoleContext;
pub use link::{LinkControl, LinkHandles};

use pages::Form;
use records::CallFilter;
use server::{Listeners, Peer};
use state::{Caller, Web};

/// Largest form accepted.
const FORM_LIMIT: u64 = 16 * 1024;
/// Largest fleet message taken (a status with 64 members and 256 acknowledgements fits).
const PEER_LIMIT: u64 = 256 * 1024;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("console: cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("console HTTPS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// What the console is started with besides the context.
#[derive(Default)]
pub struct Options {
    /// The configuration in force as (key, value) rows for the settings page (secrets "set").
    pub summary: Vec<(String, String)>,
    /// `beacon demo`: the dashboard's "play an emergency call" button sends here.
    pub demo_call: Option<mpsc::Sender<()>>,
    /// The settings page's views of outputs, zones, MQTT and channels.
    pub sections: Vec<settings_view::Section>,
    /// The configuration file's `time_zone`: in force again when the settings page's choice
    /// is cleared.
    pub file_time_zone: Option<String>,
    /// The configured zones' names (`[[emergency.zones]]`): what floor plans outline.
    pub zones: Vec<String>,
}

/// The running console.
pub struct WebServer {
    listeners: Listeners,
    /// Where it listens (the port is the bound one when 0 was configured).
    pub addr: SocketAddr,
    /// Where plain HTTP is redirected from, when configured.
    pub redirect_addr: Option<SocketAddr>,
    web: Arc<Web>,
}

impl WebServer {
    /// The one-time setup code, while no admin exists (tests; the log shows it too).
    pub fn setup_code(&self) -> Option<String> {
        self.web.setup_code.lock().ok().and_then(|c| c.clone())
    }

    /// The base URL (`https://127.0.0.1:port`).
    pub fn url(&self) -> String {
        let scheme = if self.web.config.https {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops serving: drops every connection and every copy of the routes (and with them the
    /// alarm handle).
    pub async fn stop(self) {
        self.listeners.stop().await;
        drop(self.web);
    }
}

/// Binds the console (and the HTTP redirect) and starts serving.
pub async fn start(
    config: &WebConfig,
    data_dir: &std::path::Path,
    context: &ConsoleContext,
    options: Options,
) -> Result<WebServer, WebError> {
    let users = password::Users::new(context.store.clone());
    let setup_code = if users.has_admin() {
        None
    } else {
        let code = setup_code::provisioned(data_dir).unwrap_or_else(setup_code::generate);
        tracing::warn!(
            setup_code = code,
            "first start: no console administrator yet. Open the console and enter this setup code to set the admin password"
        );
        context.status.setup_code.send_replace(Some(code.clone()));
        Some(code)
    };
    let certificate = if config.https {
        let configured = config
            .certificate
            .as_deref()
            .zip(config.private_key.as_deref());
        Some(tls::certificate_files(configured, data_dir)?)
    } else {
        None
    };
    let web = Arc::new(Web {
        context: context.clone(),
        config: config.clone(),
        users,
        sessions: session::Sessions::new(chrono::Duration::minutes(i64::from(
            config.session_minutes,
        ))),
        setup_code: Mutex::new(setup_code),
        limiter: Mutex::new(rate_limit::LoginLimiter::new(
            config.login_attempts_per_minute,
        )),
        summary: options.summary,
        demo_call: options.demo_call,
        sections: options.sections,
        file_time_zone: options.file_time_zone,
        zones: options.zones,
        tokens: api_tokens::ApiTokens::new(context.store.clone()),
        setup_code_file: setup_code::provisioned_file(data_dir),
        wizard: Default::default(),
        join_codes: Default::default(),
        certificate_file: certificate.as_ref().map(|(cert, _)| cert.clone()),
        port: std::sync::OnceLock::new(),
    });
    let mut renewals = None;
    let tls = match &certificate {
        Some((cert, key)) => {
            let (server_config, live) = tls::server_config(cert, key)?;
            show_fingerprint(context, cert);
            // Only the appliance's own certificate is renewed, never a configured one.
            if config.certificate.is_none() || config.private_key.is_none() {
                renewals = Some((live, cert.clone(), key.clone()));
            }
            Some(TlsAcceptor::from(server_config))
        }
        None => None,
    };
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| WebError::Bind {
            addr,
            reason: e.to_string(),
        })
    };
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|e| WebError::Bind {
        addr: config.listen,
        reason: e.to_string(),
    })?;
    let _ = web.port.set(addr.port());
    let listeners = Listeners::default();
    let mut redirect_addr = None;
    if let Some(redirect) = config.redirect_http.filter(|_| config.https) {
        let plain = bind(redirect).await?;
        redirect_addr = plain.local_addr().ok();
        listeners.redirect(plain, addr.port());
    }
    listeners.serve(listener, tls, routes(web.clone()));
    if let Some((certificate, cert, key)) = renewals {
        listeners.spawn(renew_certificate(
            certificate,
            data_dir.to_path_buf(),
            context.clone(),
            (cert, key),
        ));
    }
    tracing::info!(%addr, https = config.https, "console listening");
    Ok(WebServer {
        listeners,
        addr,
        redirect_addr,
        web,
    })
}

/// Puts the fingerprint of the certificate in `cert` in the status feed (display, settings).
fn show_fingerprint(context: &ConsoleContext, cert: &std::path::Path) {
    let sha256 = std::fs::read(cert)
        .ok()
        .and_then(|pem| tls::fingerprint(&pem).ok());
    context.status.certificate.send_replace(sha256);
}

/// Checks every [`tls::RENEW_CHECK`] whether the self-signed certificate is due, and if so
/// makes a new one and serves it from the next handshake.
async fn renew_certificate(
    certificate: Arc<tls::ConsoleCertificate>,
    data_dir: std::path::PathBuf,
    context: ConsoleContext,
    (cert, key): (std::path::PathBuf, std::path::PathBuf),
) {
    loop {
        tokio::time::sleep(tls::RENEW_CHECK).await;
        let names = tls::Names::of_this_device();
        let renewed =
            tls::renew_if_needed(&data_dir, &names, chrono::Utc::now()).and_then(|made| {
                if made {
                    certificate.load(&cert, &key).map(|()| true)
                } else {
                    Ok(false)
                }
            });
        match renewed {
            Ok(true) => show_fingerprint(&context, &cert),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "console: cannot renew the self-signed certificate")
            }
        }
    }
}

/// Every route, with the security headers on every answer.
pub fn routes(web: Arc<Web>) -> BoxedFilter<(Response,)> {
    let csp = respond::content_security_policy(&web.config.tiles_origin());
    let with_web = {
        let web = web.clone();
        warp::any().map(move || web.clone())
    };
    let caller = warp::ext::optional::<Peer>()
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("authorization"))
        .map(Caller::new);
    let ctx = with_web.and(caller).boxed();
    let form = warp::body::content_length_limit(FORM_LIMIT).and(warp::body::form::<Form>());
    let query = warp::query::<CallFilter>();

    let get = warp::get();
    let post = warp::post();

    let login_page = get
        .and(warp::path!("login"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::login::show(&w, &c));
    let login = post
        .and(warp::path!("login"))
        .and(ctx.clone())
        .and(form)
        .then(pages::login::submit);
    let logout = post
        .and(warp::path!("logout"))
        .and(ctx.clone())
        .and(form)
        .map(pages::login::logout);
    let first_page = get
        .and(warp::path!("first-run"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::first_run::show(&w, &c));
    let first = post
        .and(warp::path!("first-run"))
        .and(ctx.clone())
        .and(form)
        .map(pages::first_run::submit);
    let access = login_page
        .or(login)
        .unify()
        .or(logout)
        .unify()
        .or(first_page)
        .unify()
        .or(first)
        .unify()
        .boxed();

    let dashboard = get
        .and(warp::path::end())
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::dashboard::show(&w, &c));
    let live = get
        .and(warp::path!("live"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::dashboard::live(&w, &c));
    let display = get
        .and(warp::path!("display.png"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::dashboard::display_png(&w, &c));
    let acknowledge = post
        .and(warp::path!("acknowledge"))
        .and(ctx.clone())
        .and(form)
        .then(pages::dashboard::acknowledge);
    let confirm = post
        .and(warp::path!("confirm"))
        .and(ctx.clone())
        .and(form)
        .then(pages::dashboard::confirm);
    let demo_call = post
        .and(warp::path!("demo" / "call"))
        .and(ctx.clone())
        .and(form)
        .then(pages::dashboard::demo_call);
    let console = dashboard
        .or(live)
        .unify()
        .or(display)
        .unify()
        .or(acknowledge)
        .unify()
        .or(confirm)
        .unify()
        .or(demo_call)
        .unify()
        .boxed();

    let calls = get
        .and(warp::path!("calls"))
        .and(ctx.clone())
        .and(query)
        .map(|w: Arc<Web>, c: Caller, f| pages::calls::show(&w, &c, f));
    let csv = get
        .and(warp::path!("calls.csv"))
        .and(ctx.clone())
        .and(query)
        .map(|w: Arc<Web>, c: Caller, f| pages::calls::csv(&w, &c, f));
    let call = get
        .and(warp::path!("calls" / String))
        .and(ctx.clone())
        .map(|id: String, w: Arc<Web>, c: Caller| pages::call_detail::show(&w, &c, &id));
    let chats = get
        .and(warp::path!("chats"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::chats::show(&w, &c));
    let settings = get
        .and(warp::path!("settings"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::settings::show(&w, &c));
    let add_user = post
        .and(warp::path!("settings" / "users"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::add_user);
    let setup_page = get
        .and(warp::path!("setup"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::setup::show(&w, &c));
    let setup_oauth = post
        .and(warp::path!("setup" / "oauth"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::oauth);
    let setup_hub = post
        .and(warp::path!("setup" / "eventhub"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::event_hub);
    let setup_sign_in = post
        .and(warp::path!("setup" / "sign-in"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::sign_in);
    let setup_cancel = post
        .and(warp::path!("setup" / "sign-in" / "cancel"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::cancel_sign_in);
    let setup_subscription = post
        .and(warp::path!("setup" / "subscription"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::subscription);
    let setup_test = post
        .and(warp::path!("setup" / "test-alarm"))
        .and(ctx.clone())
        .and(form)
        .then(pages::setup::test_alarm);
    let call_events_page = get
        .and(warp::path!("setup" / "call-events"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::call_events::show(&w, &c));
    let call_events_save = post
        .and(warp::path!("setup" / "call-events"))
        .and(ctx.clone())
        .and(form)
        .then(pages::call_events::save);
    let call_events_pem = get
        .and(warp::path!("setup" / "call-events" / "certificate.pem"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::call_events::certificate(&w, &c, "pem"));
    let call_events_cer = get
        .and(warp::path!("setup" / "call-events" / "certificate.cer"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| pages::call_events::certificate(&w, &c, "cer"));
    let setup = setup_page
        .or(call_events_page)
        .unify()
        .or(call_events_save)
        .unify()
        .or(call_events_pem)
        .unify()
        .or(call_events_cer)
        .unify()
        .or(setup_oauth)
        .unify()
        .or(setup_hub)
        .unify()
        .or(setup_sign_in)
        .unify()
        .or(setup_cancel)
        .unify()
        .or(setup_subscription)
        .unify()
        .or(setup_test)
        .unify()
        .boxed();

    let add_token = post
        .and(warp::path!("settings" / "tokens"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::create_token);
    let revoke_token = post
        .and(warp::path!("settings" / "tokens" / "revoke"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::revoke_token);
    let time_zone = post
        .and(warp::path!("settings" / "time-zone"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::set_time_zone);
    let join_code = post
        .and(warp::path!("settings" / "fleet" / "code"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::fleet_code);
    let rotate = post
        .and(warp::path!("settings" / "fleet" / "rotate"))
        .and(ctx.clone())
        .and(form)
        .then(pages::settings::fleet_rotate);
    let leave = post
        .and(warp::path!("settings" / "fleet" / "leave"))
        .and(ctx.clone())
        .and(form)
        .then(pages::settings::fleet_leave);
    let join = post
        .and(warp::path!("fleet" / "join"))
        .and(ctx.clone())
        .and(warp::body::content_length_limit(FORM_LIMIT))
        .and(warp::body::bytes())
        .map(fleet_join::join);
    let peer = post
        .and(warp::path!("fleet" / "peer"))
        .and(ctx.clone())
        .and(warp::body::content_length_limit(PEER_LIMIT))
        .and(warp::body::bytes())
        .map(fleet_peer::receive);
    let peer_silence = post
        .and(warp::path!("settings" / "fleet" / "acknowledgements"))
        .and(ctx.clone())
        .and(form)
        .map(pages::settings::fleet_acknowledgements);
    let replace_subscription = post
        .and(warp::path!("settings" / "fleet" / "replace-subscription"))
        .and(ctx.clone())
        .and(form)
        .then(pages::settings::fleet_replace_subscription);
    let join_here = post
        .and(warp::path!("settings" / "fleet" / "join"))
        .and(ctx.clone())
        .and(form)
        .then(pages::settings::fleet_join);
    let history = calls
        .or(join_code)
        .unify()
        .or(rotate)
        .unify()
        .or(leave)
        .unify()
        .or(join)
        .unify()
        .or(peer)
        .unify()
        .or(peer_silence)
        .unify()
        .or(join_here)
        .unify()
        .or(replace_subscription)
        .unify()
        .or(csv)
        .unify()
        .or(call)
        .unify()
        .or(chats)
        .unify()
        .or(settings)
        .unify()
        .or(add_user)
        .unify()
        .or(add_token)
        .unify()
        .or(revoke_token)
        .unify()
        .or(time_zone)
        .unify()
        .boxed();

    let api_calls = get
        .and(warp::path!("api" / "calls"))
        .and(ctx.clone())
        .and(query)
        .map(|w: Arc<Web>, c: Caller, f| api::calls(&w, &c, f));
    let api_call = get
        .and(warp::path!("api" / "calls" / String))
        .and(ctx.clone())
        .map(|id: String, w: Arc<Web>, c: Caller| api::call(&w, &c, &id));
    let health = get
        .and(warp::path!("api" / "health"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| api::health(&w, &c));
    let events = get
        .and(warp::path!("api" / "events"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| sse::events(&w, &c));
    let metrics = get
        .and(warp::path!("metrics"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| metrics::show(&w, &c));
    let machine = api_calls
        .or(api_call)
        .unify()
        .or(health)
        .unify()
        .or(events)
        .unify()
        .or(metrics)
        .unify()
        .boxed();

    let floor_plans = pages::floor_plans::routes(ctx.clone());

    let statics = get
        .and(warp::path("static"))
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| static_file(tail.as_str()));

    access
        .or(console)
        .unify()
        .or(setup)
        .unify()
        .or(history)
        .unify()
        .or(machine)
        .unify()
        .or(floor_plans)
        .unify()
        .or(statics)
        .unify()
        .recover(refusal)
        .unify()
        .and(warp::ext::optional::<Peer>())
        .map(move |response: Response, peer: Option<Peer>| {
            respond::secure(response, &csp, peer.is_some_and(|p| p.tls))
        })
        .boxed()
}

/// A static file, cached an hour.
fn static_file(path: &str) -> Response {
    match assets::get(path) {
        Some((kind, bytes)) => {
            let reply = warp::reply::with_header(bytes, warp::http::header::CONTENT_TYPE, kind);
            warp::reply::with_header(
                reply,
                warp::http::header::CACHE_CONTROL,
                "public, max-age=3600",
            )
            .into_response()
        }
        None => respond::text(StatusCode::NOT_FOUND, "No such file."),
    }
}

/// What warp refused before a route ran (wrong method, unreadable or oversized form).
async fn refusal(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let (status, text) = if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "That method is not allowed here.",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
        || rejection.find::<warp::reject::InvalidQuery>().is_some()
    {
        (
            StatusCode::BAD_REQUEST,
            "The request could not be read (form or query).",
        )
    } else if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "No such page.")
    } else {
        (StatusCode::BAD_REQUEST, "The request could not be read.")
    };
    Ok(respond::text(status, text))
}

/// The configuration in force as rows for the settings page: secrets as "set" / "not set".
pub fn summary(config: &crate::config::Config) -> Vec<(String, String)> {
    let secret = |s: &Option<crate::secret::Secret>| {
        if s.as_ref().is_some_and(|s| !s.is_empty()) {
            "set (not shown)"
        } else {
            "not set"
        }
        .to_string()
    };
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "not set".into());
    let mut rows = vec![
        ("Device id".to_string(), opt(&config.device_id)),
        ("Tenant".into(), opt(&config.graph.tenant_id)),
        ("Client id".into(), opt(&config.graph.client_id)),
        ("Client secret".into(), secret(&config.graph.client_secret)),
        (
            "Client secret expires".into(),
            config
                .graph
                .client_secret_expires
                .map(|d| d.to_string())
                .unwrap_or_else(|| "not set".into()),
        ),
        (
            "Event Hub connection string".into(),
            secret(&config.eventhub.connection_string),
        ),
        ("Event hub".into(), opt(&config.eventhub.hub)),
        (
            "Consumer group".into(),
            opt(&config.eventhub.consumer_group),
        ),
        (
            "Rich notifications".into(),
            config.graph.rich_notifications.to_string(),
        ),
        (
            "Metered API (model B)".into(),
            config.graph.model_b.to_string(),
        ),
    ];
    if let Some(web) = &config.web {
        rows.push(("Console address".into(), web.listen.to_string()));
        rows.push(("Map tiles".into(), web.tiles_url.clone()));
    }
    rows
}
