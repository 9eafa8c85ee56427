//! What an identity-platform error means for an unattended appliance (graph-teams.md A.3,
//! A.4, A.6), in words a security officer can act on. Pure.
//!
//! Microsoft asks apps to react to the `error` field and use the AADSTS numbers only for
//! diagnostics; the numbers here refine the sentence, never the decision, except for the two
//! secret-presence codes that decide whether the client secret is sent.

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// A human must sign the service account in again (or an admin must act first).
    SignInRequired { code: Option<u32>, sentence: String },
    /// The registration is a public client: stop sending the secret (AADSTS700025).
    SecretForbidden,
    /// The registration demands the secret (AADSTS7000218).
    SecretRequired,
    /// Try again later with backoff; keep the refresh token.
    Transient { sentence: String },
}

/// The AADSTS number in an `error_description` ("AADSTS70008: The refresh token …").
pub fn aadsts_code(description: &str) -> Option<u32> {
    let start = description.find("AADSTS")? + "AADSTS".len();
    let digits: String = description[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Classifies a token-endpoint error response.
pub fn classify(error: &str, description: Option<&str>) -> TokenFailure {
    let code = description.and_then(aadsts_code);
    match code {
        Some(700025) => return TokenFailure::SecretForbidden,
        Some(7000218) => return TokenFailure::SecretRequired,
        Some(50196) => {
            return TokenFailure::Transient {
                sentence: "Microsoft saw too many identical sign-in requests (AADSTS50196); Beacon is backing off.".into(),
            }
        }
        _ => {}
    }
    match error {
        "invalid_grant" | "interaction_required" | "consent_required" | "login_required" => {
            TokenFailure::SignInRequired {
                code,
                sentence: sentence(code, error),
            }
        }
        "temporarily_unavailable" | "server_error" => TokenFailure::Transient {
            sentence: "Microsoft's sign-in service is temporarily unavailable; Beacon keeps the saved sign-in and retries.".into(),
        },
        "invalid_client" | "unauthorized_client" => TokenFailure::SignInRequired {
            code,
            sentence: format!(
                "Microsoft refused Beacon's app registration ({error}{}). Check the client id and tenant on the setup page.",
                code.map(|c| format!(", AADSTS{c}")).unwrap_or_default()
            ),
        },
        _ => TokenFailure::SignInRequired {
            code,
            sentence: format!(
                "Microsoft refused the saved sign-in ({error}{}). Sign the service account in again.",
                code.map(|c| format!(", AADSTS{c}")).unwrap_or_default()
            ),
        },
    }
}

/// Classifies a token-endpoint error of the app-only (client-credentials) sign-in, where the
/// app registration's own credential is at fault rather than a person's sign-in.
pub fn classify_app(error: &str, description: Option<&str>) -> TokenFailure {
    let code = description.and_then(aadsts_code);
    let text = match code {
        Some(7000215) => "Microsoft refused the client secret (AADSTS7000215): it is not the secret's value, or not this app registration's. Enter the secret's Value from Entra (Certificates & secrets), not its ID.",
        Some(7000222) => "The app registration's client secret has expired (AADSTS7000222). Create a new one in Entra and enter it, or use the certificate.",
        Some(700027) => "Microsoft did not accept Beacon's certificate (AADSTS700027): upload the certificate shown on the setup page to the app registration (Certificates & secrets → Certificates), and check its thumbprint.",
        Some(700024) => "Microsoft refused Beacon's signed assertion as outside its valid time (AADSTS700024): check the appliance's clock (network time).",
        Some(700016) => "Microsoft does not know the app registration (AADSTS700016): check the client id and the tenant on the setup page.",
        Some(90002) => "Microsoft does not know the tenant (AADSTS90002): check the tenant id on the setup page.",
        _ => return classify(error, description),
    };
    TokenFailure::SignInRequired {
        code,
        sentence: text.to_string(),
    }
}

fn sentence(code: Option<u32>, error: &str) -> String {
    let text = match code {
        Some(70008) | Some(700082) => "The sign-in expired because it was not used for too long (90 days of inactivity). Sign the service account in again.",
        Some(50173) => "The service account's sign-in was revoked (its password was changed or an admin revoked its sessions). Sign it in again.",
        Some(50076) | Some(50078) | Some(50079) => "The service account now needs multi-factor authentication (a Conditional Access or MFA policy changed, or the appliance's network address did). Ask the Entra admin to exempt the account or this network, then sign in again.",
        Some(70043) => "A Conditional Access sign-in frequency policy ended the session. Ask the Entra admin to exempt the service account, then sign in again.",
        Some(53003) => "Conditional Access blocked the sign-in (for example a policy that blocks the device code flow). Ask the Entra admin to exclude the service account.",
        Some(65001) => "Consent for Beacon's app registration is missing or was revoked. An admin must grant consent again; then sign in.",
        Some(50057) => "The service account is disabled in Entra ID. Enable it, then sign in again.",
        _ => {
            return format!(
                "Microsoft no longer accepts the saved sign-in ({error}{}). Sign the service account in again.",
                code.map(|c| format!(", AADSTS{c}")).unwrap_or_default()
            )
        }
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_descriptions() {
        assert_eq!(
            aadsts_code(
                "AADSTS70008: The provided authorization code or refresh token has expired"
            ),
            Some(70008)
        );
        assert_eq!(
            aadsts_code("x AADSTS7000218: The request body must contain"),
            Some(7000218)
        );
        assert_eq!(aadsts_code("no code"), None);
    }

    #[test]
    fn invalid_grant_variants_need_a_human_with_a_specific_sentence() {
        for (code, words) in [
            (70008, "inactivity"),
            (700082, "inactivity"),
            (50173, "revoked"),
            (50076, "multi-factor"),
            (50079, "multi-factor"),
            (70043, "frequency"),
            (53003, "Conditional Access blocked"),
            (65001, "Consent"),
            (50057, "disabled"),
        ] {
            let failure = classify("invalid_grant", Some(&format!("AADSTS{code}: text")));
            match failure {
                TokenFailure::SignInRequired { code: c, sentence } => {
                    assert_eq!(c, Some(code));
                    assert!(sentence.contains(words), "{code}: {sentence}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn app_credential_refusals_name_the_credential() {
        for (code, words) in [
            (7000215, "client secret"),
            (7000222, "expired"),
            (700027, "certificate"),
            (700024, "clock"),
            (700016, "client id"),
        ] {
            match classify_app("invalid_client", Some(&format!("AADSTS{code}: text"))) {
                TokenFailure::SignInRequired { sentence, .. } => {
                    assert!(sentence.contains(words), "{code}: {sentence}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            classify_app("temporarily_unavailable", None),
            TokenFailure::Transient { .. }
        ));
    }

    #[test]
    fn secret_presence_and_transients() {
        assert_eq!(
            classify("invalid_client", Some("AADSTS700025: Client is public")),
            TokenFailure::SecretForbidden
        );
        assert_eq!(
            classify(
                "invalid_client",
                Some("AADSTS7000218: must contain client_secret")
            ),
            TokenFailure::SecretRequired
        );
        assert!(matches!(
            classify("temporarily_unavailable", None),
            TokenFailure::Transient { .. }
        ));
        assert!(matches!(
            classify("invalid_grant", Some("AADSTS50196: loop")),
            TokenFailure::Transient { .. }
        ));
        assert!(matches!(
            classify("invalid_grant", None),
            TokenFailure::SignInRequired { code: None, .. }
        ));
    }
}
