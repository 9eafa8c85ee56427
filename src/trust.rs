//! The one set of certificate authorities every TLS client of Beacon trusts — Microsoft
//! sign-in and Graph, the web notification channels (reqwest), SMTP (lettre), MQTT (rumqttc)
//! and the Event Hub (librdkafka): the operating system's CA store plus the PEM files listed in
//! `[tls] ca_files` (a corporate TLS-inspection CA, a private broker's CA). A CA installed on
//! the box (`update-ca-certificates`) or configured there is trusted by all of them alike.
//!
//! Loaded once when the configuration is ([`install`]); the clients take [`current`].
//! Without `install` (tests, `beacon demo`) it is the system store alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Serialize};

/// `[tls]` of the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// PEM files of CA certificates trusted besides the system's, by every TLS client.
    pub ca_files: Vec<PathBuf>,
}

/// Why the trusted certificates could not be loaded. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{key} {path}: {reason}")]
    CaFile {
        key: String,
        path: String,
        reason: String,
    },
    #[error("no CA certificates to trust (install the system's CA store, or set tls.ca_files)")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The trusted CA certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    system: Vec<CertificateDer<'static>>,
    configured: Vec<CertificateDer<'static>>,
}

impl TrustStore {
    /// The system's CA store and the CA files of `config`.
    pub fn load(config: &TrustConfig) -> Result<TrustStore, TrustError> {
        let mut store = TrustStore::system();
        for path in &config.ca_files {
            store.configured.extend(read_pem(path, "tls.ca_files")?);
        }
        Ok(store)
    }

    /// The system's CA store alone.
    pub fn system() -> TrustStore {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system CA certificate could not be read");
        }
        TrustStore {
            system: found.certs,
            configured: Vec::new(),
        }
    }

    /// These and the certificates of the PEM file `path` (a client's own CA setting, e.g.
    /// `mqtt.ca_file`, named `key` in errors).
    pub fn with_file(&self, path: &Path, key: &str) -> Result<TrustStore, TrustError> {
        let mut store = self.clone();
        store.configured.extend(read_pem(path, key)?);
        Ok(store)
    }

    /// Every trusted certificate, the configured ones first.
    pub fn certificates(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        self.configured.iter().chain(self.system.iter())
    }

    /// How many configured CA certificates are added to the system's.
    pub fn configured_count(&self) -> usize {
        self.configured.len()
    }

    /// A rustls client configuration (ring, the provider the crate uses everywhere) trusting
    /// these certificates.
    pub fn rustls_config(&self) -> Result<Arc<ClientConfig>, TrustError> {
        let mut roots = RootCertStore::empty();
        // A configured certificate that is not a usable CA is an error; the system store's
        // odd ones are skipped, as every TLS library does.
        for cert in &self.configured {
            roots.add(cert.clone())?;
        }
        let (_added, _ignored) = roots.add_parsable_certificates(self.system.iter().cloned());
        if roots.is_empty() {
            return Err(TrustError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// A reqwest client builder that trusts these certificates (and only these).
    pub fn reqwest_builder(&self) -> Result<reqwest::ClientBuilder, TrustError> {
        let config = Arc::unwrap_or_clone(self.rustls_config()?);
        Ok(reqwest::Client::builder().use_preconfigured_tls(config))
    }

    /// The certificates as one PEM bundle (for librdkafka's `ssl.ca.location`).
    pub fn pem_bundle(&self) -> String {
        use base64::Engine;
        let mut pem = String::new();
        for cert in self.certificates() {
            let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in body.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }
}

/// The CA file for librdkafka (OpenSSL reads a file, not rustls roots): `None` when neither
/// `tls.ca_files` nor `extra` (`eventhub.ca_file`) adds to the system store — librdkafka then
/// uses the system's itself — else the shared CAs and `extra` as one PEM bundle written to
/// `<dir>/ca-bundle.pem` (0600 under the process's umask).
pub fn librdkafka_ca_file(dir: &Path, extra: Option<&Path>) -> Result<Option<PathBuf>, TrustError> {
    let shared = current();
    let store = match extra {
        Some(path) => shared.with_file(path, "eventhub.ca_file")?,
        None if shared.configured_count() == 0 => return Ok(None),
        None => (*shared).clone(),
    };
    let path = dir.join("ca-bundle.pem");
    let written =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, store.pem_bundle()));
    written.map_err(|e| TrustError::CaFile {
        key: "the Event Hub's CA bundle".into(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Some(path))
}

static CURRENT: RwLock<Option<Arc<TrustStore>>> = RwLock::new(None);

/// Loads the trusted certificates of `config` for every client from now on.
pub fn install(config: &TrustConfig) -> Result<Arc<TrustStore>, TrustError> {
    let store = Arc::new(TrustStore::load(config)?);
    if store.configured_count() > 0 {
        tracing::info!(
            certificates = store.configured_count(),
            "trusting the configured CA certificates besides the system's"
        );
    }
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(store.clone());
    Ok(store)
}

/// The trusted certificates: as installed, or the system store alone.
pub fn current() -> Arc<TrustStore> {
    if let Some(store) = CURRENT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return store.clone();
    }
    let store = Arc::new(TrustStore::system());
    let mut slot = CURRENT.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert(store).clone()
}

fn read_pem(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let error = |reason: String| TrustError::CaFile {
        key: key.to_string(),
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in the file".into()));
    }
    Ok(certs)
}
