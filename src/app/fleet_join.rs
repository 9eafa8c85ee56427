//! `beacon fleet-join`: a new box joins the fleet of a box already running (issue 17). With
//! the one-time code shown on that box's settings page, it connects to that box's console over
//! HTTPS, checks the console's certificate against the code's pin *before* sending anything
//! (so a box in the middle never sees the code), presents the code, and stores the fleet's
//! secrets and rich-notification keys it gets (the store's secrets tree, 0600). The service
//! must be stopped (it holds the store); its own keys are replaced by the fleet's.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::{AppError, Core};
use crate::config::Config;
use crate::graph::crypto::{EncryptionKey, StoredKey, KEY_PREFIX};
use crate::graph::fleet::Bundle;
use crate::secret::Secret;
use crate::store::Store;
use crate::web::join_code;

/// Why joining failed, in words.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the join code is incomplete: copy all of it, with the part after the dot (XXXX-XXXX-XXXX.PIN)")]
    Code,
    #[error(
        "could not reach {from} over HTTPS with the certificate the join code names: {reason}"
    )]
    Connect { from: String, reason: String },
    #[error("{from} refused: {reason}")]
    Refused { from: String, reason: String },
    #[error("{from} answered something that is not a fleet's secrets")]
    Answer { from: String },
    #[error(transparent)]
    App(#[from] AppError),
}

/// See the module docs. Returns the fleet's id.
pub async fn fleet_join(config: Config, from: &str, code: &str) -> Result<String, JoinError> {
    let core = Core::open(&config)?;
    let (secret, pin) = join_code::split(code).ok_or(JoinError::Code)?;
    let from = from.trim_end_matches('/').to_string();
    let bundle = fetch(&from, &secret, &pin, &core.device_id).await?;
    install(&core.store, &bundle)?;
    Ok(bundle.fleet_id)
}

/// Asks `from` for the fleet's bundle over HTTPS pinned to `pin`.
async fn fetch(from: &str, secret: &str, pin: &str, name: &str) -> Result<Bundle, JoinError> {
    let connect = |reason: String| JoinError::Connect {
        from: from.to_string(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            pin: pin.to_string(),
            provider,
        }))
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| connect(chain(&e)))?;
    let response = client
        .post(format!("{from}/fleet/join"))
        .json(&serde_json::json!({"code": secret, "name": name}))
        .send()
        .await
        .map_err(|e| connect(chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let reason = response.text().await.unwrap_or_default();
        return Err(JoinError::Refused {
            from: from.to_string(),
            reason: format!("{status}: {}", reason.chars().take(300).collect::<String>()),
        });
    }
    response
        .json::<Bundle>()
        .await
        .map_err(|_| JoinError::Answer {
            from: from.to_string(),
        })
}

/// Stores the fleet's secrets and keys in place of this box's.
fn install(store: &Store, bundle: &Bundle) -> Result<(), JoinError> {
    let answer = || JoinError::Answer {
        from: "the other box".into(),
    };
    let mut keys = Vec::new();
    for json in &bundle.keys {
        let stored: StoredKey = serde_json::from_str(json).map_err(|_| answer())?;
        EncryptionKey::from_stored(&stored).map_err(|_| answer())?;
        keys.push((stored.id, json));
    }
    crate::graph::client_state::ClientStates::load(store)
        .and_then(|states| states.replace(store, bundle.secrets()))
        .map_err(AppError::from)?;
    if !keys.is_empty() {
        for (name, _) in store
            .secrets_with_prefix(KEY_PREFIX)
            .map_err(AppError::from)?
        {
            store.remove_secret(&name).map_err(AppError::from)?;
        }
        for (id, json) in keys {
            store
                .set_secret(&format!("{KEY_PREFIX}{id}"), &Secret::new(json.clone()))
                .map_err(AppError::from)?;
        }
    }
    store.flush().map_err(AppError::from)?;
    Ok(())
}

/// An error with its causes (reqwest's own message is terse: "error sending request").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Accepts exactly the certificate whose SHA-256 the join code pins (the console's is
/// self-signed; no CA is involved), with rustls' own signature checks.
#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = openssl::sha::sha256(end_entity.as_ref());
        if join_code::pin(&fingerprint) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "its certificate is not the one the join code names (wrong address, or someone in between)".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
