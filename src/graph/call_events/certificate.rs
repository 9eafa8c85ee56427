//! The app registration's certificate credential: a key pair and self-signed certificate the
//! appliance makes once and keeps (0600, in the store's secrets), the certificate the admin
//! uploads in Entra (PEM or DER `.cer`, with the thumbprint Entra shows), and the signed
//! client assertion that proves the appliance holds the key (Entra "certificate credentials":
//! header `alg: PS256`, `typ: JWT`, `x5t#S256`; claims `aud` = the token endpoint,
//! `iss` = `sub` = the client id, `jti`, `nbf`, `iat`, `exp` a few minutes ahead). Pure but
//! for the randomness of the key and the `jti`; time is passed in.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::X509;
use serde_json::json;

use crate::graph::crypto::{self, KeyError, StoredKey};
use crate::secret::Secret;
use crate::store::Store;

/// Where the credential is kept in the store's secrets tree.
pub const SECRET_NAME: &str = "app-credential/certificate";
/// Validity of a new certificate (Entra accepts self-signed certificates of any length;
/// two years keeps renewals rare and still bounded).
const DAYS: u32 = 730;
/// How long a client assertion is valid (Entra: "5-10 minutes after nbf at most").
const ASSERTION_LIFETIME: Duration = Duration::minutes(5);
/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// See the module docs. `Debug` shows the thumbprint only.
#[derive(Clone)]
pub struct AppCertificate {
    private_key: PKey<Private>,
    certificate: X509,
    /// End of validity: Entra refuses an expired certificate.
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCertificate")
            .field("thumbprint", &self.thumbprint())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl AppCertificate {
    /// A new key and certificate, valid from `now`.
    pub fn generate(now: DateTime<Utc>) -> Result<AppCertificate, KeyError> {
        let (private_key, certificate, not_after) =
            crypto::self_signed("Beacon emergency call events", now, DAYS)?;
        Ok(AppCertificate {
            private_key,
            certificate,
            not_after,
        })
    }

    /// The stored credential, or a new one (stored and flushed before it is returned).
    pub fn load_or_create(store: &Store, now: DateTime<Utc>) -> Result<AppCertificate, KeyError> {
        let io = |e: crate::store::StoreError| KeyError::from_message(e.to_string());
        if let Some(stored) = store.secret(SECRET_NAME).map_err(io)? {
            // Only the kind of the problem: serde's message could quote key material.
            let stored: StoredKey = serde_json::from_str(stored.expose()).map_err(|e| {
                KeyError::from_message(format!(
                    "the stored app certificate is unreadable ({:?} at line {})",
                    e.classify(),
                    e.line()
                ))
            })?;
            return AppCertificate::from_stored(&stored);
        }
        let made = AppCertificate::generate(now)?;
        let json = serde_json::to_string(&made.to_stored()?)
            .map_err(|e| KeyError::from_message(e.to_string()))?;
        store
            .set_secret(SECRET_NAME, &Secret::new(json))
            .map_err(io)?;
        store.flush().map_err(io)?;
        tracing::info!(
            thumbprint = made.thumbprint(),
            "created the app registration's certificate"
        );
        Ok(made)
    }

    fn from_stored(stored: &StoredKey) -> Result<AppCertificate, KeyError> {
        let der = B64.decode(&stored.certificate_der_base64).map_err(|_| {
            KeyError::from_message("the stored app certificate is not base64".into())
        })?;
        Ok(AppCertificate {
            private_key: PKey::private_key_from_pem(stored.private_key_pem.as_bytes())?,
            certificate: X509::from_der(&der)?,
            not_after: stored.not_after,
        })
    }

    fn to_stored(&self) -> Result<StoredKey, KeyError> {
        let pem = self.private_key.private_key_to_pem_pkcs8()?;
        Ok(StoredKey {
            id: "app-credential".into(),
            private_key_pem: String::from_utf8_lossy(&pem).into_owned(),
            certificate_der_base64: B64.encode(self.certificate_der()?),
            not_after: self.not_after,
        })
    }

    /// The certificate, DER (a `.cer` file Entra accepts).
    pub fn certificate_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.certificate.to_der()?)
    }

    /// The certificate, PEM (a `.pem` file Entra accepts). Public: no key in it.
    pub fn certificate_pem(&self) -> Result<String, KeyError> {
        Ok(String::from_utf8_lossy(&self.certificate.to_pem()?).into_owned())
    }

    /// The SHA-1 thumbprint in upper-case hex: what Entra shows beside an uploaded
    /// certificate, so the admin can tell it is this one.
    pub fn thumbprint(&self) -> String {
        self.certificate
            .digest(MessageDigest::sha1())
            .map(|d| d.iter().map(|b| format!("{b:02X}")).collect())
            .unwrap_or_default()
    }

    /// `x5t#S256`: the base64url SHA-256 thumbprint of the DER certificate.
    pub fn x5t_s256(&self) -> Result<String, KeyError> {
        Ok(URL_SAFE_NO_PAD.encode(self.certificate.digest(MessageDigest::sha256())?))
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid from `now`
    /// for five minutes, with the unique id `jti`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: DateTime<Utc>,
        jti: &str,
    ) -> Result<String, KeyError> {
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256()?});
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": now.timestamp(),
            "iat": now.timestamp(),
            "exp": (now + ASSERTION_LIFETIME).timestamp(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // PS256 (RFC 7518 §3.5): RSASSA-PSS, SHA-256, MGF1 with SHA-256, salt of 32 bytes.
        let mut signer = Signer::new(MessageDigest::sha256(), &self.private_key)?;
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        signer.update(signing_input.as_bytes())?;
        let signature = signer.sign_to_vec()?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A random `jti` in the GUID shape Entra's example uses.
pub fn new_jti() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        // The clock's nanoseconds: unique enough for a replay check within five minutes.
        b[..8].copy_from_slice(
            &Utc::now()
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .to_le_bytes(),
        );
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;
    use serde_json::Value;

    #[test]
    fn the_assertion_is_a_ps256_jwt_the_certificate_verifies() {
        let now = Utc::now();
        let cert = AppCertificate::generate(now).expect("generate");
        let jwt = cert
            .assertion(
                "app-id",
                "https://login.example/t/oauth2/v2.0/token",
                now,
                &new_jti(),
            )
            .expect("sign");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
        };
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], cert.x5t_s256().expect("x5t"));
        assert_eq!(claims["iss"], "app-id");
        assert_eq!(claims["sub"], "app-id");
        assert_eq!(claims["exp"].as_i64(), Some(now.timestamp() + 300));
        let public = cert.certificate.public_key().expect("public key");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).expect("verifier");
        verifier.set_rsa_padding(Padding::PKCS1_PSS).expect("pss");
        verifier
            .set_rsa_mgf1_md(MessageDigest::sha256())
            .expect("mgf1");
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .expect("update");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        assert!(verifier.verify(&signature).expect("verify"));
        assert_eq!(cert.thumbprint().len(), 40);
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
