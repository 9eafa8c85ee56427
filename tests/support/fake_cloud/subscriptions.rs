//! Graph subscriptions (graph-teams.md B): create with the documented body checks (B.1–B.5,
//! B.7), the Event Hubs `notificationUrl` (B.4), renew/reauthorize/get/list/delete (B.8).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::emergency;
use super::errors::GraphError;
use super::identity::AccessToken;
use super::web::{graph_time, guid, json_response, Resp};
use super::{FakeOptions, GraphRequest};

/// Maximum lifetime of a Teams chatMessage subscription: 4,320 minutes (B.3).
pub const MAX_MINUTES: i64 = 4320;
/// Above this, `lifecycleNotificationUrl` is required for Teams resources (B.3).
const LIFECYCLE_REQUIRED_MINUTES: i64 = 60;
/// Shorter requested lifetimes are raised to this (B.3); the default of
/// [`FakeOptions::min_subscription_lifetime`].
pub const MIN_MINUTES: i64 = 45;
/// `clientState` limit (B.5: 128 per the subscription resource; 255 on changeNotification).
const CLIENT_STATE_MAX: usize = 128;
/// `encryptionCertificateId` limit (B.7).
const CERTIFICATE_ID_MAX: usize = 128;
const LIFECYCLE_REQUIRED: &str = "lifecycleNotificationUrl is a required property for subscription creation on this resource when the expirationDateTime value is set to greater than 1 hour";

/// The subscription body properties Graph knows. Graph's OData reader refuses unknown
/// properties [INF: the general OData behaviour, not stated in graph-teams.md]; this catches
/// misspelled field names in a client.
const KNOWN_PROPERTIES: &[&str] = &[
    "@odata.type",
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "lifecycleNotificationUrl",
    "clientState",
    "includeResourceData",
    "encryptionCertificate",
    "encryptionCertificateId",
    "latestSupportedTlsVersion",
    "notificationQueryOptions",
    "notificationUrlAppId",
    "blobStoreUrl",
];

/// What a subscription's resource covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// `/users/{id}/chats/getAllMessages` or `/me/chats/getAllMessages`: every chat of the
    /// user. `model_b` when `?model=B`; otherwise evaluation mode (B.1).
    AllChats { model_b: bool },
    /// `/chats/{chat-id}/messages`: one chat, no payment model (B.1).
    Chat(String),
    /// `communications/calls/getEmergencyEventsByPolicy(policyName='…')`: the emergency call
    /// events of one emergency calling policy (B.10), app-only.
    EmergencyPolicy(String),
}

/// A subscription as the fake holds it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub resource: String,
    pub coverage: Coverage,
    pub change_type: String,
    pub notification_url: String,
    /// The Event Hub (Kafka topic) the notifications go to.
    pub hub: String,
    pub lifecycle_notification_url: Option<String>,
    pub lifecycle_hub: Option<String>,
    pub expiration: DateTime<Utc>,
    pub client_state: Option<String>,
    pub include_resource_data: bool,
    pub encryption_certificate: Option<String>,
    pub encryption_certificate_id: Option<String>,
    pub latest_supported_tls_version: String,
    /// Set by a `reauthorizationRequired` lifecycle event, cleared by reauthorize or renew.
    /// While set, delivery is paused (C.4: "Delivery pauses if ignored").
    pub reauthorization_required: bool,
    pub renewals: u32,
    pub reauthorizations: u32,
}

impl Subscription {
    pub fn covers(&self, chat_id: &str) -> bool {
        match &self.coverage {
            Coverage::AllChats { .. } => true,
            Coverage::Chat(id) => id == chat_id,
            Coverage::EmergencyPolicy(_) => false,
        }
    }

    pub fn has_change_type(&self, change_type: &str) -> bool {
        self.change_type.split(',').any(|c| c.trim() == change_type)
    }

    pub fn evaluation_mode(&self) -> bool {
        self.coverage == Coverage::AllChats { model_b: false }
    }

    /// The JSON Graph returns. `clientState` is not returned by list (B.8); the fake returns
    /// it only in the creation response [UNK: GET by id not documented; list's rule used].
    fn to_json(&self, opts: &FakeOptions, with_client_state: bool) -> Value {
        json!({
            "id": self.id,
            "resource": self.resource,
            "applicationId": opts.client_id,
            "changeType": self.change_type,
            "clientState": if with_client_state { json!(self.client_state) } else { Value::Null },
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": null,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": graph_time(self.expiration),
            "creatorId": opts.user.id,
            "includeResourceData": self.include_resource_data,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": self.encryption_certificate,
            "encryptionCertificateId": self.encryption_certificate_id,
            "notificationUrlAppId": null,
        })
    }
}

/// One-shot failures for subscription creation, for the errors Graph gives in situations the
/// fake cannot produce by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFault {
    /// `400 InvalidRequest` "Invalid event hub notification url='…'" (B.5, G26).
    InvalidEventHubUrl,
    /// `400 InvalidRequest` "Client EventHubs publishing validation failed …" (B.5, G26): Graph
    /// could not publish into the hub (role, secret or tenantId problem).
    PublishingValidationFailed,
    /// `403 Forbidden`, subscription quota exceeded (B.1, B.5, G22).
    QuotaExceeded,
    /// `409 Conflict` "Subscription Id <> already exists for the requested combination" (B.5).
    Conflict,
}

#[derive(Default)]
pub struct Subscriptions {
    pub items: BTreeMap<String, Subscription>,
    /// Creation order, for listing.
    order: Vec<String>,
    pub faults: Vec<CreateFault>,
    /// Refuse Event Hubs delivery of emergency call events with this 400 message (B.10: not
    /// documented either way).
    pub emergency_event_hub_refusal: Option<String>,
    /// Show the app-only emergency-event subscriptions to delegated callers' lists too
    /// (B.8 says a delegated list holds the app's subscriptions for the signed-in user; whether
    /// app-only ones appear there is not documented).
    pub delegated_lists_call_events: bool,
}

fn bad_request(message: &str) -> GraphError {
    GraphError::new(400, "InvalidRequest", message)
}

fn not_found() -> GraphError {
    GraphError::new(404, "ResourceNotFound", "The object was not found.")
}

fn invalid_event_hub_url(url: &str) -> GraphError {
    bad_request(&format!("Invalid event hub notification url='{url}'."))
}

pub fn publishing_validation_failed(hub: &str) -> GraphError {
    bad_request(&format!("Client EventHubs publishing validation failed for event hub '{hub}'. Make sure the 'Microsoft Graph Change Tracking' service principal has the 'Azure Event Hubs Data Sender' role on the event hub."),
    )
}

fn quota_exceeded(limit: usize) -> GraphError {
    GraphError::new(403, "Forbidden", format!("The number of subscriptions tracking all chats of a user has reached the limit of {limit}."))
}

fn conflict(id: &str) -> GraphError {
    GraphError::new(
        409,
        "Conflict",
        format!("Subscription Id {id} already exists for the requested combination"),
    )
}

/// The hub named by an Event Hubs `notificationUrl` (B.4), or `None` when the URL does not
/// have the documented form:
/// `EventHub:https://<namespace>.servicebus.windows.net/eventhubname/<hub>?tenantId=<tenant>`.
/// The Key Vault variant `EventHub:https://<vault>.vault.azure.net/secrets/<secret>?tenantId=…`
/// is accepted too; the fake has no vault, so the secret's name is taken as the hub's name.
pub fn event_hub(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("EventHub:")?;
    let (base, query) = rest.split_once('?')?;
    let tenant = query
        .split('&')
        .find_map(|p| p.strip_prefix("tenantId="))
        .filter(|t| !t.is_empty())?;
    let (host, path) = base.strip_prefix("https://")?.split_once('/')?;
    let label_ok = |suffix: &str| {
        host.strip_suffix(suffix)
            .is_some_and(|n| !n.is_empty() && !n.contains('.'))
    };
    let name = if label_ok(".servicebus.windows.net") {
        path.strip_prefix("eventhubname/")?
    } else if label_ok(".vault.azure.net") {
        path.strip_prefix("secrets/")?
    } else {
        return None;
    };
    (!name.is_empty() && !name.contains('/')).then(|| (name.to_string(), tenant.to_string()))
}

/// Checks an Event Hubs URL, including that its `tenantId` names the fake tenant (domain, as
/// documented, or GUID, as some implementers pass it; B.4). A wrong tenant means Graph cannot
/// publish: "publishing validation failed".
fn check_url(opts: &FakeOptions, url: &str) -> Result<String, GraphError> {
    let (hub, tenant) = event_hub(url).ok_or_else(|| invalid_event_hub_url(url))?;
    if !tenant.eq_ignore_ascii_case(&opts.tenant_domain)
        && !tenant.eq_ignore_ascii_case(&opts.tenant_id)
    {
        return Err(publishing_validation_failed(&hub));
    }
    Ok(hub)
}

/// The resource's coverage (B.1), or the error Graph gives.
fn coverage(opts: &FakeOptions, resource: &str) -> Result<Coverage, GraphError> {
    if resource.starts_with("http://") || resource.starts_with("https://") {
        return Err(bad_request(&format!(
            "Resource '{resource}' must be given without the base URL."
        )));
    }
    if let Some(policy) = emergency::policy_of(resource) {
        return Ok(Coverage::EmergencyPolicy(policy));
    }
    let (path, query) = resource.split_once('?').unwrap_or((resource, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let model_b = match query {
        "" => false,
        "model=B" => true,
        // Only model B or evaluation mode for getAllMessages in delegated mode (B.1, G11).
        _ => {
            return Err(bad_request(&format!(
                "Invalid payment model '{query}' for resource '{resource}'. Supported: model=B."
            )))
        }
    };
    let all_chats = |user: &str| {
        if user == "me"
            || user.eq_ignore_ascii_case(&opts.user.id)
            || user.eq_ignore_ascii_case(&opts.user.user_principal_name)
        {
            Ok(Coverage::AllChats { model_b })
        } else {
            // [INF] A delegated caller can subscribe only to its own chats.
            Err(GraphError::new(
                403,
                "Forbidden",
                "Access to another user's chats is not allowed in delegated context.",
            ))
        }
    };
    match segments.as_slice() {
        ["users", user, "chats", "getAllMessages"] => all_chats(user),
        ["me", "chats", "getAllMessages"] => all_chats("me"),
        ["chats", "getAllMessages"] => Err(GraphError::new(403, "Forbidden", "Subscriptions to '/chats/getAllMessages' are supported with application permissions only.")),
        ["chats", chat, "messages"] if !chat.is_empty() && query.is_empty() => {
            Ok(Coverage::Chat(super::web::percent_decode(chat, false)))
        }
        _ => Err(bad_request(&format!("Resource '{resource}' is not supported for change notifications."),
        )),
    }
}

/// Parses and bounds `expirationDateTime` (B.3). Returns the effective expiry.
fn expiration(
    value: &Value,
    has_lifecycle: bool,
    opts: &FakeOptions,
    max_minutes: i64,
) -> Result<DateTime<Utc>, GraphError> {
    let text = value
        .as_str()
        .ok_or_else(|| bad_request("expirationDateTime must be a DateTimeOffset string."))?;
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| bad_request(&format!("Cannot convert '{text}' to a DateTimeOffset.")))?
        .with_timezone(&Utc);
    let now = Utc::now();
    if at <= now {
        // [UNK] B.3 documents raising short lifetimes to 45 minutes, not a past value.
        return Err(bad_request(
            "Subscription expiration must be in the future.",
        ));
    }
    if at > now + Duration::minutes(max_minutes) {
        return Err(bad_request(&format!(
            "Subscription expiration can only be {max_minutes} minutes in the future."
        )));
    }
    let minimum = Duration::from_std(opts.min_subscription_lifetime)
        .unwrap_or_else(|_| Duration::minutes(MIN_MINUTES));
    let at = at.max(now + minimum);
    if at > now + Duration::minutes(LIFECYCLE_REQUIRED_MINUTES) && !has_lifecycle {
        return Err(bad_request(LIFECYCLE_REQUIRED));
    }
    Ok(at)
}

/// B.7: base64 DER X.509 with an RSA key of 2,048–4,096 bits, not expired; id ≤ 128 chars.
fn check_certificate(
    certificate: Option<&Value>,
    id: Option<&Value>,
) -> Result<(String, String), GraphError> {
    let missing = || {
        bad_request("encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
        )
    };
    let certificate = certificate
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(missing)?;
    let id = id
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(missing)?;
    if id.chars().count() > CERTIFICATE_ID_MAX {
        return Err(bad_request(&format!("encryptionCertificateId exceeds the maximum length of {CERTIFICATE_ID_MAX} characters.")));
    }
    let invalid = || {
        bad_request("A valid encryptionCertificate was not provided. It must be a base64-encoded X.509 certificate with an RSA public key of 2048 to 4096 bits.")
    };
    let der = B64.decode(certificate.trim()).map_err(|_| invalid())?;
    let x509 = openssl::x509::X509::from_der(&der).map_err(|_| invalid())?;
    let bits = x509
        .public_key()
        .ok()
        .and_then(|k| k.rsa().ok())
        .map(|r| r.size() * 8);
    if !matches!(bits, Some(2048..=4096)) {
        return Err(invalid());
    }
    let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|_| invalid())?;
    if x509.not_after() < now {
        return Err(bad_request("The encryptionCertificate has expired."));
    }
    Ok((certificate.to_string(), id.to_string()))
}

fn optional_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, GraphError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(&format!("Invalid value for property '{key}'."))),
    }
}

fn parse_body(req: &GraphRequest) -> Result<Map<String, Value>, GraphError> {
    let json = req.header("content-type").is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    match serde_json::from_slice::<Value>(req.body).ok().filter(|_| json) {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(GraphError::new(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")),
    }
}

impl Subscriptions {
    /// Sweeps subscriptions whose expiry passed: Graph deletes them (B.8: a PATCH after expiry
    /// is a 404).
    pub fn sweep(&mut self) {
        let now = Utc::now();
        self.items.retain(|_, s| s.expiration > now);
        let items = &self.items;
        self.order.retain(|id| items.contains_key(id));
    }

    /// Validates a creation request; the caller publishes the validation message (B.6) and
    /// then calls [`Subscriptions::insert`].
    pub fn validate_create(
        &mut self,
        req: &GraphRequest,
        opts: &FakeOptions,
        caller: &AccessToken,
    ) -> Result<Subscription, GraphError> {
        self.sweep();
        let body = parse_body(req)?;
        if let Some(unknown) = body
            .keys()
            .find(|k| !KNOWN_PROPERTIES.contains(&k.as_str()))
        {
            return Err(bad_request(&format!("The property '{unknown}' does not exist on type 'microsoft.graph.subscription'. Make sure to only use property names that are defined by the type.")));
        }
        for required in [
            "changeType",
            "notificationUrl",
            "resource",
            "expirationDateTime",
        ] {
            if body.get(required).is_none_or(Value::is_null) {
                return Err(bad_request(&format!(
                    "{required} is a required property for subscription creation."
                )));
            }
        }
        let change_type = optional_string(&body, "changeType")?.unwrap_or_default();
        let kinds: Vec<&str> = change_type.split(',').map(str::trim).collect();
        if kinds
            .iter()
            .any(|k| !matches!(*k, "created" | "updated" | "deleted"))
        {
            return Err(bad_request(&format!(
                "Invalid 'changeType' attribute: '{change_type}'."
            )));
        }
        let resource = optional_string(&body, "resource")?.unwrap_or_default();
        let coverage = coverage(opts, &resource)?;
        let emergency = matches!(coverage, Coverage::EmergencyPolicy(_));
        permitted(&coverage, caller)?;
        let notification_url = optional_string(&body, "notificationUrl")?.unwrap_or_default();
        if notification_url.starts_with("https://") {
            // A webhook: the fake has no handshake to offer; it answers as Graph does when the
            // endpoint does not echo the validation token.
            return Err(bad_request("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."));
        }
        let hub = check_url(opts, &notification_url)?;
        if let (true, Some(message)) = (emergency, &self.emergency_event_hub_refusal) {
            return Err(bad_request(message));
        }
        let lifecycle_notification_url = optional_string(&body, "lifecycleNotificationUrl")?;
        let lifecycle_hub = match &lifecycle_notification_url {
            Some(url) => Some(check_url(opts, url)?),
            None => None,
        };
        let max_minutes = if emergency {
            emergency::MAX_MINUTES
        } else {
            MAX_MINUTES
        };
        let expiration = expiration(
            &body["expirationDateTime"],
            lifecycle_hub.is_some(),
            opts,
            max_minutes,
        )?;
        let client_state = optional_string(&body, "clientState")?;
        if client_state
            .as_ref()
            .is_some_and(|s| s.chars().count() > CLIENT_STATE_MAX)
        {
            return Err(bad_request(&format!(
                "clientState exceeds the maximum length of {CLIENT_STATE_MAX} characters."
            )));
        }
        let include_resource_data = match body.get("includeResourceData") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(bad_request(
                    "Invalid value for property 'includeResourceData'.",
                ))
            }
        };
        if emergency {
            emergency::check_body(&change_type, include_resource_data)?;
        }
        let (encryption_certificate, encryption_certificate_id) = if include_resource_data {
            let (c, i) = check_certificate(
                body.get("encryptionCertificate"),
                body.get("encryptionCertificateId"),
            )?;
            (Some(c), Some(i))
        } else {
            (None, None)
        };
        let latest_supported_tls_version =
            optional_string(&body, "latestSupportedTlsVersion")?.unwrap_or_else(|| "v1_2".into());
        if !matches!(
            latest_supported_tls_version.as_str(),
            "v1_0" | "v1_1" | "v1_2" | "v1_3"
        ) {
            return Err(bad_request(
                "Invalid value for property 'latestSupportedTlsVersion'.",
            ));
        }
        if let Some(existing) = self.duplicate_of(&resource, &change_type) {
            return Err(conflict(&existing.id));
        }
        let all_chats = self
            .items
            .values()
            .filter(|s| matches!(s.coverage, Coverage::AllChats { .. }))
            .count();
        if matches!(coverage, Coverage::AllChats { .. }) && all_chats >= opts.subscription_quota {
            return Err(quota_exceeded(opts.subscription_quota));
        }
        let id = guid();
        if !self.faults.is_empty() {
            return Err(match self.faults.remove(0) {
                CreateFault::InvalidEventHubUrl => invalid_event_hub_url(&notification_url),
                CreateFault::PublishingValidationFailed => publishing_validation_failed(&hub),
                CreateFault::QuotaExceeded => quota_exceeded(opts.subscription_quota),
                CreateFault::Conflict => conflict(&guid()),
            });
        }
        Ok(Subscription {
            id,
            resource,
            coverage,
            change_type,
            notification_url,
            hub,
            lifecycle_notification_url,
            lifecycle_hub,
            expiration,
            client_state,
            include_resource_data,
            encryption_certificate,
            encryption_certificate_id,
            latest_supported_tls_version,
            reauthorization_required: false,
            renewals: 0,
            reauthorizations: 0,
        })
    }

    /// The live subscription with the same `changeType` + `resource`, which makes a creation a
    /// `409 Conflict` (B.5).
    fn duplicate_of(&self, resource: &str, change_type: &str) -> Option<&Subscription> {
        let kinds = |c: &str| {
            let mut kinds: Vec<String> = c.split(',').map(|k| k.trim().to_string()).collect();
            kinds.sort_unstable();
            kinds
        };
        let (normalized, wanted) = (normalize_resource(resource), kinds(change_type));
        self.items.values().find(|s| {
            normalize_resource(&s.resource) == normalized && kinds(&s.change_type) == wanted
        })
    }

    /// Stores a validated subscription and answers `201 Created` (B.5) — or `409` when another
    /// creation of the same subscription got in while this one's validation message was
    /// published (Graph serialises them: concurrent creations give one 201, the rest 409).
    pub fn insert(&mut self, req: &GraphRequest, opts: &FakeOptions, sub: Subscription) -> Resp {
        self.sweep();
        if let Some(existing) = self.duplicate_of(&sub.resource, &sub.change_type) {
            return conflict(&existing.id).respond(req);
        }
        let mut body = sub.to_json(opts, true);
        body["@odata.context"] =
            json!(format!("{}/$metadata#subscriptions/$entity", req.graph_url));
        self.order.push(sub.id.clone());
        self.items.insert(sub.id.clone(), sub);
        json_response(201, &body, &[])
    }

    /// `GET /subscriptions` (B.8): paged via `@odata.nextLink`, no `clientState`.
    ///
    /// A delegated caller sees the app's subscriptions for the signed-in user (B.8), so not the
    /// app-only emergency-event ones; an app-only caller sees all of the app's [INF].
    pub fn list(&mut self, req: &GraphRequest, opts: &FakeOptions, caller: &AccessToken) -> Resp {
        self.sweep();
        let items = self
            .order
            .iter()
            .filter_map(|id| self.items.get(id))
            .filter(|s| {
                caller.app_only
                    || self.delegated_lists_call_events
                    || !matches!(s.coverage, Coverage::EmergencyPolicy(_))
            })
            .map(|s| s.to_json(opts, false))
            .collect();
        req.paged("subscriptions", items, opts.page_size)
    }

    pub fn get(
        &mut self,
        req: &GraphRequest,
        opts: &FakeOptions,
        id: &str,
        caller: &AccessToken,
    ) -> Resp {
        self.sweep();
        match self.items.get(id) {
            Some(s) if permitted(&s.coverage, caller).is_err() => permitted(&s.coverage, caller)
                .err()
                .map(|e| e.respond(req))
                .unwrap_or_else(|| not_found().respond(req)),
            Some(s) => {
                let mut body = s.to_json(opts, false);
                body["@odata.context"] =
                    json!(format!("{}/$metadata#subscriptions/$entity", req.graph_url));
                json_response(200, &body, &[])
            }
            None => not_found().respond(req),
        }
    }

    /// `PATCH /subscriptions/{id}` (B.8, B.7): renews (and so reauthorizes); may rotate the
    /// encryption certificate or change `notificationUrl`.
    pub fn update(
        &mut self,
        req: &GraphRequest,
        opts: &FakeOptions,
        id: &str,
        caller: &AccessToken,
    ) -> Resp {
        self.sweep();
        let Some(existing) = self.items.get(id) else {
            return not_found().respond(req);
        };
        if let Err(e) = permitted(&existing.coverage, caller) {
            return e.respond(req);
        }
        let max_minutes = match existing.coverage {
            Coverage::EmergencyPolicy(_) => emergency::MAX_MINUTES,
            _ => MAX_MINUTES,
        };
        let body = match parse_body(req) {
            Ok(b) => b,
            Err(e) => return e.respond(req),
        };
        let mut sub = existing.clone();
        let result = (|| {
            if let Some(unknown) = body
                .keys()
                .find(|k| !KNOWN_PROPERTIES.contains(&k.as_str()))
            {
                return Err(bad_request(&format!("The property '{unknown}' does not exist on type 'microsoft.graph.subscription'.")));
            }
            if let Some(url) = optional_string(&body, "notificationUrl")? {
                sub.hub = check_url(opts, &url)?;
                sub.notification_url = url;
            }
            if body.contains_key("lifecycleNotificationUrl") {
                // B.3/G4: it cannot be added (or changed) later.
                return Err(bad_request("lifecycleNotificationUrl cannot be updated; delete the subscription and create a new one."));
            }
            if let Some(value) = body.get("expirationDateTime") {
                sub.expiration = expiration(value, sub.lifecycle_hub.is_some(), opts, max_minutes)?;
            }
            if body.contains_key("encryptionCertificate")
                || body.contains_key("encryptionCertificateId")
            {
                let (c, i) = check_certificate(
                    body.get("encryptionCertificate"),
                    body.get("encryptionCertificateId"),
                )?;
                sub.encryption_certificate = Some(c);
                sub.encryption_certificate_id = Some(i);
            }
            Ok(())
        })();
        if let Err(e) = result {
            return e.respond(req);
        }
        sub.reauthorization_required = false;
        sub.renewals += 1;
        let mut body = sub.to_json(opts, false);
        body["@odata.context"] =
            json!(format!("{}/$metadata#subscriptions/$entity", req.graph_url));
        self.items.insert(sub.id.clone(), sub);
        json_response(200, &body, &[])
    }

    /// `POST /subscriptions/{id}/reauthorize` → 204 (B.8, G8).
    pub fn reauthorize(&mut self, req: &GraphRequest, id: &str, caller: &AccessToken) -> Resp {
        self.sweep();
        if let Some(Err(e)) = self.items.get(id).map(|s| permitted(&s.coverage, caller)) {
            return e.respond(req);
        }
        match self.items.get_mut(id) {
            Some(s) => {
                s.reauthorization_required = false;
                s.reauthorizations += 1;
                super::web::empty_response(204)
            }
            None => not_found().respond(req),
        }
    }

    /// `DELETE /subscriptions/{id}` → 204 (B.8).
    pub fn delete(&mut self, req: &GraphRequest, id: &str, caller: &AccessToken) -> Resp {
        self.sweep();
        if let Some(Err(e)) = self.items.get(id).map(|s| permitted(&s.coverage, caller)) {
            return e.respond(req);
        }
        match self.remove(id) {
            Some(_) => super::web::empty_response(204),
            None => not_found().respond(req),
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<Subscription> {
        self.order.retain(|i| i != id);
        self.items.remove(id)
    }
}

/// Whether `caller` may create or touch a subscription of `coverage`: emergency events need
/// the app-only token with the permission (B.10); chat resources need the delegated one (the
/// app has no application permission for chats here).
fn permitted(coverage: &Coverage, caller: &AccessToken) -> Result<(), GraphError> {
    match coverage {
        Coverage::EmergencyPolicy(_) => emergency::check_caller(caller),
        _ if caller.app_only => Err(GraphError::new(
            403,
            "Forbidden",
            "Missing role permissions on the request. API requires one of 'Chat.Read.All, Chat.ReadWrite.All'.",
        )),
        _ => Ok(()),
    }
}

/// Resources compare without a leading slash, case-insensitively (for 409).
fn normalize_resource(resource: &str) -> String {
    resource.trim_start_matches('/').to_ascii_lowercase()
}
