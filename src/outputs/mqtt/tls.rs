//! TLS to the broker: a rustls client configuration on the `ring` provider (the one reqwest
//! already uses, so no second crypto library), trusting the configured CA file or else the
//! system's CA store.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why TLS could not be set up. Names the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("mqtt.ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("no CA certificates to trust (set mqtt.ca_file, or install the system's CA store)")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration for `ca_file` (PEM, one or more certificates), or the system
/// store when `None`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let error = |reason: String| TlsError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| error(e.to_string()))?;
                roots.add(cert).map_err(|e| error(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system CA certificate could not be read");
            }
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing = client_config(Some(Path::new("/nonexistent/ca.pem")));
        let text = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        let dir = tempfile::tempdir().ok();
        let empty = dir.as_ref().map(|d| d.path().join("empty.pem"));
        if let Some(empty) = &empty {
            let _ = std::fs::write(empty, "not a certificate\n");
            assert!(matches!(client_config(Some(empty)), Err(TlsError::NoRoots)));
        }
    }
}
