//! Rich-notification crypto (graph-teams.md C.2): the appliance's encryption key pair and
//! self-signed certificate, and decryption of `encryptedContent`.
//!
//! Graph encrypts each resource with a fresh 32-byte key: `dataKey` is that key under our RSA
//! public key (OAEP with SHA-1 and MGF1-SHA-1), `dataSignature` is HMAC-SHA256 of the
//! ciphertext under the key, `data` is AES-256-CBC with PKCS7 padding and IV = the first 16
//! key bytes. Several keys can be live at once (by certificate id) so a rotation never drops a
//! notification that was encrypted for the previous certificate. [`seal`] does what Graph does;
//! the fake Microsoft cloud and the tests use it.
//!
//! The RSA key unwrap is OpenSSL's; the HMAC check (ring) and the AES decryption (RustCrypto)
//! are not, because they sit on every emergency's way to the strobe and OpenSSL 3's EVP layer
//! spent 0.2 ms on them once the CPU had idled (`Cargo.toml` has the figures). [`seal`] still
//! encrypts with OpenSSL, so the tests check two implementations against each other.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, Private};
use openssl::rsa::{Padding, Rsa, RsaRef};
use openssl::symm::{self, Cipher};
use openssl::x509::{X509NameBuilder, X509};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

use crate::graph::notification::EncryptedContent;

/// Prefix of the rich-notification keys in the store's secrets tree.
pub const KEY_PREFIX: &str = "rich-key/";

/// One encryption key pair with its certificate.
#[derive(Clone)]
pub struct EncryptionKey {
    /// `encryptionCertificateId` sent to Graph and echoed in every notification.
    pub id: String,
    private_key: PKey<Private>,
    certificate_der: Vec<u8>,
    /// The certificate's end of validity; Graph refuses expired certificates.
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// How a key is kept in the store's secrets tree (as JSON). `Debug` leaves the PEM out.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    pub private_key_pem: String,
    pub certificate_der_base64: String,
    pub not_after: DateTime<Utc>,
}

/// Why key material could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("encryption key: {0}")]
pub struct KeyError(String);

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl KeyError {
    pub fn from_message(message: String) -> KeyError {
        KeyError(message)
    }
}

impl From<openssl::error::ErrorStack> for KeyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        KeyError(e.to_string())
    }
}

/// Why `encryptedContent` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("no key for encryption certificate '{0}'")]
    UnknownCertificate(String),
    #[error("{0} is not valid base64")]
    BadBase64(&'static str),
    #[error("the data key could not be unwrapped with our private key")]
    KeyUnwrap,
    #[error("the data key has {0} bytes, not an AES key size")]
    KeyLength(usize),
    #[error("dataSignature does not match: the content was altered or not made for us")]
    SignatureMismatch,
    #[error("the data could not be decrypted")]
    Decrypt,
}

impl EncryptionKey {
    /// Generates an RSA-2048 key and a self-signed certificate valid from `now` for `days`;
    /// proved ([`EncryptionKey::self_test`]) before it is returned.
    pub fn generate(id: &str, now: DateTime<Utc>, days: u32) -> Result<EncryptionKey, KeyError> {
        let (private_key, certificate, not_after) =
            self_signed(&format!("Beacon rich notifications {id}"), now, days)?;
        let key = EncryptionKey {
            id: id.to_string(),
            certificate_der: certificate.to_der()?,
            private_key,
            not_after,
        };
        key.self_test()?;
        Ok(key)
    }

    /// A decryption-only key from a PEM private key (for `beacon parse --key`): no certificate.
    pub fn from_private_pem(id: &str, pem: &[u8]) -> Result<EncryptionKey, KeyError> {
        Ok(EncryptionKey {
            id: id.to_string(),
            private_key: PKey::private_key_from_pem(pem)?,
            certificate_der: Vec::new(),
            not_after: DateTime::<Utc>::MAX_UTC,
        })
    }

    /// The private key as PKCS#8 PEM (for `beacon keys export`-style tooling and tests).
    pub fn private_key_pem(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.private_key.private_key_to_pem_pkcs8()?)
    }

    /// Reads a key back from the store.
    pub fn from_stored(stored: &StoredKey) -> Result<EncryptionKey, KeyError> {
        let private_key = PKey::private_key_from_pem(stored.private_key_pem.as_bytes())?;
        let certificate_der = B64
            .decode(&stored.certificate_der_base64)
            .map_err(|_| KeyError("stored certificate is not base64".into()))?;
        Ok(EncryptionKey {
            id: stored.id.clone(),
            private_key,
            certificate_der,
            not_after: stored.not_after,
        })
    }

    /// For the store.
    pub fn to_stored(&self) -> Result<StoredKey, KeyError> {
        let pem = self.private_key.private_key_to_pem_pkcs8()?;
        Ok(StoredKey {
            id: self.id.clone(),
            private_key_pem: String::from_utf8_lossy(&pem).into_owned(),
            certificate_der_base64: self.certificate_base64(),
            not_after: self.not_after,
        })
    }

    /// Base64 DER of the certificate: the subscription's `encryptionCertificate`.
    pub fn certificate_base64(&self) -> String {
        B64.encode(&self.certificate_der)
    }

    /// DER of the certificate.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Proves the key before a notification needs it: a random data key wrapped as Graph
    /// wraps it, with the certificate's public key, is unwrapped with the private key, as every
    /// rich notification's is (a decryption-only key, which has no certificate, wraps with its
    /// own public half). A damaged stored key, or a certificate that is not the key's, is found
    /// at start, not at the first emergency. The round trip also builds what OpenSSL makes for
    /// a key at its first private operation and then shares between threads (the Montgomery
    /// contexts of n, p and q), which the first notification after a start or a rotation would
    /// otherwise pay for on its way to the strobe. What OpenSSL keeps per thread (the
    /// blinding) the thread that decrypts makes with [`KeyRing::self_test`] when it starts.
    pub fn self_test(&self) -> Result<(), KeyError> {
        let mut data_key = [0u8; 32];
        openssl::rand::rand_bytes(&mut data_key)?;
        let wrapped = if self.certificate_der.is_empty() {
            wrap_data_key(&*self.private_key.rsa()?, &data_key)?
        } else {
            let certificate = X509::from_der(&self.certificate_der)?;
            wrap_data_key(&*certificate.public_key()?.rsa()?, &data_key)?
        };
        match self.unwrap_data_key(&wrapped) {
            Ok(unwrapped) if unwrapped == data_key => Ok(()),
            _ => Err(KeyError(format!(
                "key {} cannot unwrap a data key wrapped with its certificate",
                self.id
            ))),
        }
    }

    /// Unwraps a `dataKey` (RSA-OAEP with SHA-1 and MGF1-SHA-1).
    fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<Vec<u8>, DecryptError> {
        // The same `RSA` every time (OpenSSL keeps the one it made at the first call), so what
        // `self_test` built stays built.
        let rsa = self
            .private_key
            .rsa()
            .map_err(|_| DecryptError::KeyUnwrap)?;
        let mut key = vec![0u8; rsa.size() as usize];
        let len = rsa
            .private_decrypt(wrapped, &mut key, Padding::PKCS1_OAEP)
            .map_err(|_| DecryptError::KeyUnwrap)?;
        key.truncate(len);
        Ok(key)
    }

    fn decrypt(&self, content: &EncryptedContent) -> Result<Vec<u8>, DecryptError> {
        let wrapped = B64
            .decode(content.data_key.trim())
            .map_err(|_| DecryptError::BadBase64("dataKey"))?;
        let data = B64
            .decode(content.data.trim())
            .map_err(|_| DecryptError::BadBase64("data"))?;
        let signature = B64
            .decode(content.data_signature.trim())
            .map_err(|_| DecryptError::BadBase64("dataSignature"))?;
        let key = self.unwrap_data_key(&wrapped)?;
        // Microsoft's samples use 256-bit keys; the algorithm is defined for any AES size.
        if ![16, 24, 32].contains(&key.len()) {
            return Err(DecryptError::KeyLength(key.len()));
        }
        // The signature before the data, compared in constant time.
        let verifier = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        if ring::hmac::verify(&verifier, &data, &signature).is_err() {
            return Err(DecryptError::SignatureMismatch);
        }
        match key.len() {
            16 => aes_cbc_decrypt::<aes::Aes128>(&key, &data),
            24 => aes_cbc_decrypt::<aes::Aes192>(&key, &data),
            _ => aes_cbc_decrypt::<aes::Aes256>(&key, &data),
        }
    }
}

/// AES-CBC with PKCS7 padding and IV = the first 16 key bytes (Graph's scheme).
fn aes_cbc_decrypt<C>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DecryptError>
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockDecrypt + aes::cipher::KeyInit,
    cbc::Decryptor<C>: aes::cipher::KeyIvInit,
{
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    let iv = key.get(..16).ok_or(DecryptError::Decrypt)?;
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| DecryptError::Decrypt)?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .map_err(|_| DecryptError::Decrypt)
}

/// The live keys, newest first. Cheap to clone, and every clone holds the same keys: a key
/// added at a rotation ([`KeyRing::rotate_to`]) is the one new subscriptions use at once, in
/// every part that holds the ring (the subscription keepers, each ingest stage).
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<Vec<EncryptionKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl KeyRing {
    pub fn new(mut keys: Vec<EncryptionKey>) -> KeyRing {
        keys.sort_by_key(|k| std::cmp::Reverse(k.not_after));
        KeyRing {
            keys: Arc::new(RwLock::new(keys)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<EncryptionKey>> {
        // A panic while holding the lock leaves the keys as they were: read them anyway.
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key new subscriptions should use.
    pub fn current(&self) -> Option<EncryptionKey> {
        self.read().first().cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The certificate ids held, newest first.
    pub fn ids(&self) -> Vec<String> {
        self.read().iter().map(|k| k.id.clone()).collect()
    }

    /// Whether a key with this certificate id is held.
    pub fn has(&self, certificate_id: &str) -> bool {
        self.read().iter().any(|k| k.id == certificate_id)
    }

    /// Makes `key` the current one; the one current until now stays (notifications already
    /// encrypted for it are on their way), older ones are dropped. Returns the dropped ids.
    pub fn rotate_to(&self, key: EncryptionKey) -> Vec<String> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let dropped = keys.iter().skip(1).map(|k| k.id.clone()).collect();
        keys.truncate(1);
        keys.insert(0, key);
        dropped
    }

    /// Runs every key's self-test ([`EncryptionKey::self_test`]) on the calling thread and
    /// returns the failures. OpenSSL keeps part of what a private-key operation needs (the
    /// blinding) per thread that made it first, and makes one more, shared, for every other
    /// thread at its first use: the thread that decrypts calls this when it starts, so that
    /// its first notification finds that made too.
    pub fn self_test(&self) -> Vec<KeyError> {
        self.read()
            .iter()
            .filter_map(|key| key.self_test().err())
            .collect()
    }

    /// Verifies and decrypts; returns the resource JSON bytes.
    pub fn decrypt(&self, content: &EncryptedContent) -> Result<Vec<u8>, DecryptError> {
        self.read()
            .iter()
            .find(|k| k.id == content.encryption_certificate_id)
            .ok_or_else(|| {
                DecryptError::UnknownCertificate(
                    content.encryption_certificate_id.chars().take(80).collect(),
                )
            })?
            .decrypt(content)
    }
}

/// A new RSA-2048 key and a self-signed certificate for it (SHA-256, common name
/// `common_name`), valid from `now` for `days`; with its end of validity. Used for the
/// rich-notification key and for the app registration's certificate credential.
pub fn self_signed(
    common_name: &str,
    now: DateTime<Utc>,
    days: u32,
) -> Result<(PKey<Private>, X509, DateTime<Utc>), KeyError> {
    let private_key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let not_after = now + chrono::Duration::days(i64::from(days));
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    let not_before = Asn1Time::from_unix(now.timestamp())?;
    let not_after_asn1 = Asn1Time::from_unix(not_after.timestamp())?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&private_key)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after_asn1)?;
    builder.sign(&private_key, MessageDigest::sha256())?;
    Ok((private_key, builder.build(), not_after))
}

/// Encrypts `plaintext` for the holder of `certificate_der`, exactly as Graph does.
pub fn seal(
    certificate_der: &[u8],
    certificate_id: &str,
    plaintext: &[u8],
) -> Result<EncryptedContent, KeyError> {
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key)?;
    seal_under(
        certificate_der,
        certificate_id,
        &key,
        Cipher::aes_256_cbc(),
        plaintext,
    )
}

/// Wraps a data key as Graph does: RSA-OAEP (SHA-1, MGF1-SHA-1) with a public key.
fn wrap_data_key<T: HasPublic>(
    public: &RsaRef<T>,
    data_key: &[u8],
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut wrapped = vec![0u8; public.size() as usize];
    let len = public.public_encrypt(data_key, &mut wrapped, Padding::PKCS1_OAEP)?;
    wrapped.truncate(len);
    Ok(wrapped)
}

/// [`seal`] with data key `key`, encrypting with `cipher` under its first
/// `cipher.key_len()` bytes (the tests give other key sizes, and mismatches).
fn seal_under(
    certificate_der: &[u8],
    certificate_id: &str,
    key: &[u8],
    cipher: Cipher,
    plaintext: &[u8],
) -> Result<EncryptedContent, KeyError> {
    let certificate = X509::from_der(certificate_der)?;
    let public = certificate.public_key()?.rsa()?;
    let aes_key = key.get(..cipher.key_len()).unwrap_or(key);
    let data = symm::encrypt(cipher, aes_key, key.get(..16), plaintext)?;
    let wrapped = wrap_data_key(&*public, key)?;
    let thumbprint = certificate.digest(MessageDigest::sha1())?;
    Ok(EncryptedContent {
        data_signature: B64.encode(hmac_sha256(key, &data)),
        data: B64.encode(&data),
        data_key: B64.encode(&wrapped),
        encryption_certificate_id: certificate_id.to_string(),
        encryption_certificate_thumbprint: Some(
            thumbprint.iter().map(|b| format!("{b:02X}")).collect(),
        ),
    })
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> EncryptionKey {
        match EncryptionKey::generate(id, Utc::now(), 365) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    fn seal_for(k: &EncryptionKey, text: &[u8]) -> EncryptedContent {
        match seal(k.certificate_der(), &k.id, text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn round_trip_and_rotation() {
        let old = key("beacon-old");
        let new = key("beacon-new");
        let ring = KeyRing::new(vec![old.clone(), new.clone()]);
        let msg = br#"{"id":"1","body":{"content":"hi"}}"#;
        assert_eq!(ring.decrypt(&seal_for(&old, msg)), Ok(msg.to_vec()));
        assert_eq!(ring.decrypt(&seal_for(&new, msg)), Ok(msg.to_vec()));
    }

    /// `key`'s private exponents each off by two: parses, and cannot decrypt.
    fn damaged(key: &EncryptionKey) -> EncryptionKey {
        let rsa = key.private_key.rsa().expect("rsa");
        let copy =
            |n: Option<&openssl::bn::BigNumRef>| n.expect("component").to_owned().expect("copy");
        let off = |n: Option<&openssl::bn::BigNumRef>| {
            let mut n = copy(n);
            n.add_word(2).expect("add");
            n
        };
        let rsa = Rsa::from_private_components(
            copy(Some(rsa.n())),
            copy(Some(rsa.e())),
            off(Some(rsa.d())),
            copy(rsa.p()),
            copy(rsa.q()),
            off(rsa.dmp1()),
            off(rsa.dmq1()),
            copy(rsa.iqmp()),
        )
        .expect("components");
        EncryptionKey {
            private_key: PKey::from_rsa(rsa).expect("pkey"),
            ..key.clone()
        }
    }

    #[test]
    fn a_key_that_cannot_decrypt_fails_its_self_test_in_words() {
        let good = key("beacon-good");
        assert!(good.self_test().is_ok());
        let bad = damaged(&good);
        let refused = bad.self_test().expect_err("a damaged key is found");
        assert_eq!(
            refused.to_string(),
            "encryption key: key beacon-good cannot unwrap a data key wrapped with its certificate"
        );
        // What the self-test foretold is what a notification would meet.
        let ring = KeyRing::new(vec![bad]);
        assert_eq!(
            ring.decrypt(&seal_for(&good, b"{}")),
            Err(DecryptError::KeyUnwrap)
        );
        // A sound key kept with another key's certificate: Graph would encrypt for the
        // certificate, and the key could not read it.
        let mismatched = EncryptionKey {
            certificate_der: key("beacon-other").certificate_der,
            ..good.clone()
        };
        assert!(mismatched.self_test().is_err());
        assert_eq!(
            KeyRing::new(vec![mismatched.clone()]).decrypt(&seal_for(&mismatched, b"{}")),
            Err(DecryptError::KeyUnwrap)
        );
    }

    #[test]
    fn tampered_content_is_refused() {
        let k = key("k1");
        let ring = KeyRing::new(vec![k.clone()]);
        let mut sealed = seal_for(&k, b"{\"a\":1}");
        let mut data = B64.decode(&sealed.data).unwrap_or_default();
        data[0] ^= 1;
        sealed.data = B64.encode(&data);
        assert_eq!(ring.decrypt(&sealed), Err(DecryptError::SignatureMismatch));
    }

    #[test]
    fn content_for_someone_else_is_refused() {
        let ours = key("shared-id");
        let theirs = key("shared-id");
        let ring = KeyRing::new(vec![ours]);
        assert_eq!(
            ring.decrypt(&seal_for(&theirs, b"{}")),
            Err(DecryptError::KeyUnwrap)
        );
        let mut unknown = seal_for(&theirs, b"{}");
        unknown.encryption_certificate_id = "nope".into();
        assert_eq!(
            ring.decrypt(&unknown),
            Err(DecryptError::UnknownCertificate("nope".into()))
        );
    }

    /// What Graph would send with `symmetric` as the data key, encrypted by OpenSSL with
    /// `cipher` (which need not fit the key: that is how a wrong key size is made).
    fn seal_with(
        k: &EncryptionKey,
        symmetric: &[u8],
        cipher: Cipher,
        text: &[u8],
    ) -> EncryptedContent {
        seal_under(k.certificate_der(), &k.id, symmetric, cipher, text).expect("seal")
    }

    #[test]
    fn every_aes_key_size_decrypts_what_openssl_encrypted() {
        let k = key("sizes");
        let ring = KeyRing::new(vec![k.clone()]);
        let text =
            br#"{"id":"1","body":{"content":"<p>Jordan Rivera has placed an Emergency Call</p>"}}"#;
        for (size, cipher) in [
            (16, Cipher::aes_128_cbc()),
            (24, Cipher::aes_192_cbc()),
            (32, Cipher::aes_256_cbc()),
        ] {
            let symmetric: Vec<u8> = (0..size as u8).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(
                ring.decrypt(&seal_with(&k, &symmetric, cipher, text)),
                Ok(text.to_vec()),
                "{size}-byte key"
            );
        }
    }

    #[test]
    fn a_wrong_key_size_or_broken_padding_is_refused_in_words() {
        let k = key("broken");
        let ring = KeyRing::new(vec![k.clone()]);
        let twenty = [7u8; 20];
        assert_eq!(
            ring.decrypt(&seal_with(&k, &twenty, Cipher::aes_128_cbc(), b"{}")),
            Err(DecryptError::KeyLength(20))
        );
        // Signed correctly, but the last block is not PKCS7 padding: a 256-bit key used to
        // encrypt with AES-128 decrypts to noise.
        let thirty_two = [9u8; 32];
        assert_eq!(
            ring.decrypt(&seal_with(&k, &thirty_two, Cipher::aes_128_cbc(), b"{}")),
            Err(DecryptError::Decrypt)
        );
    }

    #[test]
    fn stored_key_round_trip_keeps_decrypting() {
        let k = key("stored");
        let stored = k.to_stored().map_err(|e| e.to_string());
        let back = stored.and_then(|s| EncryptionKey::from_stored(&s).map_err(|e| e.to_string()));
        let ring = KeyRing::new(back.into_iter().collect());
        assert_eq!(ring.decrypt(&seal_for(&k, b"[1]")), Ok(b"[1]".to_vec()));
        assert!(format!("{k:?}").contains("stored"));
        assert!(!format!("{k:?}").contains("PRIVATE"));
    }
}
