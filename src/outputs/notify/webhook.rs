//! The generic JSON webhook: one POST per message with the facts as JSON, an
//! `X-Beacon-Delivery` header (the outbox id, so a receiver can drop a repeat after a crash
//! between its answer and our record), and with `webhook_secret` set an
//! `X-Beacon-Signature: sha256=<hex>` header — HMAC-SHA256 of the exact body bytes.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::json;

use super::channel::DeliveryError;
use super::outbox::OutboxEntry;
use crate::secret::Secret;

/// Header with the outbox id of the message.
pub const DELIVERY_HEADER: &str = "X-Beacon-Delivery";
/// Header with the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Beacon-Signature";

/// The JSON body of one message.
pub fn payload(id: &str, entry: &OutboxEntry) -> serde_json::Value {
    let d = &entry.details;
    json!({
        "id": id,
        "event": entry.kind,
        "call_key": entry.call_key,
        "subject": entry.subject,
        "text": entry.body,
        "caller": d.caller,
        "callback_number": d.callback_number,
        "location": d.location,
        "map_link": d.map_link,
        "dial_string": d.dial_string,
        "zone": d.zone,
        "is_test": d.is_test,
        "is_possible": d.is_possible,
        "message": d.message,
        "raised_at": d.raised_at,
        "who": d.who,
        "device": d.device,
    })
}

/// `sha256=<lower-case hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &Secret, body: &[u8]) -> Result<String, DeliveryError> {
    let fail = |e: openssl::error::ErrorStack| {
        DeliveryError::permanent(format!("cannot sign the webhook body: {e}"))
    };
    let key = PKey::hmac(secret.expose().as_bytes()).map_err(fail)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key).map_err(fail)?;
    signer.update(body).map_err(fail)?;
    let mac = signer.sign_to_vec().map_err(fail)?;
    Ok(format!(
        "sha256={}",
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Sends one message to the webhook.
pub async fn send(
    client: &reqwest::Client,
    url: &Secret,
    secret: Option<&Secret>,
    id: &str,
    entry: &OutboxEntry,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&payload(id, entry))
        .map_err(|e| DeliveryError::permanent(format!("webhook body: {e}")))?;
    let mut headers = vec![(DELIVERY_HEADER, id.to_string())];
    if let Some(secret) = secret {
        headers.push((SIGNATURE_HEADER, signature(secret, &body)?));
    }
    super::http::post_json(client, "webhook", url.expose(), body, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?").ok();
        assert_eq!(
            sig.as_deref(),
            Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }
}
