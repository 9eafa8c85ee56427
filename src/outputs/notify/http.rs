//! The HTTP side shared by the web channels (webhook, Teams, Slack, PagerDuty, Twilio): one
//! client with a timeout, and the JSON POST whose answer is classified into delivered,
//! retryable or permanent. Nothing here logs or returns a URL (webhook URLs carry tokens).

use std::time::Duration;

use super::channel::{retry_after, DeliveryError};

/// A client for the web channels, trusting the shared CAs ([`crate::trust`]).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    crate::trust::current()
        .reqwest_builder()
        .map_err(|e| format!("HTTP client: {e}"))?
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("beacon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {}", e.without_url()))
}

/// POSTs `body` (JSON bytes) with `headers`; any 2xx is delivered.
pub async fn post_json(
    client: &reqwest::Client,
    peer: &str,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| DeliveryError::from_reqwest(peer, e))?;
    answer(peer, response).await.map(|_| ())
}

/// A 2xx answer's body, or the classified error with the peer's words.
pub async fn answer(peer: &str, response: reqwest::Response) -> Result<String, DeliveryError> {
    let status = response.status().as_u16();
    let after = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(DeliveryError::from_status(peer, status, &text, after))
    }
}
