//! The console on a test appliance: the one assembly (`beacon::app::Appliance`) on the
//! simulated board, fed directly with notifications (as a rich notification decrypts to), with
//! the web console on 127.0.0.1 (plain HTTP, or HTTPS with the self-signed certificate).
//! Plus a cookie-keeping HTTP client that logs in the way a browser does (CSRF cookie, form).

use std::time::Duration;

use beacon::alarm_task::AlarmHandle;
use beacon::app::{Appliance, Core, Options};
use beacon::config::Config;
use beacon::graph::notification::ChangeType;
use beacon::hw::sim::SimLamps;
use beacon::ingest::{InboxEntry, Notification};
use beacon::store::Store;
use beacon::web::session::Role;
use beacon::web::{WebConfig, WebServer};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The admin and guard passwords of [`Console::with_users`].
pub const ADMIN: (&str, &str) = ("admin", "admin password 1");
pub const GUARD: (&str, &str) = ("guard", "guard password 1");

/// A running console over a test appliance.
pub struct Console {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub alarm: AlarmHandle,
    pub lamps: SimLamps,
    appliance: Appliance,
    inbox: mpsc::Sender<InboxEntry>,
}

impl Console {
    /// A console over plain HTTP on a free loopback port.
    pub async fn start() -> Console {
        Console::start_with(WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: false,
            ..WebConfig::default()
        })
        .await
    }

    /// A console with `web` settings (and `summary` rows for the settings page).
    pub async fn start_with(web: WebConfig) -> Console {
        Console::start_full(web, &Config::default(), |_| {}).await
    }

    /// A console whose store is first prepared by `prepare` (users, secrets, calls).
    /// The settings page shows `config` (its summary and its sections).
    pub async fn start_full<P: FnOnce(&Store)>(
        web: WebConfig,
        config: &Config,
        prepare: P,
    ) -> Console {
        let dir = tempfile::tempdir().expect("dir");
        let config = Config {
            device_id: config.device_id.clone().or(Some("web-test".into())),
            data_dir: dir.path().join("data"),
            web: Some(web),
            ..config.clone()
        };
        let core = Core::open(&config).expect("store");
        prepare(&core.store);
        let appliance = Appliance::start(config, core, Options::simulated())
            .await
            .expect("appliance starts");
        assert!(appliance.console().is_some(), "console starts");
        Console {
            dir,
            store: appliance.store().clone(),
            alarm: appliance.alarm().clone(),
            lamps: appliance.lamps().cloned().expect("simulated board"),
            inbox: appliance.inbox().expect("fed directly"),
            appliance,
        }
    }

    /// A console (plain HTTP) with an admin and a guard already set.
    pub async fn with_users() -> Console {
        Console::with_users_and(&Config::default()).await
    }

    /// [`Console::with_users`] over an appliance configured with `config`.
    pub async fn with_users_and(config: &Config) -> Console {
        Console::start_full(
            WebConfig {
                listen: "127.0.0.1:0".parse().expect("addr"),
                https: false,
                ..WebConfig::default()
            },
            config,
            add_users,
        )
        .await
    }

    /// The running console.
    pub fn server(&self) -> &WebServer {
        self.appliance
            .console()
            .expect("started with the appliance")
    }

    pub fn url(&self) -> String {
        self.server().url()
    }

    /// What the console is handed (counters, feeds), as the appliance assembled it.
    pub fn context(&self) -> &beacon::web::context::ConsoleContext {
        self.appliance.context()
    }

    /// Hands a chat message to recognition as a notification received now; returns the call
    /// key once it is recorded.
    pub async fn post_message(
        &self,
        chat_id: &str,
        message_id: &str,
        mut message: Value,
    ) -> String {
        if let Some(fields) = message.as_object_mut() {
            fields.insert("id".into(), json!(message_id));
            fields.insert("chatId".into(), json!(chat_id));
            fields
                .entry("createdDateTime")
                .or_insert(json!(Utc::now().to_rfc3339()));
            fields.entry("messageType").or_insert(json!("message"));
        }
        let key = format!("{chat_id}/{message_id}");
        self.inbox
            .send(InboxEntry {
                key: format!("test/{key}"),
                received_at: Utc::now(),
                position: "test".into(),
                notification: Notification::Message {
                    subscription_id: "sub-test".into(),
                    chat_id: chat_id.into(),
                    message_id: message_id.into(),
                    change_type: ChangeType::Created,
                    message: Some(message),
                },
                raw: Some(json!({
                    "subscriptionId": "sub-test",
                    "changeType": "created",
                    "resource": format!("chats('{chat_id}')/messages('{message_id}')"),
                    "clientState": "(redacted)",
                })),
            })
            .await
            .expect("recognition running");
        beacon::calls::CallLog::of(&self.store)
            .wait_for(&key, Duration::from_secs(10))
            .await
            .expect("readable")
            .unwrap_or_else(|| panic!("call {key} not recorded"));
        key
    }

    /// Stops the appliance the way `beacon run` stops (console, recognition, outputs, alarm).
    pub async fn stop(self) {
        drop(self.stop_keeping_files().await);
    }

    /// [`Console::stop`], handing back the directory with the store (to open it again).
    pub async fn stop_keeping_files(self) -> tempfile::TempDir {
        let Console {
            appliance,
            inbox,
            alarm,
            dir,
            ..
        } = self;
        drop((inbox, alarm));
        appliance.stop().await.expect("clean stop");
        dir
    }
}

/// Sets the test admin and guard.
pub fn add_users(store: &Store) {
    let users = beacon::web::password::Users::new(store.clone());
    users.set(ADMIN.0, ADMIN.1, Role::Admin).expect("admin");
    users.set(GUARD.0, GUARD.1, Role::Guard).expect("guard");
}

/// An emergency chat message as Teams posts it (H.7 shape: HTML, coordinates, card).
pub fn emergency_message(caller: &str) -> Value {
    json!({
        "importance": "high",
        "messageType": "message",
        "from": {"user": {"id": "u-1", "displayName": caller}},
        "body": {"contentType": "html", "content": format!(
            "<p>{} (+14255550123) placed an emergency call to 911.</p><p>Location: 725 Example Street, Floor 4, Redmond, WA 98052, United States</p><p>47.6396, -122.1283</p>",
            html_escape(caller))},
        "attachments": [{
            "id": "card-1",
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": serde_json::to_string(&json!({"type": "AdaptiveCard", "version": "1.4", "body": [
                {"type": "FactSet", "facts": [
                    {"title": "Caller", "value": caller},
                    {"title": "UPN", "value": "jordan.rivera@contoso.com"},
                    {"title": "Dialed", "value": "911"}
                ]}
            ]})).unwrap_or_default()
        }]
    })
}

/// An important message that mentions an emergency without the Teams notification phrase:
/// the classifier calls it "possible".
pub fn possible_message(sender: &str) -> Value {
    json!({
        "importance": "high",
        "messageType": "message",
        "from": {"user": {"id": "u-3", "displayName": sender}},
        "body": {"contentType": "html", "content":
            "<p><b>Emergency?</b> Smoke coming out of rack 4 in the server room, \
             can someone from security check right away?</p>"}
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTTP client that keeps the console's cookies, does not follow redirects, and accepts
/// the self-signed certificate.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client::from_builder(base, reqwest::Client::builder())
    }

    /// A client whose connections come from `local` (another loopback address: another
    /// client as the console counts them).
    pub fn from_address(base: &str, local: std::net::IpAddr) -> Client {
        Client::from_builder(base, reqwest::Client::builder().local_address(local))
    }

    fn from_builder(base: &str, builder: reqwest::ClientBuilder) -> Client {
        Client {
            http: builder
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(true)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let Some((pair, _)) = value.to_str().unwrap_or("").split_once(';') else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.into(), value.into());
                }
            }
        }
    }

    /// Sends `request` with the kept cookies and keeps the ones it sets.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request sent");
        self.keep_cookies(&response);
        response
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Posts a `multipart/form-data` form (as a browser sends a form with a file input):
    /// text `fields`, and `file` as (field, file name, content type, bytes).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &str, &[u8])>,
    ) -> reqwest::Response {
        const BOUNDARY: &str = "----beacon-test-boundary-7d1c";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, file_name, content_type, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        self.send(request).await
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf(&mut self, path: &str) -> String {
        let html = self.get(path).await.text().await.expect("page");
        csrf_of(&html)
    }

    /// Logs in as `user`; panics when refused.
    pub async fn login(&mut self, user: &str, password: &str) {
        let token = self.csrf("/login").await;
        let response = self
            .post(
                "/login",
                &[("csrf", &token), ("user", user), ("password", password)],
            )
            .await;
        assert_eq!(response.status().as_u16(), 303, "login as {user} refused");
        assert!(self.cookies.contains_key("beacon_session"));
    }
}

/// The first `name="csrf" value="…"` in a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    html.find(marker)
        .map(|at| {
            let rest = &html[at + marker.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .unwrap_or_default()
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fleet's members table of `admin`'s settings page (the HTML of its rows).
pub async fn fleet_members(admin: &mut Client) -> String {
    let html = admin.get("/settings").await.text().await.expect("page");
    html.split("id=\"fleet-peers\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or("")
        .to_string()
}
