//! Rich notifications' `encryptedContent` (graph-teams.md C.2), hostile or not:
//! * any `data` / `dataKey` / `dataSignature` / certificate id: decryption refuses it without
//!   panicking (base64, RSA-OAEP unwrap, key length, HMAC, AES-CBC padding);
//! * any plaintext sealed as Graph seals it decrypts to exactly itself, one changed character
//!   in any field is refused, and what decrypts is read like the ingest stage reads it (JSON,
//!   then classified when it is an object).
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use beacon::emergency::{classify, Context, Rules};
use beacon::graph::crypto::{seal, EncryptionKey, KeyRing};
use beacon::graph::notification::EncryptedContent;
use libfuzzer_sys::fuzz_target;

const KEY_ID: &str = "fuzz-key";

struct Fixture {
    ring: KeyRing,
    certificate: Vec<u8>,
    rules: Rules,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = EncryptionKey::generate(KEY_ID, chrono::Utc::now(), 30).expect("key");
        let certificate = key.certificate_der().to_vec();
        Fixture {
            ring: KeyRing::new(vec![key]),
            certificate,
            rules: Rules::default(),
        }
    })
}

#[derive(Debug, Arbitrary)]
enum Input<'a> {
    /// Fields as a publisher into the hub may write them.
    Hostile {
        data: &'a str,
        data_key: &'a str,
        data_signature: &'a str,
        /// Otherwise the held key's id.
        other_certificate: Option<&'a str>,
    },
    /// A genuine encryption of this plaintext, with one field optionally tampered.
    Sealed {
        plaintext: &'a [u8],
        tamper: Option<(u8, u16)>,
    },
}

fuzz_target!(|input: Input<'_>| {
    let fixture = fixture();
    match input {
        Input::Hostile {
            data,
            data_key,
            data_signature,
            other_certificate,
        } => {
            let content = EncryptedContent {
                data: data.to_string(),
                data_key: data_key.to_string(),
                data_signature: data_signature.to_string(),
                encryption_certificate_id: other_certificate.unwrap_or(KEY_ID).to_string(),
                encryption_certificate_thumbprint: None,
            };
            let _ = fixture.ring.decrypt(&content);
        }
        Input::Sealed { plaintext, tamper } => {
            let mut content = seal(&fixture.certificate, KEY_ID, plaintext).expect("seal");
            let tampered = match tamper {
                None => false,
                Some((field, at)) => {
                    let target = match field % 3 {
                        0 => &mut content.data,
                        1 => &mut content.data_key,
                        _ => &mut content.data_signature,
                    };
                    let mut bytes = target.clone().into_bytes();
                    let at = usize::from(at) % bytes.len().max(1);
                    let before = bytes.get(at).copied();
                    if let Some(b) = bytes.get_mut(at) {
                        // Another base64 character (or '=').
                        *b = if *b == b'A' { b'B' } else { b'A' };
                    }
                    *target = String::from_utf8(bytes).expect("ascii");
                    before.is_some()
                }
            };
            match fixture.ring.decrypt(&content) {
                Ok(clear) => {
                    assert!(!tampered, "tampered content was accepted");
                    assert_eq!(clear, plaintext, "decrypt(seal(x)) != x");
                    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&clear) {
                        if value.is_object() {
                            let _ = classify(&value, &Context::default(), &fixture.rules);
                        }
                    }
                }
                Err(e) => assert!(tampered, "a genuine sealing was refused: {e}"),
            }
        }
    }
});
