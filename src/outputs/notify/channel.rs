//! The channels a message can go out on, and how a delivery attempt can fail: permanently
//! (the peer refused this message or our credentials — retrying the same request will not
//! help until someone fixes the configuration) or for now (down, throttled, 5xx).

use serde::{Deserialize, Serialize};

/// One outbound channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
    Teams,
    Slack,
    Pagerduty,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Email,
        Channel::Sms,
        Channel::Webhook,
        Channel::Teams,
        Channel::Slack,
        Channel::Pagerduty,
    ];

    /// The name in the outbox and in trouble components (`notify:<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
            Channel::Teams => "teams",
            Channel::Slack => "slack",
            Channel::Pagerduty => "pagerduty",
        }
    }

    /// The channel named `name` (as stored in the outbox).
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Why one delivery attempt failed. The words never contain a secret (no URL, no header,
/// no credential); peers' error texts are cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: connection refused, timeout, 5xx, 429. `retry_after_secs` is the
    /// peer's `Retry-After` when it gave one.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after_secs: Option<u64>,
    },
    /// The peer refused the request itself (bad recipient, bad credentials, invalid event):
    /// the same request will keep failing until the configuration changes.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError::Retryable {
            reason: reason.into(),
            retry_after_secs: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent { .. })
    }

    /// Classifies an HTTP status with the peer's words: 408, 425, 429 and 5xx are retried,
    /// other 4xx are permanent.
    pub fn from_status(
        peer: &str,
        status: u16,
        detail: &str,
        retry_after_secs: Option<u64>,
    ) -> Self {
        let reason = format!("{peer} answered {status}{}", short(detail));
        if matches!(status, 408 | 425 | 429) || status >= 500 {
            DeliveryError::Retryable {
                reason,
                retry_after_secs,
            }
        } else {
            DeliveryError::Permanent { reason }
        }
    }

    /// A transport error of reqwest, without the URL (webhook URLs carry tokens).
    pub fn from_reqwest(peer: &str, error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else if error.is_body() || error.is_decode() {
            "broken answer"
        } else {
            "request failed"
        };
        let error = error.without_url();
        let mut source = std::error::Error::source(&error);
        let mut words = String::new();
        while let Some(inner) = source {
            words = inner.to_string();
            source = inner.source();
        }
        DeliveryError::retryable(format!("{peer}: {kind}{}", short(&words)))
    }
}

/// `": <text>"` cut to 200 characters, or nothing.
pub(super) fn short(detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        return String::new();
    }
    let cut: String = detail.chars().take(200).collect();
    if cut.len() < detail.len() {
        format!(": {cut}…")
    } else {
        format!(": {cut}")
    }
}

/// The `Retry-After` header in seconds (the HTTP-date form is treated as absent).
pub(super) fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
