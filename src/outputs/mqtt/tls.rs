//! TLS to the broker: a rustls client configuration (ring, as everywhere in the crate)
//! trusting the shared CAs ([`crate::trust`]: the system store and `tls.ca_files`) and
//! `mqtt.ca_file` when set.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

/// Why TLS could not be set up. Names the file, never key material.
pub use crate::trust::TrustError as TlsError;

/// The client configuration: the shared trusted CAs, plus `ca_file` (PEM, one or more
/// certificates) when given.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let trusted = crate::trust::current();
    match ca_file {
        Some(path) => trusted.with_file(path, "mqtt.ca_file")?.rustls_config(),
        None => trusted.rustls_config(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing = client_config(Some(Path::new("/nonexistent/ca.pem")));
        let text = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("mqtt.ca_file /nonexistent/ca.pem"), "{text}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        let _ = std::fs::write(&empty, "not a certificate\n");
        let text = client_config(Some(&empty))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(text.contains("empty.pem: no PEM certificate"), "{text}");
    }
}
