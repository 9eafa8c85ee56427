//! HTTPS for the console: the certificate named in `[web]`, or a self-signed one made on
//! first start and kept in `<data_dir>/web/` (0600), made with OpenSSL (which the crate
//! already links) and served with rustls (warp 0.4 has no TLS of its own).
//!
//! The self-signed certificate is one Apple platforms accept once trusted (support article
//! HT210176): P-256, valid [`LIFETIME_DAYS`], `CA:FALSE`, key usage digitalSignature, extended
//! key usage serverAuth, and names for `beacon.local`, `localhost`, the host name (and
//! `<host>.local`) and the device's addresses. It is made again when less than
//! [`RENEW_DAYS_BEFORE`] days are left, or when the device's name or addresses are no longer
//! all in it — checked at start and every [`RENEW_CHECK`] while running; a running console
//! serves the new one from its next handshake. Its SHA-256 fingerprint is shown on the
//! display and the console, to check a browser's warning against.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// How long a self-signed certificate is valid: Apple's limit for TLS server certificates.
pub const LIFETIME_DAYS: u32 = 825;
/// A self-signed certificate is made again when fewer days than this are left.
pub const RENEW_DAYS_BEFORE: u32 = 30;
/// How often a running console checks whether to renew.
pub const RENEW_CHECK: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

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

/// The names a self-signed certificate is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub dns: Vec<String>,
    pub addresses: Vec<IpAddr>,
}

impl Names {
    /// `beacon.local`, `localhost`, `host` and `<host>.local`, 127.0.0.1, ::1 and `addresses`.
    pub fn new(host: &str, addresses: &[IpAddr]) -> Names {
        let mut dns = vec!["beacon.local".to_string(), "localhost".to_string()];
        let host = host.trim().trim_end_matches(".local");
        if !host.is_empty() && host != "localhost" && host != "beacon" {
            dns.push(host.to_string());
            dns.push(format!("{host}.local"));
        }
        let mut all: Vec<IpAddr> =
            vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
        for address in addresses {
            if !all.contains(address) {
                all.push(*address);
            }
        }
        Names {
            dns,
            addresses: all,
        }
    }

    /// This device's: `/etc/hostname` and the addresses of its interfaces (IPv6 link-local
    /// ones left out: a browser cannot use them in an address).
    pub fn of_this_device() -> Names {
        Names::new(&host_name(), &interface_addresses())
    }
}

/// The certificate and key files to serve: the configured pair, or the self-signed pair in
/// `<data_dir>/web/`, made now if missing, and made again when [`needs_renewal`].
pub fn certificate_files(
    configured: Option<(&Path, &Path)>,
    data_dir: &Path,
) -> Result<(PathBuf, PathBuf), TlsError> {
    if let Some((cert, key)) = configured {
        return Ok((cert.to_path_buf(), key.to_path_buf()));
    }
    let (cert, key) = self_signed_files(data_dir);
    renew_if_needed(data_dir, &Names::of_this_device(), Utc::now())?;
    Ok((cert, key))
}

/// Where the self-signed pair is kept: `<data_dir>/web/cert.pem` and `key.pem`.
pub fn self_signed_files(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("web");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Makes the self-signed pair in `<data_dir>/web/` when it is missing or [`needs_renewal`];
/// `true` when it made one.
pub fn renew_if_needed(
    data_dir: &Path,
    names: &Names,
    now: DateTime<Utc>,
) -> Result<bool, TlsError> {
    let (cert, key) = self_signed_files(data_dir);
    let current = std::fs::read(&cert).ok().filter(|_| key.is_file());
    if current.is_some_and(|pem| !needs_renewal(&pem, names, now)) {
        return Ok(false);
    }
    let file_error = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = data_dir.join("web");
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let (cert_pem, key_pem) = self_signed(names, now)?;
    // Key first, each written whole then renamed: a crash leaves the old pair or the new.
    write_private(&key, &key_pem).map_err(|e| file_error(&key, e))?;
    write_private(&cert, &cert_pem).map_err(|e| file_error(&cert, e))?;
    tracing::info!(
        path = %cert.display(),
        sha256 = fingerprint(&cert_pem).unwrap_or_default(),
        days = LIFETIME_DAYS,
        "made a self-signed certificate for the console"
    );
    Ok(true)
}

/// Whether the self-signed certificate `cert_pem` is to be made again at `now`: unreadable,
/// fewer than [`RENEW_DAYS_BEFORE`] days left, valid longer than [`LIFETIME_DAYS`] (an
/// older Beacon's ten years), or missing one of `names`.
pub fn needs_renewal(cert_pem: &[u8], names: &Names, now: DateTime<Utc>) -> bool {
    let Ok(cert) = X509::from_pem(cert_pem) else {
        return true;
    };
    let time = |days: u32| Asn1Time::from_unix(now.timestamp() + i64::from(days) * 86_400);
    let (Ok(renew_from), Ok(longest)) = (time(RENEW_DAYS_BEFORE), time(LIFETIME_DAYS + 1)) else {
        return true;
    };
    if cert.not_after() <= renew_from || cert.not_after() > longest {
        return true;
    }
    let present = cert.subject_alt_names();
    let has = |wanted: &dyn Fn(&openssl::x509::GeneralNameRef) -> bool| {
        present.as_ref().is_some_and(|all| all.iter().any(wanted))
    };
    let dns_missing = names
        .dns
        .iter()
        .any(|name| !has(&|n| n.dnsname() == Some(name.as_str())));
    let address_missing = names.addresses.iter().any(|address| {
        let bytes = match address {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        !has(&|n| n.ipaddress() == Some(bytes.as_slice()))
    });
    dns_missing || address_missing
}

/// SHA-256 fingerprint of the (first) certificate in `cert_pem`, as browsers show it:
/// upper-case hex pairs separated by colons.
pub fn fingerprint(cert_pem: &[u8]) -> Result<String, TlsError> {
    let digest = X509::from_pem(cert_pem)?.digest(MessageDigest::sha256())?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A self-signed certificate for `names`, valid from `now` for [`LIFETIME_DAYS`]: PEM
/// certificate and PEM PKCS#8 key.
pub fn self_signed(names: &Names, now: DateTime<Utc>) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "beacon.local")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Beacon console")?;
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
    // An hour back: a client whose clock is a little behind still accepts it.
    let start = now.timestamp() - 3600;
    builder.set_not_before(&*Asn1Time::from_unix(start)?)?;
    builder.set_not_after(&*Asn1Time::from_unix(
        start + i64::from(LIFETIME_DAYS) * 86_400,
    )?)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut alt = SubjectAlternativeName::new();
    for dns in &names.dns {
        alt.dns(dns);
    }
    for address in &names.addresses {
        alt.ip(&address.to_string());
    }
    let alt = alt.build(&builder.x509v3_context(None, None))?;
    builder.append_extension(alt)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}

/// The certificate the console serves, replaceable while it runs (a renewal takes effect at
/// the next handshake).
#[derive(Debug)]
pub struct ConsoleCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ConsoleCertificate {
    /// Serves the pair in the PEM files from now on.
    pub fn load(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let loaded = certified_key(cert, key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }
}

impl ResolvesServerCert for ConsoleCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// rustls server settings for the PEM files, and the handle that swaps the certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, Arc<ConsoleCertificate>), TlsError> {
    let certificate = Arc::new(ConsoleCertificate {
        current: RwLock::new(certified_key(cert, key)?),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Rustls(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(certificate.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), certificate))
}

/// The chain and signing key of the PEM files, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
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
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Arc::new(certified))
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The addresses of this device's interfaces but loopback and IPv6 link-local.
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses: Vec<IpAddr> = interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            let ip: IpAddr = match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
                (Some(v4), _) => v4.ip().into(),
                (_, Some(v6)) => v6.ip().into(),
                _ => return None,
            };
            let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            (!ip.is_loopback() && !link_local_v6).then_some(ip)
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Writes `bytes` to `path` (0600) through a temporary file renamed into place.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
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

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_000 + day)
    }

    #[test]
    fn renewed_before_expiry_and_when_a_name_or_address_is_missing() {
        let names = Names::new(
            "desk-7",
            &["192.0.2.10".parse().unwrap_or_else(|e| panic!("{e}"))],
        );
        let (pem, _) = self_signed(&names, at(0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!needs_renewal(&pem, &names, at(0)));
        let last_quiet_day = i64::from(LIFETIME_DAYS - RENEW_DAYS_BEFORE) - 1;
        assert!(!needs_renewal(&pem, &names, at(last_quiet_day)));
        assert!(
            needs_renewal(&pem, &names, at(last_quiet_day + 1)),
            "30 days left"
        );
        let moved = Names::new(
            "desk-7",
            &["192.0.2.11".parse().unwrap_or_else(|e| panic!("{e}"))],
        );
        assert!(needs_renewal(&pem, &moved, at(0)), "new address");
        let renamed = Names::new(
            "desk-8",
            &["192.0.2.10".parse().unwrap_or_else(|e| panic!("{e}"))],
        );
        assert!(needs_renewal(&pem, &renamed, at(0)), "new host name");
        assert!(needs_renewal(b"not a certificate", &names, at(0)));
    }

    #[test]
    fn a_ten_year_certificate_of_an_older_beacon_is_replaced() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let names = Names::new("desk-7", &[]);
        let (pem, key) = self_signed(&names, at(0)).unwrap_or_else(|e| panic!("{e}"));
        let (cert_file, key_file) = self_signed_files(dir.path());
        let _ = std::fs::create_dir_all(dir.path().join("web"));
        let _ = std::fs::write(&cert_file, &pem);
        let _ = std::fs::write(&key_file, &key);
        assert_eq!(renew_if_needed(dir.path(), &names, at(1)).ok(), Some(false));
        // Seen from ten years before its end (as a 3650-day one is on its first day).
        assert_eq!(
            renew_if_needed(dir.path(), &names, at(i64::from(LIFETIME_DAYS) - 3650)).ok(),
            Some(true)
        );
        assert_ne!(std::fs::read(&cert_file).unwrap_or_default(), pem);
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_certificate_as_browsers_show_it() {
        let (pem, _) = self_signed(&Names::new("", &[]), at(0)).unwrap_or_else(|e| panic!("{e}"));
        let der = X509::from_pem(&pem)
            .and_then(|c| c.to_der())
            .unwrap_or_default();
        let digest = openssl::sha::sha256(&der);
        let shown = fingerprint(&pem).unwrap_or_default();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(
            shown.starts_with(&format!("{:02X}:{:02X}:", digest[0], digest[1])),
            "{shown}"
        );
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
