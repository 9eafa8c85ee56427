//! Microsoft Teams channel messages through a Workflows webhook ("Post to a channel when a
//! webhook request is received"): the body is a `message` whose one attachment is an
//! Adaptive Card (Workflows take Adaptive Cards only, not the old connector MessageCard).
//! The flow answers 202 Accepted.

use serde_json::{json, Value};

use super::channel::DeliveryError;
use super::outbox::OutboxEntry;
use crate::secret::Secret;

/// The Workflows request body: a title, the message text and the facts.
pub fn payload(entry: &OutboxEntry) -> Value {
    let d = &entry.details;
    let mut facts = Vec::new();
    for (title, value) in [
        ("Caller", &d.caller),
        ("Call-back number", &d.callback_number),
        ("Dialled", &d.dial_string),
        ("Location", &d.location),
        ("Zone", &d.zone),
    ] {
        if let Some(value) = value {
            facts.push(json!({ "title": title, "value": value }));
        }
    }
    let color = if d.is_test {
        "Accent"
    } else if d.is_possible {
        "Warning"
    } else {
        "Attention"
    };
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": entry.subject,
            "weight": "Bolder",
            "size": "Large",
            "color": color,
            "wrap": true,
        }),
        json!({ "type": "TextBlock", "text": entry.body, "wrap": true }),
    ];
    if !facts.is_empty() {
        body.push(json!({ "type": "FactSet", "facts": facts }));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(map) = &d.map_link {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Map", "url": map }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// Posts one message to the Teams workflow.
pub async fn send(
    client: &reqwest::Client,
    url: &Secret,
    entry: &OutboxEntry,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&payload(entry))
        .map_err(|e| DeliveryError::permanent(format!("Teams card: {e}")))?;
    super::http::post_json(client, "Teams workflow", url.expose(), body, &[]).await
}
