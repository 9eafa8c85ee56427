//! E-mail over SMTP with lettre (rustls): STARTTLS (required, never opportunistic) or
//! implicit TLS, AUTH when a username is set, plain only to a relay on loopback. A plain-text
//! message from `smtp_from` to one recipient. SMTP 4xx and connection failures are retried;
//! 5xx (unknown mailbox, refused credentials) are permanent.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::channel::{short, DeliveryError};
use super::config::{NotifyConfig, SmtpSecurity};

/// The SMTP sender.
#[derive(Clone)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Bound on one whole attempt (lettre's own timeout does not cover every wait).
    timeout: Duration,
}

impl Email {
    /// The sender of `config`, `None` when e-mail is not configured. The error names the key
    /// (the CA file, the sender) and never a credential.
    pub fn new(config: &NotifyConfig, timeout: Duration) -> Result<Option<Email>, String> {
        let (Some(host), Some(from)) = (&config.smtp_host, &config.smtp_from) else {
            return Ok(None);
        };
        let from: Mailbox = from
            .parse()
            .map_err(|_| "notify.smtp_from: not an e-mail address".to_string())?;
        let tls = || {
            // The shared trusted CAs (crate::trust), plus notify.smtp_ca_file; not lettre's
            // compiled-in web roots.
            let mut trusted = crate::trust::current();
            if let Some(path) = &config.smtp_ca_file {
                trusted = std::sync::Arc::new(
                    trusted
                        .with_file(path, "notify.smtp_ca_file")
                        .map_err(|e| e.to_string())?,
                );
            }
            let mut builder =
                TlsParameters::builder(host.clone()).certificate_store(CertificateStore::None);
            for cert in trusted.certificates() {
                if let Ok(ca) = Certificate::from_der(cert.to_vec()) {
                    builder = builder.add_root_certificate(ca);
                }
            }
            builder
                .build_rustls()
                .map_err(|e| format!("notify.smtp_host: TLS settings: {e}"))
        };
        let (tls, default_port) = match config.smtp_security {
            SmtpSecurity::Starttls => (Tls::Required(tls()?), 587),
            SmtpSecurity::Tls => (Tls::Wrapper(tls()?), 465),
            SmtpSecurity::None => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(config.smtp_port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &config.smtp_username {
            let password = config
                .smtp_password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Some(Email {
            transport: builder.build(),
            from,
            timeout,
        }))
    }

    /// Sends one message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), DeliveryError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| DeliveryError::permanent("not an e-mail address"))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.replace(['\r', '\n'], " "))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| DeliveryError::permanent(format!("cannot build the e-mail: {e}")))?;
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        let Ok(sent) = sent else {
            return Err(DeliveryError::retryable(format!(
                "SMTP: timed out after {} s",
                self.timeout.as_secs()
            )));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                "SMTP server refused{}",
                short(&e.to_string())
            ))),
            Err(e) => Err(DeliveryError::retryable(format!(
                "SMTP{}",
                short(&e.to_string())
            ))),
        }
    }
}
