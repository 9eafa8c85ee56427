//! HTTPS for the console: the certificate named in `[web]`, or a self-signed one made on
//! first start (P-256, ten years, names `beacon.local`, the host name, `localhost`,
//! 127.0.0.1) and kept in `<data_dir>/web/` (0600). Made with OpenSSL, which the crate already
//! links; served with rustls (warp 0.4 has no TLS of its own).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why HTTPS could not be set up. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("cannot make the self-signed certificate: {0}")]
    Generate(#[from] openssl::error::ErrorStack),
    #[error("the certificate or key is not usable: {0}")]
    Rustls(String),
}

/// The certificate and key files to serve: the configured pair, or the self-signed pair in
/// `<data_dir>/web/`, made now if missing.
pub fn certificate_files(
    configured: Option<(&Path, &Path)>,
    data_dir: &Path,
) -> Result<(PathBuf, PathBuf), TlsError> {
    if let Some((cert, key)) = configured {
        return Ok((cert.to_path_buf(), key.to_path_buf()));
    }
    let dir = data_dir.join("web");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let file_error = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let (cert_pem, key_pem) = self_signed(&host_name())?;
    write_private(&key, &key_pem).map_err(|e| file_error(&key, e))?;
    write_private(&cert, &cert_pem).map_err(|e| file_error(&cert, e))?;
    tracing::info!(path = %cert.display(), "made a self-signed certificate for the console");
    Ok((cert, key))
}

/// A self-signed certificate for `host` (and beacon.local, localhost, 127.0.0.1): PEM
/// certificate and PEM PKCS#8 key.
pub fn self_signed(host: &str) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "Beacon console")?;
    let name = name.build();
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut names = SubjectAlternativeName::new();
    names.dns("beacon.local").dns("localhost").ip("127.0.0.1");
    if !host.is_empty() && host != "localhost" {
        names.dns(host);
        names.dns(&format!("{host}.local"));
    }
    let names = names.build(&builder.x509v3_context(None, None))?;
    builder.append_extension(names)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}

/// rustls server settings for the PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate in the file".into()));
    }
    // Only the kind of problem: the error of a key parser could quote the file.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| file_error(key, "no readable PEM private key in the file".into()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_pair_is_made_once_kept_private_and_loads() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (cert, key) = certificate_files(None, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let first = std::fs::read(&cert).unwrap_or_default();
        let again = certificate_files(None, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&again.0).unwrap_or_default(), first, "kept");
        assert!(server_config(&cert, &key).is_ok());
    }

    #[test]
    fn a_file_without_a_key_is_an_error_naming_the_file_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (cert, _) = certificate_files(None, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let bad = dir.path().join("bad.pem");
        let _ = std::fs::write(&bad, "SECRET-MATERIAL");
        let error = server_config(&cert, &bad).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.contains("bad.pem"), "{error}");
        assert!(!error.contains("SECRET-MATERIAL"), "{error}");
    }
}
