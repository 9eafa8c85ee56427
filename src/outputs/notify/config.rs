//! `[notify]`: the channels (SMTP, Twilio, webhooks, PagerDuty), who receives what per zone,
//! the escalation list, the message templates and the retry limits — and their validation.
//!
//! Channel settings are flat keys (`smtp_host`, `twilio_auth_token`, …) so that every one,
//! secrets included, can be set from the environment (`BEACON_NOTIFY_SMTP_PASSWORD`).
//! Validation errors name the key and never print a value.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::message_kind::MessageKind;
use super::templates::{TemplateError, Templates, TemplatesConfig};
use crate::secret::Secret;

/// `[notify]`. See `config/beacon.example.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// SMTP server host name (also the name its certificate must carry).
    pub smtp_host: Option<String>,
    /// Default: 587 for STARTTLS, 465 for TLS, 25 for none.
    pub smtp_port: Option<u16>,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    /// Secret.
    pub smtp_password: Option<Secret>,
    /// Sender address, e.g. `Beacon <beacon@example.com>`.
    pub smtp_from: Option<String>,
    /// PEM file of CAs to trust besides the built-in web roots (a private mail relay, tests).
    pub smtp_ca_file: Option<PathBuf>,

    /// Twilio API base URL (tests point it at a fake).
    pub twilio_url: String,
    pub twilio_account_sid: Option<String>,
    /// Secret.
    pub twilio_auth_token: Option<Secret>,
    /// Sending number (E.164) or Messaging Service SID (`MG…`).
    pub twilio_from: Option<String>,

    /// Generic JSON webhook. Secret (such URLs often carry a token).
    pub webhook_url: Option<Secret>,
    /// When set, every webhook request carries `X-Beacon-Signature: sha256=<hex HMAC>`.
    /// Secret.
    pub webhook_secret: Option<Secret>,
    /// Teams Workflows "when a Teams webhook request is received" URL. Secret.
    pub teams_url: Option<Secret>,
    /// Slack incoming webhook URL. Secret.
    pub slack_url: Option<Secret>,
    /// PagerDuty Events API v2 endpoint.
    pub pagerduty_url: String,
    /// Integration (routing) key of the PagerDuty service. Secret.
    pub pagerduty_routing_key: Option<Secret>,

    /// First retry after this many seconds; doubles with every attempt…
    pub retry_first_seconds: u64,
    /// …up to this.
    pub retry_max_seconds: u64,
    /// A message not delivered within this many minutes is given up (status `expired`).
    pub expire_minutes: u64,
    /// A channel failing for this long (since its last success) is a trouble.
    pub trouble_after_seconds: u64,
    /// Timeout of one delivery attempt.
    pub timeout_seconds: u64,

    /// Who receives what, per channel and zone.
    pub recipients: Vec<Recipient>,
    /// Who is told when nobody acknowledges in time (`[alarm] escalate_after_minutes`).
    pub escalation: Vec<EscalationRecipient>,
    /// Message texts.
    pub templates: TemplatesConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_host: None,
            smtp_port: None,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_from: None,
            smtp_ca_file: None,
            twilio_url: "https://api.twilio.com".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
            webhook_url: None,
            webhook_secret: None,
            teams_url: None,
            slack_url: None,
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            pagerduty_routing_key: None,
            retry_first_seconds: 5,
            retry_max_seconds: 300,
            expire_minutes: 24 * 60,
            trouble_after_seconds: 120,
            timeout_seconds: 20,
            recipients: Vec::new(),
            escalation: Vec::new(),
            templates: TemplatesConfig::default(),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required, never optional).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only to a relay on loopback.
    None,
}

/// One `[[notify.recipients]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub channel: Channel,
    /// E-mail address or phone number (E.164); for webhook-like channels an optional label.
    #[serde(default)]
    pub to: Option<String>,
    /// Only calls in these zones (`[[emergency.zones]]` names); empty: every call.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Which messages: `alarm`, `possible`, `test`, `acknowledged`, `cleared`. Default: alarm,
    /// possible and test; for PagerDuty all five (trigger, acknowledge, resolve). A list with
    /// `alarm` also gets `possible` (a possible emergency used to be sent as an alarm).
    #[serde(default)]
    pub on: Option<Vec<MessageKind>>,
}

/// One `[[notify.escalation]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRecipient {
    pub channel: Channel,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub zones: Vec<String>,
}

impl Recipient {
    /// The message kinds this recipient receives.
    pub fn kinds(&self) -> Vec<MessageKind> {
        match (&self.on, self.channel) {
            (Some(kinds), _) => {
                let mut kinds = kinds.clone();
                if kinds.contains(&MessageKind::Alarm) && !kinds.contains(&MessageKind::Possible) {
                    kinds.push(MessageKind::Possible);
                }
                kinds
            }
            (None, Channel::Pagerduty) => {
                vec![
                    MessageKind::Alarm,
                    MessageKind::Possible,
                    MessageKind::Test,
                    MessageKind::Acknowledged,
                    MessageKind::Cleared,
                ]
            }
            (None, _) => vec![MessageKind::Alarm, MessageKind::Possible, MessageKind::Test],
        }
    }
}

/// Display form of a recipient: the address or number, else the label, else the channel.
pub fn display_recipient(channel: Channel, to: Option<&str>) -> String {
    to.map(str::to_string)
        .unwrap_or_else(|| channel.name().to_string())
}

impl NotifyConfig {
    /// Checks the section; returns the compiled templates. The error names the key
    /// (`smtp_from`, `recipients[2].to`, `templates.alarm_body`) and never a value.
    pub fn validate(&self) -> Result<Templates, String> {
        let templates = Templates::compile(&self.templates).map_err(|e| match e {
            TemplateError::Unknown { key, variable } => format!(
                "templates.{key}: unknown variable {{{variable}}} (known: {})",
                super::templates::VARIABLES.join(", ")
            ),
            TemplateError::Unclosed { key } => {
                format!("templates.{key}: a '{{' is not closed (write '{{{{' for a brace)")
            }
        })?;
        if let Some(from) = &self.smtp_from {
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err("smtp_from: not an e-mail address (name <address> or address)".into());
            }
        }
        if self.smtp_host.is_some() && self.smtp_from.is_none() {
            return Err("smtp_from: required when smtp_host is set".into());
        }
        if let Some(host) = &self.smtp_host {
            if host.is_empty() || host.contains(['/', ' ', ':']) {
                return Err("smtp_host: a host name without scheme or port".into());
            }
            if self.smtp_security == SmtpSecurity::None && !is_loopback_host(host) {
                return Err(
                    "smtp_security: \"none\" only to a relay on loopback; use starttls or tls"
                        .into(),
                );
            }
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err("smtp_username: required when smtp_password is set".into());
        }
        if let Some(ca) = &self.smtp_ca_file {
            if !ca.is_file() {
                return Err(format!("smtp_ca_file: no such file: {}", ca.display()));
            }
        }
        check_url("twilio_url", &self.twilio_url)?;
        check_url("pagerduty_url", &self.pagerduty_url)?;
        for (key, url) in [
            ("webhook_url", &self.webhook_url),
            ("teams_url", &self.teams_url),
            ("slack_url", &self.slack_url),
        ] {
            if let Some(url) = url {
                check_url(key, url.expose())?;
            }
        }
        if let Some(sid) = &self.twilio_account_sid {
            if !(sid.starts_with("AC") && sid.len() == 34 && sid.is_ascii()) {
                return Err(
                    "twilio_account_sid: an account SID is AC followed by 32 hex digits".into(),
                );
            }
        }
        if let Some(from) = &self.twilio_from {
            if !is_phone_number(from) && !from.starts_with("MG") {
                return Err(
                    "twilio_from: an E.164 number (+15551234567) or a Messaging Service SID (MG…)"
                        .into(),
                );
            }
        }
        if self.retry_first_seconds == 0 {
            return Err("retry_first_seconds: must be at least 1".into());
        }
        if self.retry_max_seconds < self.retry_first_seconds {
            return Err("retry_max_seconds: must be at least retry_first_seconds".into());
        }
        if self.expire_minutes == 0 {
            return Err("expire_minutes: must be at least 1".into());
        }
        if self.timeout_seconds == 0 {
            return Err("timeout_seconds: must be at least 1".into());
        }
        for (i, r) in self.recipients.iter().enumerate() {
            self.check_target(&format!("recipients[{i}]"), r.channel, r.to.as_deref())?;
            if r.on
                .as_ref()
                .is_some_and(|on| on.contains(&MessageKind::Escalation))
            {
                return Err(format!(
                    "recipients[{i}].on: escalation recipients are listed under [[notify.escalation]]"
                ));
            }
        }
        for (i, r) in self.escalation.iter().enumerate() {
            self.check_target(&format!("escalation[{i}]"), r.channel, r.to.as_deref())?;
        }
        Ok(templates)
    }

    /// Whether the channel has what it needs to send.
    pub fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.smtp_host.is_some() && self.smtp_from.is_some(),
            Channel::Sms => {
                self.twilio_account_sid.is_some()
                    && self.twilio_auth_token.is_some()
                    && self.twilio_from.is_some()
            }
            Channel::Webhook => self.webhook_url.is_some(),
            Channel::Teams => self.teams_url.is_some(),
            Channel::Slack => self.slack_url.is_some(),
            Channel::Pagerduty => self.pagerduty_routing_key.is_some(),
        }
    }

    fn check_target(&self, at: &str, channel: Channel, to: Option<&str>) -> Result<(), String> {
        if !self.configured(channel) {
            return Err(format!(
                "{at}.channel: the {} channel is not configured ({})",
                channel.name(),
                match channel {
                    Channel::Email => "set smtp_host and smtp_from",
                    Channel::Sms => "set twilio_account_sid, twilio_auth_token and twilio_from",
                    Channel::Webhook => "set webhook_url",
                    Channel::Teams => "set teams_url",
                    Channel::Slack => "set slack_url",
                    Channel::Pagerduty => "set pagerduty_routing_key",
                }
            ));
        }
        match (channel, to) {
            (Channel::Email, Some(to)) if to.parse::<lettre::message::Mailbox>().is_ok() => Ok(()),
            (Channel::Email, _) => Err(format!("{at}.to: an e-mail address is required")),
            (Channel::Sms, Some(to)) if is_phone_number(to) => Ok(()),
            (Channel::Sms, _) => Err(format!(
                "{at}.to: a phone number in E.164 form (+15551234567) is required"
            )),
            (_, Some(label)) if label.is_empty() || label.len() > 64 => {
                Err(format!("{at}.to: a label of 1 to 64 characters"))
            }
            _ => Ok(()),
        }
    }
}

/// `+` and 8 to 15 digits.
pub fn is_phone_number(value: &str) -> bool {
    value
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

fn check_url(key: &str, url: &str) -> Result<(), String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if url.starts_with("https://") || loopback.iter().any(|p| url.starts_with(p)) {
        Ok(())
    } else {
        Err(format!(
            "{key}: must be an https:// URL (plain http only on loopback, for tests)"
        ))
    }
}
