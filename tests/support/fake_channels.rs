//! Local fakes of the notification peers, following their documented request formats and
//! errors: Twilio's Messages API (form fields, basic auth, 201 / error JSON with
//! code/message/more_info/status), PagerDuty Events API v2 (202 success, 400 invalid event,
//! 429 throttled), a generic JSON webhook, a Slack incoming webhook (200 `ok`,
//! 400 `invalid_payload`) and a Teams Workflows webhook (202, Adaptive Cards only).
//!
//! One warp server on 127.0.0.1 serves all of them. Each peer can be told to be down (503),
//! to fail the next N requests with a given status (429 with `Retry-After` included), and
//! records every request it accepted.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use warp::http::{HeaderMap, Response, StatusCode};
use warp::Filter;

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-test-token-5d1f0c";
pub const PAGERDUTY_KEY: &str = "R0UT1NGKEY0123456789ABCDEF012345";

/// Which fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Twilio,
    PagerDuty,
    Webhook,
    Slack,
    Teams,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Form fields (Twilio).
    pub fn form(&self) -> HashMap<String, String> {
        serde_urlencoded_pairs(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

#[derive(Default)]
struct State {
    accepted: HashMap<Peer, Vec<Received>>,
    attempts: HashMap<Peer, usize>,
    down: HashMap<Peer, bool>,
    /// (remaining, status, Retry-After seconds)
    failures: HashMap<Peer, (usize, u16, Option<u64>)>,
}

/// The running fakes; stops when dropped.
pub struct FakeChannels {
    state: Arc<Mutex<State>>,
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeChannels {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeChannels {
    pub async fn start() -> FakeChannels {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake channels");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let routes = warp::post()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |path: warp::path::FullPath,
                      headers: HeaderMap,
                      body: warp::hyper::body::Bytes| {
                    handle(&shared, path.as_str(), &headers, body.to_vec())
                },
            );
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(routes)
                .incoming(listener)
                .graceful(async {
                    let _ = rx.await;
                })
                .run(),
        );
        FakeChannels {
            state,
            base_url: format!("http://{addr}"),
            shutdown: Some(tx),
        }
    }

    pub fn twilio_url(&self) -> String {
        self.base_url.clone()
    }
    pub fn pagerduty_url(&self) -> String {
        format!("{}/v2/enqueue", self.base_url)
    }
    pub fn webhook_url(&self) -> String {
        format!("{}/hook/beacon?token=hook-url-token-93e1", self.base_url)
    }
    pub fn slack_url(&self) -> String {
        format!("{}/services/T000/B000/slack-url-token-77aa", self.base_url)
    }
    pub fn teams_url(&self) -> String {
        format!(
            "{}/workflows/abc/triggers/manual/paths/invoke?sig=teams-url-token-41cd",
            self.base_url
        )
    }

    /// Answer 503 to every request while `down`.
    pub fn set_down(&self, peer: Peer, down: bool) {
        self.state.lock().unwrap().down.insert(peer, down);
    }

    /// Fail the next `n` requests with `status` (and `Retry-After`).
    pub fn fail_next(&self, peer: Peer, n: usize, status: u16, retry_after: Option<u64>) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(peer, (n, status, retry_after));
    }

    /// Requests accepted (2xx) so far.
    pub fn accepted(&self, peer: Peer) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .accepted
            .get(&peer)
            .cloned()
            .unwrap_or_default()
    }

    /// Every request that reached the peer, accepted or not.
    pub fn attempts(&self, peer: Peer) -> usize {
        *self.state.lock().unwrap().attempts.get(&peer).unwrap_or(&0)
    }

    /// Waits until `peer` accepted at least `n` requests; returns them.
    pub async fn wait_accepted(&self, peer: Peer, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.accepted(peer);
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn peer_of(path: &str) -> Option<Peer> {
    if path.starts_with("/2010-04-01/Accounts/") && path.ends_with("/Messages.json") {
        Some(Peer::Twilio)
    } else if path == "/v2/enqueue" {
        Some(Peer::PagerDuty)
    } else if path.starts_with("/hook/") {
        Some(Peer::Webhook)
    } else if path.starts_with("/services/") {
        Some(Peer::Slack)
    } else if path.starts_with("/workflows/") {
        Some(Peer::Teams)
    } else {
        None
    }
}

fn reply(
    status: u16,
    content_type: &str,
    body: String,
    retry_after: Option<u64>,
) -> Response<String> {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type);
    if let Some(secs) = retry_after {
        r = r.header("retry-after", secs.to_string());
    }
    r.body(body).expect("response")
}

fn handle(
    state: &Mutex<State>,
    path: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Response<String> {
    let Some(peer) = peer_of(path) else {
        return reply(404, "text/plain", "no such endpoint".into(), None);
    };
    let mut state = state.lock().unwrap();
    *state.attempts.entry(peer).or_default() += 1;
    if state.down.get(&peer).copied().unwrap_or(false) {
        return reply(503, "text/plain", "Service Unavailable".into(), None);
    }
    if let Some((remaining, status, after)) = state.failures.get_mut(&peer) {
        if *remaining > 0 {
            *remaining -= 1;
            let (status, after) = (*status, *after);
            return failure(peer, status, after);
        }
    }
    let received = Received {
        path: path.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    };
    let answer = match peer {
        Peer::Twilio => twilio(&received),
        Peer::PagerDuty => pagerduty(&received),
        Peer::Webhook => Answer::Accept(reply(200, "text/plain", String::new(), None)),
        Peer::Slack => slack(&received),
        Peer::Teams => teams(&received),
    };
    match answer {
        Answer::Accept(ok) => {
            state.accepted.entry(peer).or_default().push(received);
            ok
        }
        Answer::Refuse(refused) => refused,
    }
}

/// A fake's verdict on a request: accepted (recorded) or refused, with the answer.
enum Answer {
    Accept(Response<String>),
    Refuse(Response<String>),
}

/// The peer's documented error for `status`.
fn failure(peer: Peer, status: u16, after: Option<u64>) -> Response<String> {
    match peer {
        Peer::Twilio => twilio_error(status, if status == 429 { 20429 } else { 20500 }, "Too Many Requests", after),
        Peer::PagerDuty if status == 429 => reply(429, "application/json", json!({"status": "throttle exceeded", "message": "Requests for this service are arriving too quickly.  Please retry later."}).to_string(), after),
        Peer::Slack if status == 429 => reply(429, "text/plain", "rate_limited".into(), after),
        _ => reply(status, "text/plain", "failure".into(), after),
    }
}

fn twilio_error(status: u16, code: u64, message: &str, after: Option<u64>) -> Response<String> {
    reply(
        status,
        "application/json",
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        })
        .to_string(),
        after,
    )
}

fn twilio(r: &Received) -> Answer {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    if r.header("authorization") != Some(expected.as_str())
        || !r.path.contains(&format!("/Accounts/{TWILIO_SID}/"))
    {
        return Answer::Refuse(twilio_error(401, 20003, "Authenticate", None));
    }
    if r.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Answer::Refuse(twilio_error(400, 20001, "Unsupported content type", None));
    }
    let form = r.form();
    let to = form.get("To").cloned().unwrap_or_default();
    if !to.starts_with('+') || to.len() < 11 || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Answer::Refuse(twilio_error(
            400,
            21211,
            "The 'To' number is not a valid phone number.",
            None,
        ));
    }
    if !form.contains_key("From") && !form.contains_key("MessagingServiceSid") {
        return Answer::Refuse(twilio_error(
            400,
            21603,
            "A 'From' phone number is required.",
            None,
        ));
    }
    if form.get("Body").is_none_or(|b| b.is_empty()) {
        return Answer::Refuse(twilio_error(400, 21602, "Message body is required.", None));
    }
    Answer::Accept(reply(
        201,
        "application/json",
        json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "account_sid": TWILIO_SID,
            "to": to,
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": null,
            "error_message": null,
        })
        .to_string(),
        None,
    ))
}

fn pd_invalid(error: &str) -> Response<String> {
    reply(
        400,
        "application/json",
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": [error]})
            .to_string(),
        None,
    )
}

fn pagerduty(r: &Received) -> Answer {
    let event = r.json();
    if event["routing_key"].as_str() != Some(PAGERDUTY_KEY) {
        return Answer::Refuse(pd_invalid("'routing_key' is invalid"));
    }
    let action = event["event_action"].as_str().unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        return Answer::Refuse(pd_invalid("'event_action' is invalid"));
    }
    let dedup = event["dedup_key"].as_str().unwrap_or("");
    if action != "trigger" && dedup.is_empty() {
        return Answer::Refuse(pd_invalid(
            "'dedup_key' is required for acknowledge and resolve",
        ));
    }
    if dedup.len() > 255 {
        return Answer::Refuse(pd_invalid("'dedup_key' is too long"));
    }
    if action == "trigger" {
        let p = &event["payload"];
        let summary = p["summary"].as_str().unwrap_or("");
        if summary.is_empty() || summary.chars().count() > 1024 {
            return Answer::Refuse(pd_invalid("'payload.summary' is missing or too long"));
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            return Answer::Refuse(pd_invalid("'payload.source' is missing"));
        }
        if !matches!(
            p["severity"].as_str(),
            Some("critical" | "error" | "warning" | "info")
        ) {
            return Answer::Refuse(pd_invalid("'payload.severity' is invalid"));
        }
    }
    Answer::Accept(reply(
        202,
        "application/json",
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup}).to_string(),
        None,
    ))
}

fn slack(r: &Received) -> Answer {
    let message = r.json();
    if message.is_null() {
        return Answer::Refuse(reply(400, "text/plain", "invalid_payload".into(), None));
    }
    if message["text"].as_str().is_none_or(str::is_empty) && message["blocks"].is_null() {
        return Answer::Refuse(reply(400, "text/plain", "no_text".into(), None));
    }
    Answer::Accept(reply(200, "text/plain", "ok".into(), None))
}

fn teams(r: &Received) -> Answer {
    let message = r.json();
    let card = &message["attachments"][0];
    if message["type"] != "message"
        || card["contentType"] != "application/vnd.microsoft.card.adaptive"
        || card["content"]["type"] != "AdaptiveCard"
    {
        return Answer::Refuse(reply(
            400,
            "application/json",
            json!({"error": {"code": "InvalidRequestContent", "message": "The request content is not an Adaptive Card message."}}).to_string(),
            None,
        ));
    }
    Answer::Accept(reply(202, "text/plain", String::new(), None))
}
