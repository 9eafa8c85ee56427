//! HTTPS to another Beacon's console, trusting exactly the certificate a pin names (the
//! consoles' certificates are self-signed; no CA is involved). Used by a box joining a fleet
//! (the pin comes with the join code) and by the members talking to each other (each pin
//! learnt at join time).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::web::join_code;

/// An HTTP client that talks only to the console whose certificate `pin` names.
pub fn client(pin: &str, timeout: Duration) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            pin: pin.to_string(),
            provider,
        }))
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .build()
        .map_err(|e| chain(&e))
}

/// SHA-256 of the first certificate in a PEM file (what a join code pins).
pub fn certificate_sha256(pem_file: &Path) -> Option<[u8; 32]> {
    let pem = std::fs::read(pem_file).ok()?;
    let der = openssl::x509::X509::from_pem(&pem).ok()?.to_der().ok()?;
    Some(openssl::sha::sha256(&der))
}

/// The pin of the first certificate in a PEM file (a console's, read each time: a renewal
/// replaces the file while the console runs).
pub fn pin_of_file(pem_file: &Path) -> Option<String> {
    certificate_sha256(pem_file).map(|sha256| join_code::pin(&sha256))
}

/// An error with its causes (reqwest's own message is terse: "error sending request").
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Accepts exactly the certificate whose SHA-256 the pin names, with rustls' own signature
/// checks.
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
