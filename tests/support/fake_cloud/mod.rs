//! A fake Microsoft cloud for tests: the identity platform (device code, token, refresh) and
//! Microsoft Graph (me, subscriptions, chats) on 127.0.0.1, publishing change notifications
//! into the test Kafka broker the way Graph publishes into an Event Hub.
//!
//! Written from `shared/docs/graph-teams.md` (section letters cited throughout), not from
//! Beacon's client, so that it checks the client independently. Where the document marks a
//! behaviour unknown ([UNK]) the fake takes the documented neighbour and says so.
//!
//! ```ignore
//! let cloud = FakeCloud::start(FakeOptions { kafka: true, ..FakeOptions::default() }).await;
//! // client: POST {cloud.login_url()}/{tenant}/oauth2/v2.0/devicecode, … {cloud.graph_url()}/me
//! cloud.approve(&cloud.pending_user_codes()[0]);
//! cloud.post_message(CHAT, message).await; // → notification into the subscription's hub
//! ```

mod app_identity;
pub mod calls;
mod chats;
mod drops;
mod emergency;
mod errors;
mod faults;
mod graph;
pub mod hub;
mod identity;
mod publish;
mod subscriptions;
mod web;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;
use warp::http::{HeaderMap, Method};
use warp::Filter;

#[allow(unused_imports)]
// public API for the tests that place calls; not every test crate uses it
pub use app_identity::AppGrant;
#[allow(unused_imports)]
pub use calls::{CallLocation, CallPlan, Delivered, Delivery, PlacedCall, PlannedCaller};
pub use faults::{Fault, FaultKind, RecordedRequest};
pub use identity::GrantFailure;
pub use publish::{LifecycleEvent, Published};
#[allow(unused_imports)]
// public API; not every test crate that includes `support` uses all of it
pub use subscriptions::{Coverage, CreateFault, Subscription};

use web::{form_pairs, percent_decode, Resp};

/// The signed-in service account.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
}

/// How the fake cloud behaves. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// The tenant GUID; `{tenant}` in identity URLs may be this, `tenant_domain`,
    /// `organizations` or `common` (A.1). Also `tenantId` in notifications (C.1).
    pub tenant_id: String,
    /// The tenant's domain, the documented `tenantId` of EventHub URLs (B.4).
    pub tenant_domain: String,
    /// The app registration's client id.
    pub client_id: String,
    /// The registration's secret, if it has one (A.4).
    pub client_secret: Option<String>,
    /// "Allow public client flows" (A.4): true → a presented secret is refused
    /// (AADSTS700025); false → a secret is demanded (AADSTS7000218) and checked.
    pub public_client_flows: bool,
    pub user: FakeUser,
    /// `expires_in` of device codes (A.2: default 900 s).
    pub device_code_lifetime: Duration,
    /// `interval` of device codes in seconds; polls closer together get `slow_down` (A.3).
    pub poll_interval_secs: u64,
    /// Access-token lifetime (`expires_in`, e.g. 3599 s, A.3).
    pub access_token_lifetime: Duration,
    /// Whether a refresh token stays valid after it was used (A.5: it does, the default).
    pub keep_used_refresh_tokens: bool,
    /// Page size of list responses (`@odata.nextLink` paging) when the client sets no `$top`.
    pub page_size: usize,
    /// Publish into the test broker (`BEACON_TEST_KAFKA_*`); otherwise only into
    /// [`FakeCloud::published`]. With Kafka, creating a subscription for a hub (topic) that
    /// does not exist fails like Graph: "Client EventHubs publishing validation failed".
    pub kafka: bool,
    /// Notifications per evaluation-mode subscription set (getAllMessages without
    /// `?model=B`) before they stop silently (B.1: 500 a month).
    pub evaluation_quota: u64,
    /// Subscriptions tracking all chats of the user (B.1: 10); more is a 403.
    pub subscription_quota: usize,
    /// Put the notifications of one change for several subscriptions that share a hub into
    /// one record (C.1: `value[]` may hold several subscriptions); otherwise one record each.
    pub batch_notifications: bool,
    /// Shorter requested subscription lifetimes are raised to this (B.3: 45 minutes). Tests
    /// of renewal shorten it so that a lifetime passes in seconds.
    pub min_subscription_lifetime: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            tenant_id: "11111111-2222-3333-4444-555555555555".into(),
            tenant_domain: "contoso.com".into(),
            client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
            client_secret: None,
            public_client_flows: true,
            user: FakeUser {
                id: "48d31887-5fad-4d73-a9f5-3c356e68a038".into(),
                user_principal_name: "e911-desk@contoso.com".into(),
                display_name: "E911 Desk".into(),
            },
            device_code_lifetime: Duration::from_secs(900),
            poll_interval_secs: 5,
            access_token_lifetime: Duration::from_secs(3599),
            keep_used_refresh_tokens: true,
            page_size: 100,
            kafka: false,
            evaluation_quota: 500,
            subscription_quota: 10,
            batch_notifications: false,
            min_subscription_lifetime: Duration::from_secs(60 * subscriptions::MIN_MINUTES as u64),
        }
    }
}

/// Everything behind the lock.
#[derive(Default)]
struct State {
    identity: identity::Identity,
    subscriptions: subscriptions::Subscriptions,
    chats: chats::Chats,
    faults: faults::Faults,
    switches: publish::Switches,
    drops: drops::Drops,
}

impl State {
    /// The change notifications Graph would send for a message change (C.1, G11 quota).
    fn notifications(
        &mut self,
        opts: &FakeOptions,
        chat_id: &str,
        message: &Value,
        change_type: &str,
    ) -> Vec<Published> {
        self.subscriptions.sweep();
        if !self.switches.enabled {
            return Vec::new();
        }
        let message_id = message["id"].as_str().unwrap_or_default();
        let dropped = self.drops.take(chat_id, message_id, change_type);
        let mut out = Vec::new();
        for sub in self.subscriptions.items.values() {
            if !sub.covers(chat_id)
                || !sub.has_change_type(change_type)
                || sub.reauthorization_required
            {
                continue;
            }
            if sub.evaluation_mode() {
                if self.switches.evaluation_used >= opts.evaluation_quota {
                    continue;
                }
                self.switches.evaluation_used += 1;
            }
            out.push(publish::change(opts, sub, chat_id, message, change_type));
        }
        let records = publish::collections(out, opts.batch_notifications);
        if dropped {
            self.drops.hold(records);
            return Vec::new();
        }
        records
    }
}

pub(crate) struct Inner {
    options: FakeOptions,
    state: Mutex<State>,
    publisher: Arc<publish::Publisher>,
    base_url: String,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message arrives in a chat (see [`FakeCloud::post_message`]).
    async fn post(&self, chat_id: &str, message: Value) -> String {
        let (id, records) = {
            let mut state = self.state();
            let message = state.chats.post(chat_id, message);
            let records = state.notifications(&self.options, chat_id, &message, "created");
            (
                message["id"].as_str().unwrap_or_default().to_string(),
                records,
            )
        };
        self.publisher.deliver(records).await;
        id
    }

    /// Publishes an emergency call event as a rich notification of the policy's live
    /// subscription (B.10). False when there is none (nobody subscribed: Graph tells nobody),
    /// it awaits reauthorization, or publishing is switched off.
    async fn publish_call_event(&self, policy: &str, event_id: &str, event: &Value) -> bool {
        let record = {
            let mut state = self.state();
            state.subscriptions.sweep();
            if !state.switches.enabled {
                return false;
            }
            let sub = state.subscriptions.items.values().find(|s| {
                s.coverage == Coverage::EmergencyPolicy(policy.to_string())
                    && !s.reauthorization_required
            });
            match sub {
                Some(sub) => publish::collections(
                    vec![publish::call_event(&self.options, sub, event_id, event)],
                    false,
                ),
                None => return false,
            }
        };
        self.publisher.deliver(record).await;
        true
    }
}

/// A Graph request, decoded.
pub(crate) struct GraphRequest<'a> {
    method: &'a str,
    raw_path: &'a str,
    /// Decoded path segments after `/v1.0`.
    segments: Vec<String>,
    raw_query: &'a str,
    params: Vec<(String, String)>,
    headers: &'a HeaderMap,
    body: &'a [u8],
    graph_url: String,
    base_url: String,
}

impl GraphRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn client_request_id(&self) -> Option<&str> {
        self.header("client-request-id")
    }

    /// An OData collection page with `@odata.nextLink` (B.8, G.6).
    fn paged(&self, context: &str, items: Vec<Value>, size: usize) -> Resp {
        let skip = web::param(&self.params, "$skiptoken");
        let rest = web::query_without_skiptoken(self.raw_query);
        let mut next = format!("{}{}", self.base_url, self.raw_path);
        if !rest.is_empty() {
            next = format!("{next}?{rest}");
        }
        let context = format!("{}/$metadata#{context}", self.graph_url);
        match web::page(&context, items, skip, size, &next) {
            Ok(body) => web::json_response(200, &body, &[]),
            Err(message) => errors::graph(400, "BadRequest", &message, self.client_request_id()),
        }
    }
}

/// The running fake. Stops when dropped.
pub struct FakeCloud {
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeCloud {
    /// Starts the server on 127.0.0.1 with an ephemeral port.
    pub async fn start(options: FakeOptions) -> FakeCloud {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake cloud");
        let addr = listener.local_addr().expect("local address");
        let inner = Arc::new(Inner {
            publisher: Arc::new(publish::Publisher::new(options.kafka)),
            options,
            state: Mutex::new(State::default()),
            base_url: format!("http://{addr}"),
        });
        let shared = Arc::clone(&inner);
        let routes = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .and_then(
                move |method,
                      path: warp::path::FullPath,
                      query,
                      headers,
                      body: warp::hyper::body::Bytes| {
                    let inner = Arc::clone(&shared);
                    async move {
                        let path = path.as_str().to_string();
                        Ok::<_, warp::Rejection>(
                            handle(inner, method, path, query, headers, body.to_vec()).await,
                        )
                    }
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
        FakeCloud {
            inner,
            shutdown: Some(tx),
        }
    }

    pub fn options(&self) -> &FakeOptions {
        &self.inner.options
    }

    /// `http://127.0.0.1:PORT`; clients append `/{tenant}/oauth2/v2.0/devicecode` and `/token`.
    pub fn login_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.inner.base_url)
    }

    // --- identity controls (A) -----------------------------------------------------------

    /// The user signs in and consents on the second device: the next poll gets tokens.
    /// False when the code is unknown or no longer pending.
    pub fn approve(&self, user_code: &str) -> bool {
        self.inner.state().identity.set_status(user_code, true)
    }

    /// The user refuses: polls get `authorization_declined`.
    pub fn decline(&self, user_code: &str) -> bool {
        self.inner.state().identity.set_status(user_code, false)
    }

    /// Ends a device code's life now: polls get `expired_token`.
    pub fn expire_device_code(&self, user_code: &str) -> bool {
        self.inner.state().identity.expire_device_code(user_code)
    }

    /// User codes waiting for the human, for tests that drive a client which shows the code.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.inner.state().identity.pending_user_codes()
    }

    /// One refresh token stops working with `failure` (A.6).
    pub fn revoke_refresh_token(&self, refresh_token: &str, failure: GrantFailure) -> bool {
        self.inner
            .state()
            .identity
            .revoke_refresh_token(refresh_token, failure)
    }

    /// Every refresh token issued so far stops working with `failure` (A.6), e.g. after a
    /// password change (`PasswordChanged`) or a Conditional Access change. Access tokens
    /// already issued stay valid until they expire.
    pub fn revoke_session(&self, failure: GrantFailure) {
        self.inner.state().identity.revoke_all(failure);
    }

    /// The next `times` token requests get `temporarily_unavailable` (A.6).
    pub fn token_endpoint_unavailable(&self, times: u32) {
        self.inner.state().identity.set_unavailable(times);
    }

    /// Access tokens issued from now on live `lifetime` (`expires_in`, A.3): Entra may hand out
    /// shorter-lived tokens than before (token lifetime policies, Conditional Access).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.inner
            .state()
            .identity
            .set_access_token_lifetime(lifetime);
    }

    /// Every access token issued so far expires now (Graph answers 401).
    pub fn expire_access_tokens(&self) {
        self.inner.state().identity.expire_access_tokens();
    }

    // --- subscriptions (B) ---------------------------------------------------------------

    /// The live subscriptions.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let mut state = self.inner.state();
        state.subscriptions.sweep();
        state.subscriptions.items.values().cloned().collect()
    }

    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.subscriptions().into_iter().find(|s| s.id == id)
    }

    /// The next subscription creation(s) fail with these errors, in order.
    pub fn fail_subscription_creation(&self, fault: CreateFault, times: u32) {
        let mut state = self.inner.state();
        for _ in 0..times {
            state.subscriptions.faults.push(fault);
        }
    }

    /// The subscription expires now: Graph deletes it silently (a later PATCH is 404, B.8).
    pub fn expire_subscription(&self, id: &str) -> bool {
        self.inner.state().subscriptions.remove(id).is_some()
    }

    /// Publishes a lifecycle event (H.3–H.5) into the subscription's lifecycle hub.
    /// `ReauthorizationRequired` also pauses delivery until the client reauthorizes or renews
    /// (C.4); `SubscriptionRemoved` also removes the subscription. Returns whether a record
    /// was published (not when the subscription has no `lifecycleNotificationUrl`, is unknown,
    /// or lifecycle delivery is switched off).
    pub async fn send_lifecycle(&self, subscription_id: &str, event: LifecycleEvent) -> bool {
        let record = {
            let mut state = self.inner.state();
            state.subscriptions.sweep();
            let Some(sub) = state.subscriptions.items.get_mut(subscription_id) else {
                return false;
            };
            match event {
                LifecycleEvent::ReauthorizationRequired => sub.reauthorization_required = true,
                LifecycleEvent::SubscriptionRemoved => {}
                LifecycleEvent::Missed => {}
            }
            let record = publish::lifecycle(&self.inner.options, sub, event);
            if event == LifecycleEvent::SubscriptionRemoved {
                state.subscriptions.remove(subscription_id);
            }
            record.filter(|_| state.switches.lifecycle_delivery)
        };
        let published = record.is_some();
        self.inner
            .publisher
            .deliver(record.into_iter().collect())
            .await;
        published
    }

    /// Graph removes the subscription (e.g. the user must re-authenticate) and sends
    /// `subscriptionRemoved` (H.4). Returns whether the subscription existed.
    pub async fn remove_subscription(&self, id: &str) -> bool {
        let existed = self.subscription(id).is_some();
        self.send_lifecycle(id, LifecycleEvent::SubscriptionRemoved)
            .await;
        existed
    }

    // --- the app registration's credentials and consent (client credentials) -------------

    /// An admin uploads a certificate to the app registration (PEM, DER, or base64 DER): client
    /// assertions signed with its key are accepted from now on.
    pub fn upload_app_certificate(&self, certificate: &[u8]) {
        self.inner.state().identity.app.upload(certificate);
    }

    /// An admin removes every uploaded certificate.
    pub fn remove_app_certificates(&self) {
        self.inner.state().identity.app.remove_certificates();
    }

    /// An admin grants (true) or revokes (false) consent for the application permission
    /// `CallEvents-Emergency.Read.All`. Tokens issued from now on carry it in `roles` or not;
    /// tokens already issued keep what they had until they expire, as with Entra. Not granted
    /// until a test grants it.
    pub fn grant_app_consent(&self, granted: bool) {
        let roles = &mut self.inner.state().identity.app.roles;
        roles.clear();
        if granted {
            roles.push(app_identity::EMERGENCY_ROLE.to_string());
        }
    }

    /// The client-credentials grants answered so far, oldest first.
    pub fn app_grants(&self) -> Vec<app_identity::AppGrant> {
        self.inner.state().identity.app.issued.clone()
    }

    /// `Some(message)`: Graph refuses `EventHub:` delivery of emergency call events with this
    /// 400 message (Microsoft does not document whether it accepts it, B.10); `None`: accepts.
    pub fn refuse_event_hubs_for_call_events(&self, message: Option<&str>) {
        self.inner.state().subscriptions.emergency_event_hub_refusal = message.map(str::to_string);
    }

    /// `true`: the service account's (delegated) `GET /subscriptions` lists the app-only
    /// emergency-event subscriptions too (not documented either way; off by default).
    pub fn list_call_events_to_delegated(&self, listed: bool) {
        self.inner.state().subscriptions.delegated_lists_call_events = listed;
    }

    /// The live emergency-event subscription of `policy`, if any.
    pub fn call_event_subscription(&self, policy: &str) -> Option<Subscription> {
        self.subscriptions()
            .into_iter()
            .find(|s| s.coverage == Coverage::EmergencyPolicy(policy.to_string()))
    }

    // --- chats and publishing (C, D) -----------------------------------------------------

    /// Adds a chat (`chat_type`: `group`, `oneOnOne`, `meeting`). `post_message` adds
    /// unknown chats as group chats by itself.
    pub fn add_chat(&self, chat_id: &str, topic: Option<&str>, chat_type: &str) {
        self.inner.state().chats.add_chat(chat_id, topic, chat_type);
    }

    /// A message arrives in a chat: stored for GETs, and a `created` notification goes to
    /// every covering subscription's hub. Returns the message id.
    pub async fn post_message(&self, chat_id: &str, message: Value) -> String {
        self.inner.post(chat_id, message).await
    }

    /// A message is edited (`patch`'s top-level fields replace the message's): `updated`.
    /// False when the message is unknown or deleted.
    pub async fn edit_message(&self, chat_id: &str, message_id: &str, patch: Value) -> bool {
        self.change(chat_id, "updated", |chats| {
            chats.edit(chat_id, message_id, &patch)
        })
        .await
    }

    /// A message is deleted: `deleted`; GETs answer 404 afterwards.
    pub async fn delete_message(&self, chat_id: &str, message_id: &str) -> bool {
        self.change(chat_id, "deleted", |chats| {
            chats.delete(chat_id, message_id)
        })
        .await
    }

    async fn change(
        &self,
        chat_id: &str,
        change_type: &str,
        f: impl FnOnce(&mut chats::Chats) -> Option<Value>,
    ) -> bool {
        let records = {
            let mut state = self.inner.state();
            let Some(message) = f(&mut state.chats) else {
                return false;
            };
            state.notifications(&self.inner.options, chat_id, &message, change_type)
        };
        self.inner.publisher.deliver(records).await;
        true
    }

    /// `false`: change notifications stop silently (evaluation quota exhausted, G11/G.7).
    pub fn set_publishing(&self, enabled: bool) {
        self.inner.state().switches.enabled = enabled;
    }

    /// `false`: lifecycle events are not delivered into the hub (B.9 [UNK]).
    pub fn set_lifecycle_delivery(&self, enabled: bool) {
        self.inner.state().switches.lifecycle_delivery = enabled;
    }

    /// The notifications of the next `changes` message changes are dropped silently: not
    /// published, no lifecycle event, the message still in Graph (B.11).
    pub fn drop_next_notifications(&self, changes: u32) {
        self.inner.state().drops.drop_next(changes);
    }

    /// Publishes the notifications dropped so far after all, late (a delivery Graph held back
    /// rather than lost). Returns how many records went out.
    pub async fn deliver_dropped_late(&self) -> usize {
        let records = self.inner.state().drops.release();
        let count = records.len();
        self.inner.publisher.deliver(records).await;
        count
    }

    /// The changes whose notifications were dropped: (chat id, message id, change type).
    pub fn dropped_notifications(&self) -> Vec<(String, String, String)> {
        self.inner.state().drops.dropped.clone()
    }

    /// Notifications counted against the evaluation quota so far.
    pub fn evaluation_notifications(&self) -> u64 {
        self.inner.state().switches.evaluation_used
    }

    /// Every record published so far (validation messages, notifications, lifecycle events).
    pub fn published(&self) -> Vec<Published> {
        self.inner.publisher.log()
    }

    // --- faults and the request log ------------------------------------------------------

    pub fn inject(&self, fault: Fault) {
        self.inner.state().faults.add(fault);
    }

    /// The next `times` requests under `path_prefix` ("" = any) get 429 with `Retry-After`.
    pub fn throttle(&self, path_prefix: &str, times: u32, retry_after_secs: u64) {
        self.inject(Fault {
            method: None,
            path_prefix: path_prefix.into(),
            kind: FaultKind::Throttle { retry_after_secs },
            times,
        });
    }

    /// The next `times` requests under `path_prefix` get `status` (500, 502, 503, 504).
    pub fn server_error(&self, path_prefix: &str, times: u32, status: u16) {
        self.inject(Fault {
            method: None,
            path_prefix: path_prefix.into(),
            kind: FaultKind::ServerError { status },
            times,
        });
    }

    /// The next `times` requests under `path_prefix` are answered after `delay`.
    pub fn delay(&self, path_prefix: &str, times: u32, delay: Duration) {
        self.inject(Fault {
            method: None,
            path_prefix: path_prefix.into(),
            kind: FaultKind::Delay(delay),
            times,
        });
    }

    pub fn clear_faults(&self) {
        self.inner.state().faults.clear();
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.state().faults.log.clone()
    }

    /// The requests whose path starts with `path_prefix`.
    pub fn requests_to(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .collect()
    }
}

async fn handle(
    inner: Arc<Inner>,
    method: Method,
    raw_path: String,
    raw_query: String,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Resp {
    let method = method.as_str().to_string();
    let segments: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let path = format!("/{}", segments.join("/"));
    let index = {
        let mut state = inner.state();
        let recorded: BTreeMap<String, String> = headers
            .iter()
            .map(|(k, v)| {
                let value = if k == "authorization" {
                    "<redacted>".to_string()
                } else {
                    v.to_str().unwrap_or("").to_string()
                };
                (k.as_str().to_string(), value)
            })
            .collect();
        state.faults.log.push(RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query: raw_query.clone(),
            authorized: headers.contains_key("authorization"),
            headers: recorded,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
            at_utc: chrono::Utc::now(),
            status: 0,
        });
        state.faults.log.len() - 1
    };
    let (delay, failure) = inner.state().faults.take(&method, &path);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let identity = segments.get(1).is_some_and(|s| s == "oauth2");
    let resp = match failure {
        Some(kind) => fault_response(&kind, identity, &headers),
        None => {
            route(
                &inner, &method, &raw_path, &segments, &raw_query, &headers, &body,
            )
            .await
        }
    };
    inner.state().faults.log[index].status = resp.status().as_u16();
    resp
}

async fn route(
    inner: &Arc<Inner>,
    method: &str,
    raw_path: &str,
    segments: &[String],
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let opts = &inner.options;
    let body_text = String::from_utf8_lossy(body);
    match (method, parts.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "devicecode"]) => inner
            .state()
            .identity
            .device_authorization(opts, tenant, &body_text),
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
            let token_url = format!("{}/{tenant}/oauth2/v2.0/token", inner.base_url);
            inner
                .state()
                .identity
                .token(opts, tenant, &body_text, authorization, &token_url)
        }
        (_, ["v1.0", ..]) => {
            let req = GraphRequest {
                method,
                raw_path,
                segments: segments[1..].to_vec(),
                raw_query,
                params: form_pairs(raw_query),
                headers,
                body,
                graph_url: format!("{}/v1.0", inner.base_url),
                base_url: inner.base_url.clone(),
            };
            graph::handle(inner, &req).await
        }
        _ => web::empty_response(404),
    }
}

/// An injected 429 or 5xx, in the shape of the surface it hits.
fn fault_response(kind: &FaultKind, identity: bool, headers: &HeaderMap) -> Resp {
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok());
    match (kind, identity) {
        (FaultKind::Throttle { retry_after_secs }, false) => errors::graph_with_headers(
            429,
            "TooManyRequests",
            "Too many requests.",
            client_request_id,
            &[("retry-after", retry_after_secs.to_string())],
        ),
        (FaultKind::Throttle { retry_after_secs }, true) => {
            let mut resp =
                errors::identity(429, "temporarily_unavailable", None, "Too many requests.");
            resp.headers_mut().insert(
                "retry-after",
                retry_after_secs.to_string().parse().expect("header"),
            );
            resp
        }
        (FaultKind::ServerError { status }, false) => {
            let code = match status {
                502 => "BadGateway",
                503 => "ServiceUnavailable",
                504 => "GatewayTimeout",
                _ => "InternalServerError",
            };
            errors::graph(
                *status,
                code,
                "The service encountered an error.",
                client_request_id,
            )
        }
        (FaultKind::ServerError { status }, true) => errors::identity(
            *status,
            "temporarily_unavailable",
            None,
            "The service is temporarily unavailable.",
        ),
        (FaultKind::Delay(_), _) => unreachable!("delays are not failures"),
    }
}
