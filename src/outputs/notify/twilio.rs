//! SMS through Twilio's Messages API: `POST {twilio_url}/2010-04-01/Accounts/{AccountSid}/
//! Messages.json`, form-encoded `To`, `From` (or `MessagingServiceSid` for an `MG…` sender)
//! and `Body`, HTTP basic auth with the account SID and auth token. Twilio answers 201 with
//! the message JSON; errors carry `{code, message, more_info, status}` — 400 (bad number,
//! unsubscribed recipient…) and 401 (credentials) are permanent, 429 and 5xx are retried.

use serde::Deserialize;

use super::channel::{retry_after, short, DeliveryError};
use crate::secret::Secret;

/// Twilio's account credentials and sender.
#[derive(Clone)]
pub struct Twilio {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
    message: Option<String>,
}

impl Twilio {
    fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url.trim_end_matches('/'),
            self.account_sid
        )
    }

    /// The form fields of one SMS.
    pub fn form<'a>(&'a self, to: &'a str, body: &'a str) -> Vec<(&'static str, &'a str)> {
        let sender = if self.from.starts_with("MG") {
            "MessagingServiceSid"
        } else {
            "From"
        };
        vec![("To", to), (sender, self.from.as_str()), ("Body", body)]
    }

    /// Sends one SMS.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        to: &str,
        body: &str,
    ) -> Result<(), DeliveryError> {
        let response = client
            .post(self.url())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&self.form(to, body))
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest("Twilio", e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let after = retry_after(&response);
        let text = response.text().await.unwrap_or_default();
        let words = match serde_json::from_str::<TwilioError>(&text) {
            Ok(TwilioError {
                code: Some(code),
                message,
            }) => format!("error {code}{}", short(message.as_deref().unwrap_or(""))),
            _ => text,
        };
        Err(DeliveryError::from_status("Twilio", status, &words, after))
    }
}
