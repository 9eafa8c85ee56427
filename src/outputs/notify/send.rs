//! The configured senders, built once at start: one attempt of one outbox entry on its
//! channel. A channel that is not configured (any more) refuses permanently, so its entries
//! show why on the timeline and the channel becomes a trouble.

use std::time::Duration;

use super::channel::{Channel, DeliveryError};
use super::config::NotifyConfig;
use super::email::Email;
use super::outbox::OutboxEntry;
use super::twilio::Twilio;
use super::{pagerduty, slack, teams, webhook};
use crate::secret::Secret;

/// Every sender the configuration allows.
pub struct Senders {
    http: reqwest::Client,
    email: Option<Email>,
    twilio: Option<Twilio>,
    webhook: Option<(Secret, Option<Secret>)>,
    teams: Option<Secret>,
    slack: Option<Secret>,
    pagerduty: Option<(String, Secret)>,
}

impl Senders {
    /// Builds the senders. The error names the setting, never a secret.
    pub fn new(config: &NotifyConfig) -> Result<Senders, String> {
        let timeout = Duration::from_secs(config.timeout_seconds);
        let twilio = match (
            &config.twilio_account_sid,
            &config.twilio_auth_token,
            &config.twilio_from,
        ) {
            (Some(sid), Some(token), Some(from)) => Some(Twilio {
                base_url: config.twilio_url.clone(),
                account_sid: sid.clone(),
                auth_token: token.clone(),
                from: from.clone(),
            }),
            _ => None,
        };
        Ok(Senders {
            http: super::http::client(timeout)?,
            email: Email::new(config, timeout)?,
            twilio,
            webhook: config
                .webhook_url
                .clone()
                .map(|url| (url, config.webhook_secret.clone())),
            teams: config.teams_url.clone(),
            slack: config.slack_url.clone(),
            pagerduty: config
                .pagerduty_routing_key
                .clone()
                .map(|key| (config.pagerduty_url.clone(), key)),
        })
    }

    /// Channels that can send.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| match c {
                Channel::Email => self.email.is_some(),
                Channel::Sms => self.twilio.is_some(),
                Channel::Webhook => self.webhook.is_some(),
                Channel::Teams => self.teams.is_some(),
                Channel::Slack => self.slack.is_some(),
                Channel::Pagerduty => self.pagerduty.is_some(),
            })
            .collect()
    }

    /// One attempt to deliver entry `id`.
    pub async fn send(&self, id: &str, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let missing = || {
            DeliveryError::permanent(format!(
                "the {} channel is not configured",
                entry.channel.name()
            ))
        };
        match entry.channel {
            Channel::Email => {
                let email = self.email.as_ref().ok_or_else(missing)?;
                email
                    .send(&entry.recipient, &entry.subject, &entry.body)
                    .await
            }
            Channel::Sms => {
                let twilio = self.twilio.as_ref().ok_or_else(missing)?;
                twilio.send(&self.http, &entry.recipient, &entry.body).await
            }
            Channel::Webhook => {
                let (url, secret) = self.webhook.as_ref().ok_or_else(missing)?;
                webhook::send(&self.http, url, secret.as_ref(), id, entry).await
            }
            Channel::Teams => {
                let url = self.teams.as_ref().ok_or_else(missing)?;
                teams::send(&self.http, url, entry).await
            }
            Channel::Slack => {
                let url = self.slack.as_ref().ok_or_else(missing)?;
                slack::send(&self.http, url, entry).await
            }
            Channel::Pagerduty => {
                let (url, key) = self.pagerduty.as_ref().ok_or_else(missing)?;
                pagerduty::send(&self.http, url, key, entry).await
            }
        }
    }
}
