//! Slack incoming webhooks: `{"text": …}` (the notification fallback) with a header block
//! and a section in Slack's mrkdwn, where `&`, `<` and `>` must be escaped so caller text
//! cannot form links or mentions. Slack answers 200 `ok`; errors are 400 `invalid_payload`,
//! 403, 404 `no_service`, 410 `channel_is_archived`, 429 (with `Retry-After`) and 5xx.

use serde_json::{json, Value};

use super::channel::DeliveryError;
use super::outbox::OutboxEntry;
use crate::secret::Secret;

/// Escapes text for Slack (`&amp;`, `&lt;`, `&gt;`).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The incoming-webhook body.
pub fn payload(entry: &OutboxEntry) -> Value {
    let subject: String = entry.subject.chars().take(150).collect();
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": subject } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": escape(&entry.body) } }),
    ];
    if let Some(map) = &entry.details.map_link {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("<{}|Map>", escape(map)) },
        }));
    }
    json!({
        "text": escape(&format!("{}\n{}", entry.subject, entry.body)),
        "blocks": blocks,
    })
}

/// Posts one message to the Slack webhook.
pub async fn send(
    client: &reqwest::Client,
    url: &Secret,
    entry: &OutboxEntry,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&payload(entry))
        .map_err(|e| DeliveryError::permanent(format!("Slack message: {e}")))?;
    super::http::post_json(client, "Slack", url.expose(), body, &[]).await
}
