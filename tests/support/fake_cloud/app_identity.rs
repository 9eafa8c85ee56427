//! The identity platform's client-credentials grant (Entra "client credentials" and
//! "certificate credentials"; graph-teams.md B.10: emergency call events need an app-only
//! token): the app registration authenticates with its client secret or with a JWT
//! assertion signed by a certificate the test uploaded (`alg` PS256 or RS256, the
//! certificate named by `x5t#S256` or `x5t`; `aud` = this token endpoint, `iss` = `sub` =
//! the client id, `exp`/`nbf`); `scope` must be `{resource}/.default`. The access token is a
//! JWT the fake signs; its `roles` claim holds the application permissions an admin
//! consented to — none until the test grants consent.
//!
//! The refusals are the documented AADSTS errors: 7000215 (wrong secret), 700027 (assertion
//! signature not valid, or signed by a certificate not uploaded), 700024 (assertion outside
//! its valid time range [3P: MSAL's SignedAssertionInvalidTimeRange]), 700016 (unknown
//! client, answered before this module by the shared client check), 7000216 (no credential),
//! 1002012 (scope without `/.default`) [UNK: the exact texts].
//!
//! "Allow public client flows" (A.4) concerns the device-code and refresh grants; the
//! client-credentials grant is confidential by definition and is checked here alone [INF].

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::Utc;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use openssl::x509::X509;
use serde_json::{json, Value};

use super::errors;
use super::web::{guid, param, Resp};
use super::FakeOptions;

/// The application permission of emergency call events (B.10).
pub const EMERGENCY_ROLE: &str = "CallEvents-Emergency.Read.All";
/// The assertion type of a JWT client assertion.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew the fake tolerates on `nbf` and `exp` [INF].
const SKEW_SECS: i64 = 60;

/// The app registration's credentials and consent, as the test set them up.
pub struct AppRegistration {
    /// Certificates uploaded under "Certificates & secrets".
    certificates: Vec<X509>,
    /// Application permissions an admin consented to.
    pub roles: Vec<String>,
    /// The key the fake signs access tokens with.
    signing_key: PKey<Private>,
    /// Client-credentials tokens issued so far (and how each client authenticated).
    pub issued: Vec<AppGrant>,
}

/// One client-credentials grant the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrant {
    /// `"secret"` or `"certificate"`.
    pub credential: &'static str,
    pub roles: Vec<String>,
}

impl Default for AppRegistration {
    fn default() -> Self {
        AppRegistration {
            certificates: Vec::new(),
            roles: Vec::new(),
            signing_key: PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key"),
            issued: Vec::new(),
        }
    }
}

/// What a successful grant yields: the token text and its roles.
pub struct AppTokenIssued {
    pub token: String,
    pub roles: Vec<String>,
}

impl AppRegistration {
    /// Uploads a certificate (PEM or base64/DER). Panics on a certificate that does not parse:
    /// the test made a mistake.
    pub fn upload(&mut self, certificate: &[u8]) {
        let x509 = X509::from_pem(certificate)
            .or_else(|_| X509::from_der(certificate))
            .or_else(|_| {
                let der = B64
                    .decode(String::from_utf8_lossy(certificate).trim())
                    .unwrap_or_default();
                X509::from_der(&der)
            })
            .expect("the uploaded certificate parses");
        self.certificates.push(x509);
    }

    pub fn remove_certificates(&mut self) {
        self.certificates.clear();
    }

    /// `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`, after the
    /// tenant and client checks. `token_url` is this endpoint's URL (the assertion's `aud`).
    #[allow(clippy::result_large_err)] // the refusal is the response itself, built once
    pub fn grant(
        &mut self,
        opts: &FakeOptions,
        client_id: &str,
        form: &[(String, String)],
        token_url: &str,
    ) -> Result<AppTokenIssued, Resp> {
        let scope = param(form, "scope").unwrap_or_default();
        if !scope.split_whitespace().any(|s| s.ends_with("/.default")) || scope.is_empty() {
            return Err(errors::identity(
                400,
                "invalid_scope",
                Some(1002012),
                &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
            ));
        }
        let credential = match (param(form, "client_secret"), param(form, "client_assertion")) {
            (Some(secret), _) => {
                if opts.client_secret.as_deref() != Some(secret) {
                    return Err(errors::identity(
                        401,
                        "invalid_client",
                        Some(7000215),
                        &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
                    ));
                }
                "secret"
            }
            (None, Some(assertion)) => {
                if param(form, "client_assertion_type") != Some(ASSERTION_TYPE) {
                    return Err(errors::identity(
                        400,
                        "invalid_request",
                        Some(50027),
                        "JWT token is invalid or malformed: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                    ));
                }
                self.check_assertion(client_id, assertion, token_url)?;
                "certificate"
            }
            (None, None) => {
                return Err(errors::identity(
                    401,
                    "invalid_client",
                    Some(7000216),
                    "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
                ))
            }
        };
        let roles = self.roles.clone();
        let lifetime = opts.access_token_lifetime;
        let now = Utc::now();
        let mut claims = json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{}/", opts.tenant_id),
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "exp": (now + chrono::Duration::from_std(lifetime).unwrap_or_default()).timestamp(),
            "appid": client_id,
            "idtyp": "app",
            "oid": guid(),
            "tid": opts.tenant_id,
            "uti": guid(),
        });
        // Entra leaves `roles` out when nothing is consented [INF: shown in tokens without app
        // roles].
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        self.issued.push(AppGrant {
            credential,
            roles: roles.clone(),
        });
        Ok(AppTokenIssued {
            token: self.sign(&claims),
            roles,
        })
    }

    #[allow(clippy::result_large_err)]
    fn check_assertion(
        &self,
        client_id: &str,
        assertion: &str,
        token_url: &str,
    ) -> Result<(), Resp> {
        let malformed = || {
            errors::identity(
                400,
                "invalid_request",
                Some(50027),
                "JWT token is invalid or malformed.",
            )
        };
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts.as_slice() else {
            return Err(malformed());
        };
        let decode = |p: &str| -> Option<Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
        };
        let (Some(head), Some(body), Ok(signature)) = (
            decode(header),
            decode(claims),
            URL_SAFE_NO_PAD.decode(signature),
        ) else {
            return Err(malformed());
        };
        let invalid_signature = |why: &str| {
            errors::identity(
                401,
                "invalid_client",
                Some(700027),
                &format!("Client assertion failed signature validation. {why}"),
            )
        };
        let thumbprint = |x: &X509, digest| {
            x.digest(digest)
                .map(|d| URL_SAFE_NO_PAD.encode(d))
                .unwrap_or_default()
        };
        let certificate = self.certificates.iter().find(|c| {
            head.get("x5t#S256").and_then(Value::as_str)
                == Some(thumbprint(c, MessageDigest::sha256()).as_str())
                || head.get("x5t").and_then(Value::as_str)
                    == Some(thumbprint(c, MessageDigest::sha1()).as_str())
        });
        let Some(certificate) = certificate else {
            return Err(invalid_signature(&format!(
                "The key used is not registered on application '{client_id}'."
            )));
        };
        let public = certificate.public_key().map_err(|_| malformed())?;
        let mut verifier =
            Verifier::new(MessageDigest::sha256(), &public).map_err(|_| malformed())?;
        match head.get("alg").and_then(Value::as_str) {
            Some("PS256") => {
                verifier
                    .set_rsa_padding(Padding::PKCS1_PSS)
                    .map_err(|_| malformed())?;
                verifier
                    .set_rsa_mgf1_md(MessageDigest::sha256())
                    .map_err(|_| malformed())?;
                verifier
                    .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                    .map_err(|_| malformed())?;
            }
            Some("RS256") => {}
            _ => return Err(invalid_signature("Unsupported signing algorithm.")),
        }
        let signed = format!("{header}.{claims}");
        let valid = verifier
            .verify_oneshot(&signature, signed.as_bytes())
            .unwrap_or(false);
        if !valid {
            return Err(invalid_signature("The signature is not valid."));
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str);
        if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
            return Err(errors::identity(
                401,
                "invalid_client",
                Some(700021),
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ));
        }
        if text("aud") != Some(token_url) {
            // [UNK] Entra's code for a wrong audience is not in the reference; the fake uses
            // the malformed-assertion answer.
            return Err(errors::identity(
                400,
                "invalid_request",
                Some(50027),
                &format!("JWT token is invalid or malformed: the audience must be '{token_url}'."),
            ));
        }
        let now = Utc::now().timestamp();
        let number = |k: &str| body.get(k).and_then(Value::as_i64);
        let (Some(exp), nbf) = (number("exp"), number("nbf")) else {
            return Err(malformed());
        };
        if exp + SKEW_SECS < now || nbf.is_some_and(|nbf| nbf - SKEW_SECS > now) {
            return Err(errors::identity(
                401,
                "invalid_client",
                Some(700024),
                &format!("Client assertion is not within its valid time range. Current time: {now}, assertion valid from {}, expiry time of assertion {exp}.", nbf.unwrap_or(0)),
            ));
        }
        Ok(())
    }

    /// An RS256 JWT signed with the fake's own key.
    fn sign(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256","kid":"fake-app"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let mut signer = Signer::new(MessageDigest::sha256(), &self.signing_key).expect("signer");
        signer.update(input.as_bytes()).expect("sign");
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signer.sign_to_vec().expect("signature"))
        )
    }
}
