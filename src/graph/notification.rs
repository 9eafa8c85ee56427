//! Decodes an Event Hub record body — a Graph `changeNotificationCollection` — into typed
//! items (graph-teams.md C.1, H.1–H.6). Pure: bytes in, values out, never a panic.
//!
//! Field names are matched case-insensitively (Microsoft's own samples disagree on casing) and
//! unknown fields are ignored. A body that is not JSON or not a collection is an error for the
//! whole record; a single malformed item inside a good collection is an error for that item
//! only, so its neighbours still get through.

use serde_json::{Map, Value};

/// One item of a collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A message was created, updated or deleted.
    Change(ChangeNotification),
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed`.
    Lifecycle(LifecycleNotification),
    /// A Graph emergency call event (graph-teams.md B.10): always rich.
    CallEvent(CallEventNotification),
    /// Graph's Event Hubs reachability test at subscription creation: ignored.
    Validation,
}

/// A change notification for one chat message.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeNotification {
    pub subscription_id: String,
    pub tenant_id: Option<String>,
    /// Echo of the subscription's secret `clientState`; compare, never log.
    pub client_state: Option<String>,
    pub change_type: ChangeType,
    pub resource: String,
    pub chat_id: String,
    pub message_id: String,
    /// Present for rich notifications (`includeResourceData`).
    pub encrypted: Option<EncryptedContent>,
}

/// A change notification of an emergency-event subscription
/// (`communications/calls/getEmergencyEventsByPolicy(policyName='…')`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallEventNotification {
    pub subscription_id: String,
    pub tenant_id: Option<String>,
    /// Echo of the subscription's secret `clientState`; compare, never log.
    pub client_state: Option<String>,
    pub resource: String,
    /// The event, encrypted: these subscriptions are rich only.
    pub encrypted: EncryptedContent,
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// A lifecycle event for a subscription (graph-teams.md C.4).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleNotification {
    pub subscription_id: String,
    pub tenant_id: Option<String>,
    pub client_state: Option<String>,
    pub event: LifecycleEvent,
}

/// Which lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleEvent {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

/// `encryptedContent` of a rich notification (graph-teams.md C.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedContent {
    pub data: String,
    pub data_key: String,
    pub data_signature: String,
    pub encryption_certificate_id: String,
    pub encryption_certificate_thumbprint: Option<String>,
}

/// Why a whole record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a change notification collection: {0}")]
    NotACollection(&'static str),
}

/// Why one item was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("item is not a JSON object")]
    NotAnObject,
    #[error("item has no {0}")]
    Missing(&'static str),
    #[error("unknown changeType '{0}'")]
    UnknownChangeType(String),
    #[error("unknown lifecycleEvent '{0}'")]
    UnknownLifecycleEvent(String),
    #[error("resource is not a chat message: {0}")]
    NotAChatMessage(String),
    #[error("encryptedContent has no {0}")]
    IncompleteEncryptedContent(&'static str),
    #[error("an emergency call event without encryptedContent (these are rich only)")]
    CallEventNotEncrypted,
}

/// Decodes one record body.
pub fn decode(body: &[u8]) -> Result<Vec<Result<Item, ItemError>>, RecordError> {
    decode_parsed(&parse(body)?)
}

/// A record body as JSON, for [`decode_parsed`] and [`kept_item`] (ingest parses each
/// record once).
pub fn parse(body: &[u8]) -> Result<Value, RecordError> {
    serde_json::from_slice(body).map_err(|e| RecordError::NotJson(e.to_string()))
}

/// [`decode`] of a body parsed already.
pub fn decode_parsed(value: &Value) -> Result<Vec<Result<Item, ItemError>>, RecordError> {
    let object = value
        .as_object()
        .ok_or(RecordError::NotACollection("the body is not a JSON object"))?;
    let items = get(object, "value")
        .and_then(Value::as_array)
        .ok_or(RecordError::NotACollection("no \"value\" array"))?;
    Ok(items.iter().map(decode_item).collect())
}

fn decode_item(value: &Value) -> Result<Item, ItemError> {
    let item = value.as_object().ok_or(ItemError::NotAnObject)?;
    let change_type = text(item, "changeType");
    if change_type.is_some_and(|c| c.starts_with("Validation:")) {
        return Ok(Item::Validation);
    }
    let subscription_id = text(item, "subscriptionId")
        .ok_or(ItemError::Missing("subscriptionId"))?
        .to_string();
    let tenant_id = text(item, "tenantId").map(str::to_string);
    let client_state = text(item, "clientState").map(str::to_string);
    if let Some(event) = text(item, "lifecycleEvent") {
        let event = match event.to_ascii_lowercase().as_str() {
            "reauthorizationrequired" => LifecycleEvent::ReauthorizationRequired,
            "subscriptionremoved" => LifecycleEvent::SubscriptionRemoved,
            "missed" => LifecycleEvent::Missed,
            _ => return Err(ItemError::UnknownLifecycleEvent(clip(event))),
        };
        return Ok(Item::Lifecycle(LifecycleNotification {
            subscription_id,
            tenant_id,
            client_state,
            event,
        }));
    }
    let change_type = match change_type
        .ok_or(ItemError::Missing("changeType"))?
        .to_ascii_lowercase()
        .as_str()
    {
        "created" => ChangeType::Created,
        "updated" => ChangeType::Updated,
        "deleted" => ChangeType::Deleted,
        other => return Err(ItemError::UnknownChangeType(clip(other))),
    };
    let resource_data = get(item, "resourceData").and_then(Value::as_object);
    let resource = text(item, "resource")
        .or_else(|| resource_data.and_then(|d| text(d, "@odata.id")))
        .ok_or(ItemError::Missing("resource"))?
        .to_string();
    if is_call_event_resource(&resource) {
        let encrypted = match get(item, "encryptedContent") {
            None | Some(Value::Null) => return Err(ItemError::CallEventNotEncrypted),
            Some(v) => decode_encrypted(v)?,
        };
        return Ok(Item::CallEvent(CallEventNotification {
            subscription_id,
            tenant_id,
            client_state,
            resource,
            encrypted,
        }));
    }
    let (chat_id, mut message_id) =
        parse_resource(&resource).ok_or_else(|| ItemError::NotAChatMessage(clip(&resource)))?;
    if message_id.is_empty() {
        message_id = resource_data
            .and_then(|d| text(d, "id"))
            .ok_or(ItemError::Missing("message id"))?
            .to_string();
    }
    let encrypted = match get(item, "encryptedContent") {
        None | Some(Value::Null) => None,
        Some(v) => Some(decode_encrypted(v)?),
    };
    Ok(Item::Change(ChangeNotification {
        subscription_id,
        tenant_id,
        client_state,
        change_type,
        resource,
        chat_id,
        message_id,
        encrypted,
    }))
}

fn decode_encrypted(value: &Value) -> Result<EncryptedContent, ItemError> {
    let object = value
        .as_object()
        .ok_or(ItemError::IncompleteEncryptedContent("object"))?;
    let field = |name: &'static str| {
        text(object, name)
            .map(str::to_string)
            .ok_or(ItemError::IncompleteEncryptedContent(name))
    };
    Ok(EncryptedContent {
        data: field("data")?,
        data_key: field("dataKey")?,
        data_signature: field("dataSignature")?,
        encryption_certificate_id: field("encryptionCertificateId")?,
        encryption_certificate_thumbprint: text(object, "encryptionCertificateThumbprint")
            .map(str::to_string),
    })
}

/// A record body with every item's `clientState` replaced, for keeping refused records: a
/// refused notification can carry our real subscription secret, and what is kept may later be
/// shown on a page. Bodies that are not a JSON collection are returned unchanged.
pub fn redact_client_state(body: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let mut changed = false;
    // Every casing of `value`: decoding reads the exact one, else the first of the others.
    let collections = value
        .as_object_mut()
        .into_iter()
        .flat_map(|o| o.iter_mut())
        .filter(|(k, _)| k.eq_ignore_ascii_case("value"))
        .filter_map(|(_, v)| v.as_array_mut());
    for items in collections {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            for (key, v) in item.iter_mut() {
                if key.eq_ignore_ascii_case("clientState") && v.is_string() {
                    *v = Value::String("(redacted)".into());
                    changed = true;
                }
            }
        }
    }
    if changed {
        serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
    } else {
        body.to_vec()
    }
}

/// Item `index` of a record body (parsed by [`parse`]) as it arrived, for the call's page: `clientState` replaced
/// (it is our subscription's secret) and rich content's ciphertext left out (the decrypted
/// message is kept on its own). `None` when the body is not a collection with that item.
pub fn kept_item(value: &Value, index: usize) -> Option<Value> {
    // The exact key decoding reads (another casing of it is not what was admitted).
    let items = value.as_object()?.get("value")?.as_array()?;
    let mut item = items.get(index)?.as_object()?.clone();
    for (key, v) in item.iter_mut() {
        if key.eq_ignore_ascii_case("clientState") && v.is_string() {
            *v = Value::String("(redacted)".into());
        }
        if key.eq_ignore_ascii_case("encryptedContent") {
            if let Some(content) = v.as_object_mut() {
                for (name, part) in content.iter_mut() {
                    let bulky = ["data", "dataKey", "dataSignature"]
                        .iter()
                        .any(|b| name.eq_ignore_ascii_case(b));
                    if let (true, Some(text)) = (bulky, part.as_str()) {
                        *part = Value::String(format!("({} characters, not kept)", text.len()));
                    }
                }
            }
        }
    }
    Some(Value::Object(item))
}

/// Whether `resource` is an emergency-event subscription's
/// (`communications/calls/getEmergencyEventsByPolicy(…)`, any casing, optional leading `/`).
pub fn is_call_event_resource(resource: &str) -> bool {
    resource
        .trim_start_matches('/')
        .to_ascii_lowercase()
        .starts_with("communications/calls/getemergencyeventsbypolicy")
}

/// `chats('19:x@thread.v2')/messages('123')` (also `chats/…/messages/…`, any casing, with
/// an optional leading `/`, `users('…')/` prefix) → (chat id, message id). The message id
/// may be empty when only the chat is named.
pub fn parse_resource(resource: &str) -> Option<(String, String)> {
    let lower = resource.to_ascii_lowercase();
    let chats = lower.find("chats")?;
    let rest = &resource[chats + "chats".len()..];
    let (chat_id, rest) = segment(rest)?;
    let rest_lower = rest.to_ascii_lowercase();
    let message_id = match rest_lower.find("messages") {
        Some(pos) => segment(&rest[pos + "messages".len()..])?.0,
        None => String::new(),
    };
    (!chat_id.is_empty()).then_some((chat_id, message_id))
}

/// Reads `('value')rest` or `/value/rest`.
fn segment(rest: &str) -> Option<(String, &str)> {
    if let Some(inner) = rest.strip_prefix("('") {
        let end = inner.find("')")?;
        Some((inner[..end].to_string(), &inner[end + 2..]))
    } else if let Some(inner) = rest.strip_prefix('/') {
        let end = inner.find('/').unwrap_or(inner.len());
        Some((inner[..end].to_string(), &inner[end..]))
    } else {
        None
    }
}

/// Case-insensitive field lookup.
fn get<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    get(object, name).and_then(Value::as_str)
}

/// Untrusted text quoted in an error: at most 80 characters.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = r##"{"value":[{"subscriptionId":"5e1a","subscriptionExpirationDateTime":"2025-03-04T10:15:00+00:00","changeType":"created","clientState":"e911-7Qy","tenantId":"1111","resource":"chats('19:3f1d@thread.v2')/messages('1741000123456')","resourceData":{"id":"1741000123456","@odata.type":"#Microsoft.Graph.chatMessage","@odata.id":"chats('19:3f1d@thread.v2')/messages('1741000123456')"}}]}"##;

    fn single(body: &str) -> Result<Item, ItemError> {
        match decode(body.as_bytes()) {
            Ok(mut items) if items.len() == 1 => items.remove(0),
            other => panic!("expected one item, got {other:?}"),
        }
    }

    #[test]
    fn basic_notification() {
        let Ok(Item::Change(n)) = single(BASIC) else {
            panic!("not a change")
        };
        assert_eq!(n.chat_id, "19:3f1d@thread.v2");
        assert_eq!(n.message_id, "1741000123456");
        assert_eq!(n.change_type, ChangeType::Created);
        assert_eq!(n.client_state.as_deref(), Some("e911-7Qy"));
        assert!(n.encrypted.is_none());
    }

    #[test]
    fn field_names_are_case_insensitive_and_unknown_fields_ignored() {
        let body = r#"{"Value":[{"SubscriptionId":"s","ChangeType":"Updated","ClientState":"c","Resource":"Chats('19:a@thread.v2')/Messages('9')","futureField":{"x":1},"EncryptedContent":{"Data":"d","DataKey":"k","DataSignature":"s","EncryptionCertificateId":"cert-1"}}]}"#;
        let Ok(Item::Change(n)) = single(body) else {
            panic!("not a change")
        };
        assert_eq!(n.change_type, ChangeType::Updated);
        assert_eq!(
            (n.chat_id.as_str(), n.message_id.as_str()),
            ("19:a@thread.v2", "9")
        );
        assert_eq!(
            n.encrypted.map(|e| e.encryption_certificate_id),
            Some("cert-1".into())
        );
    }

    #[test]
    fn lifecycle_events() {
        for (name, event) in [
            (
                "reauthorizationRequired",
                LifecycleEvent::ReauthorizationRequired,
            ),
            ("subscriptionRemoved", LifecycleEvent::SubscriptionRemoved),
            ("missed", LifecycleEvent::Missed),
        ] {
            let body = format!(
                r#"{{"value":[{{"subscriptionId":"s","clientState":"c","lifecycleEvent":"{name}"}}]}}"#
            );
            let Ok(Item::Lifecycle(l)) = single(&body) else {
                panic!("not lifecycle: {name}")
            };
            assert_eq!(l.event, event);
        }
    }

    #[test]
    fn validation_message_is_recognised() {
        let body = r#"{"value":[{"subscriptionId":"NA","subscriptionExpirationDateTime":"NA","clientState":"NA","changeType":"Validation: Testing client application reachability for subscription Request-Id: 0b6c","resource":"NA","resourceData":{"@odata.type":"NA","@odata.id":"NA","id":"NA"}}]}"#;
        assert_eq!(single(body), Ok(Item::Validation));
    }

    #[test]
    fn bad_records_and_bad_items() {
        assert!(matches!(decode(b"\xff\x00"), Err(RecordError::NotJson(_))));
        assert!(matches!(
            decode(b"[1,2]"),
            Err(RecordError::NotACollection(_))
        ));
        assert!(matches!(
            decode(b"{\"values\":[]}"),
            Err(RecordError::NotACollection(_))
        ));
        let mixed = format!(
            r#"{{"value":[7,{{"subscriptionId":"s","changeType":"created","resource":"teams('t')/channels('c')/messages('1')"}},{}]}}"#,
            &BASIC[10..BASIC.len() - 2]
        );
        let items = decode(mixed.as_bytes()).unwrap_or_default();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Err(ItemError::NotAnObject));
        assert!(matches!(items[1], Err(ItemError::NotAChatMessage(_))));
        assert!(matches!(items[2], Ok(Item::Change(_))));
    }

    #[test]
    fn refused_bodies_keep_no_client_state() {
        let redacted = String::from_utf8(redact_client_state(BASIC.as_bytes())).unwrap_or_default();
        assert!(!redacted.contains("e911-7Qy"), "{redacted}");
        assert!(redacted.contains("(redacted)") && redacted.contains("1741000123456"));
        assert_eq!(redact_client_state(b"not json {"), b"not json {".to_vec());
    }

    #[test]
    fn resource_forms() {
        let want = Some(("19:a@thread.v2".to_string(), "17".to_string()));
        assert_eq!(
            parse_resource("chats('19:a@thread.v2')/messages('17')"),
            want
        );
        assert_eq!(parse_resource("/chats/19:a@thread.v2/messages/17"), want);
        assert_eq!(
            parse_resource("users('u')/chats('19:a@thread.v2')/messages('17')"),
            want
        );
        assert_eq!(
            parse_resource("chats('19:a@thread.v2')"),
            Some(("19:a@thread.v2".into(), String::new()))
        );
        assert_eq!(parse_resource("me/events('x')"), None);
        assert_eq!(parse_resource("chats('unterminated"), None);
    }

    #[test]
    fn a_kept_item_has_no_client_state_and_no_ciphertext() {
        let body = br#"{"value":[{"subscriptionId":"s1","clientState":"secret-state","changeType":"created","resource":"chats('19:a@thread.v2')/messages('1')"},{"subscriptionId":"s1","clientState":"secret-state","changeType":"created","resource":"chats('19:a@thread.v2')/messages('2')","encryptedContent":{"data":"QUJD","dataKey":"S0VZ","dataSignature":"U0lH","encryptionCertificateId":"c1"}}]}"#;
        let body = parse(body).unwrap();
        let second = kept_item(&body, 1).unwrap();
        let text = second.to_string();
        assert!(!text.contains("secret-state"), "{text}");
        assert!(!text.contains("QUJD") && !text.contains("S0VZ"), "{text}");
        assert_eq!(second["encryptedContent"]["encryptionCertificateId"], "c1");
        assert!(text.contains("messages('2')"));
        assert_eq!(kept_item(&body, 2), None);
        assert_eq!(kept_item(&serde_json::json!([1]), 0), None);
    }

    /// Found while writing the fuzz property (fuzz/fuzz_targets/notification_decode.rs): with
    /// two casings of `value`, only the first (in key order, `Value` < `value`) was redacted,
    /// while decoding reads the exact `value`: the kept body still held that clientState.
    #[test]
    fn redaction_covers_every_casing_of_value() {
        let body = r#"{"Value":[{"subscriptionId":"s","lifecycleEvent":"missed","clientState":"x"}],"value":[{"subscriptionId":"s","lifecycleEvent":"missed","clientState":"e911-7Qy"}],"VALUE":[{"clientState":"y"}]}"#;
        let redacted = redact_client_state(body.as_bytes());
        let text = String::from_utf8(redacted.clone()).unwrap_or_default();
        assert!(
            !text.contains("e911-7Qy") && !text.contains("\"x\"") && !text.contains("\"y\""),
            "{text}"
        );
        let Ok(items) = decode(&redacted) else {
            panic!("still a collection")
        };
        for item in items.into_iter().flatten() {
            if let Item::Lifecycle(l) = item {
                assert_eq!(l.client_state.as_deref(), Some("(redacted)"));
            }
        }
    }
}
