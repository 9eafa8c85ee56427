//! Event Hub record bodies as Graph writes them (graph-teams.md H.1–H.6).

use serde_json::json;

/// The subscription every test notification names (the test fleet's, see `seed_fleet`).
pub const SUBSCRIPTION_ID: &str = "5e1a3c2e-7b0f-4c55-9d3a-2f6f0c1b9a10";

pub const CHAT: &str = "19:3f1d6c1e9a2b4c7d8e9f00112233aabb@thread.v2";

/// A basic change notification for message `id` in `CHAT`.
pub fn basic(client_state: &str, id: &str, change_type: &str) -> String {
    json!({"value": [item(client_state, id, change_type)]}).to_string()
}

/// One `changeNotification` item.
pub fn item(client_state: &str, id: &str, change_type: &str) -> serde_json::Value {
    let resource = format!("chats('{CHAT}')/messages('{id}')");
    json!({
        "subscriptionId": SUBSCRIPTION_ID,
        "subscriptionExpirationDateTime": "2026-12-02T10:15:00.0000000+00:00",
        "changeType": change_type,
        "clientState": client_state,
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "resource": resource,
        "resourceData": {
            "id": id,
            "@odata.type": "#Microsoft.Graph.chatMessage",
            "@odata.id": resource
        }
    })
}

/// A rich notification carrying `message`, encrypted for `certificate_der`.
pub fn rich(
    client_state: &str,
    id: &str,
    message: &serde_json::Value,
    certificate_der: &[u8],
    certificate_id: &str,
) -> String {
    let sealed = beacon::graph::crypto::seal(
        certificate_der,
        certificate_id,
        message.to_string().as_bytes(),
    )
    .expect("seal");
    let mut item = item(client_state, id, "created");
    item["encryptedContent"] = json!({
        "data": sealed.data,
        "dataSignature": sealed.data_signature,
        "dataKey": sealed.data_key,
        "encryptionCertificateId": sealed.encryption_certificate_id,
        "encryptionCertificateThumbprint": sealed.encryption_certificate_thumbprint,
    });
    json!({"value": [item]}).to_string()
}

/// A chat message as Graph returns it (H.7, shortened).
pub fn chat_message(id: &str, text: &str) -> serde_json::Value {
    json!({
        "id": id,
        "messageType": "message",
        "createdDateTime": "2026-11-29T10:15:23.456Z",
        "lastModifiedDateTime": "2026-11-29T10:15:23.456Z",
        "chatId": CHAT,
        "importance": "high",
        "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": "Jordan Rivera", "userIdentityType": "aadUser"}},
        "body": {"contentType": "html", "content": format!("<p>{text}</p>")},
        "attachments": []
    })
}

/// Graph's Event Hubs validation message (H.6).
pub fn validation() -> String {
    json!({"value": [{
        "subscriptionId": "NA", "subscriptionExpirationDateTime": "NA", "clientState": "NA",
        "changeType": "Validation: Testing client application reachability for subscription Request-Id: 0b6c8d2e-3f41-4a5b-9c6d-7e8f90a1b2c3",
        "resource": "NA", "resourceData": {"@odata.type": "NA", "@odata.id": "NA", "id": "NA"}
    }]}).to_string()
}

/// The "important" chat message Teams posts when `caller` dials 911 from `location`, as the
/// fake cloud's `post_message` takes it.
pub fn emergency_message(user_id: &str, caller: &str, location: &str) -> serde_json::Value {
    json!({"importance": "high", "messageType": "message",
           "from": {"user": {"id": user_id, "displayName": caller}},
           "body": {"contentType": "html", "content": format!(
               "<p>{caller} has placed an Emergency Call to 911</p><p>Location: {location}</p>")}})
}

/// A rich change notification of an emergency-event subscription (graph-teams.md B.10)
/// carrying `event` (an `emergencyCallEvent`), encrypted for `certificate_der`; without
/// `encryptedContent` when `certificate_der` is `None`.
pub fn call_event(
    client_state: &str,
    event: &serde_json::Value,
    certificate: Option<(&[u8], &str)>,
) -> String {
    let resource = "communications/calls/getEmergencyEventsByPolicy(policyName='HQ-Emergency')";
    let mut item = json!({
        "subscriptionId": SUBSCRIPTION_ID,
        "subscriptionExpirationDateTime": "2026-12-07T10:15:00.0000000+00:00",
        "changeType": "updated",
        "clientState": client_state,
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "resource": resource,
        "resourceData": {"@odata.type": "#microsoft.graph.emergencyCallEvent", "@odata.id": resource},
    });
    if let Some((der, id)) = certificate {
        let sealed =
            beacon::graph::crypto::seal(der, id, event.to_string().as_bytes()).expect("seal");
        item["encryptedContent"] = json!({
            "data": sealed.data,
            "dataSignature": sealed.data_signature,
            "dataKey": sealed.data_key,
            "encryptionCertificateId": sealed.encryption_certificate_id,
        });
    }
    json!({"value": [item]}).to_string()
}
