//! The Microsoft identity platform (graph-teams.md A): the device authorization endpoint
//! (A.1, A.2), the token endpoint with the device-code grant (A.3), the secret rules (A.4),
//! the refresh-token grant with rotation (A.5) and the `invalid_grant` family (A.6).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use super::errors;
use super::web::{form_pairs, graph_time, json_response, opaque, param, percent_decode, Resp};
use super::FakeOptions;

/// Graph's resource id (the `aud` of Graph access tokens).
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The RFC 8628 grant type (A.3).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: "the interval MUST be increased by 5 seconds" after `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Requests arrive a little closer together than a client sent them; this much early is
/// still "on time" [INF: the fake's tolerance, not Entra's].
const POLL_SLACK: Duration = Duration::from_millis(250);

/// Why a refresh token stopped working: the rows of graph-teams.md A.6 that answer
/// `invalid_grant`. All are returned as `400 {"error": "invalid_grant", "error_codes": [code]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantFailure {
    /// AADSTS70008: refresh token expired due to inactivity.
    Expired,
    /// AADSTS700082: expired due to inactivity, with issue date and inactive span.
    Inactivity,
    /// AADSTS50173: grant revoked (password changed/reset, tokens revoked by user or admin).
    PasswordChanged,
    /// AADSTS50076: MFA now required (CA policy, per-user MFA, new location).
    MfaRequired,
    /// AADSTS50078: presented MFA claim expired.
    MfaExpired,
    /// AADSTS50079: MFA registration required.
    MfaRegistrationRequired,
    /// AADSTS70043: refresh token invalid due to Conditional Access sign-in frequency.
    SignInFrequency,
    /// AADSTS53003: blocked by Conditional Access (e.g. a device-code block policy, A.4/I9).
    ConditionalAccessBlocked,
    /// AADSTS65001: consent missing or revoked.
    ConsentRevoked,
    /// AADSTS50057: user disabled.
    UserDisabled,
    /// AADSTS50196: loop detected (too many identical requests).
    LoopDetected,
}

impl GrantFailure {
    pub const ALL: [GrantFailure; 11] = [
        GrantFailure::Expired,
        GrantFailure::Inactivity,
        GrantFailure::PasswordChanged,
        GrantFailure::MfaRequired,
        GrantFailure::MfaExpired,
        GrantFailure::MfaRegistrationRequired,
        GrantFailure::SignInFrequency,
        GrantFailure::ConditionalAccessBlocked,
        GrantFailure::ConsentRevoked,
        GrantFailure::UserDisabled,
        GrantFailure::LoopDetected,
    ];

    /// The AADSTS number (A.6).
    pub fn code(self) -> u32 {
        match self {
            GrantFailure::Expired => 70008,
            GrantFailure::Inactivity => 700082,
            GrantFailure::PasswordChanged => 50173,
            GrantFailure::MfaRequired => 50076,
            GrantFailure::MfaExpired => 50078,
            GrantFailure::MfaRegistrationRequired => 50079,
            GrantFailure::SignInFrequency => 70043,
            GrantFailure::ConditionalAccessBlocked => 53003,
            GrantFailure::ConsentRevoked => 65001,
            GrantFailure::UserDisabled => 50057,
            GrantFailure::LoopDetected => 50196,
        }
    }

    /// The description text (meaning column of A.6, worded after the STS reference I5).
    fn text(self, client_id: &str) -> String {
        let issued = graph_time(Utc::now() - chrono::Duration::days(91));
        match self {
            GrantFailure::Expired => "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.".into(),
            GrantFailure::Inactivity => format!("The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for 90.00:00:00."),
            GrantFailure::PasswordChanged => format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.", graph_time(Utc::now())),
            GrantFailure::MfaRequired => format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'."),
            GrantFailure::MfaExpired => format!("Presented multi-factor authentication has expired due to policies configured by your administrator, you must refresh your multi-factor authentication to access '{GRAPH_APP_ID}'."),
            GrantFailure::MfaRegistrationRequired => format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{GRAPH_APP_ID}'."),
            GrantFailure::SignInFrequency => format!("The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on {issued} and the maximum allowed lifetime for this request is 86400."),
            GrantFailure::ConditionalAccessBlocked => "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.".into(),
            GrantFailure::ConsentRevoked => format!("The user or administrator has not consented to use the application with ID '{client_id}'. Send an interactive authorization request for this user and resource."),
            GrantFailure::UserDisabled => "The user account is disabled.".into(),
            GrantFailure::LoopDetected => "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.".into(),
        }
    }

    fn response(self, client_id: &str) -> Resp {
        // [UNK] Entra adds `suberror` for some of these (e.g. MFA); A.6 does not list it, and
        // the appliance must act on `error` alone, so the fake leaves it out.
        errors::identity(
            400,
            "invalid_grant",
            Some(self.code()),
            &self.text(client_id),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved,
    Declined,
    Redeemed,
}

struct DeviceCode {
    user_code: String,
    tenant: String,
    client_id: String,
    scope: String,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    status: DeviceStatus,
}

struct RefreshToken {
    session: u64,
    client_id: String,
    scope: String,
    used: bool,
    revoked: Option<GrantFailure>,
}

/// An access token the fake issued.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// Delegated permissions (`scp`); none for an app-only token.
    pub scopes: Vec<String>,
    pub expires: Instant,
    /// Application permissions (`roles`) of an app-only (client-credentials) token.
    pub roles: Vec<String>,
    /// Issued by the client-credentials grant: the app's own token, no user.
    pub app_only: bool,
}

#[derive(Default)]
pub struct Identity {
    device_codes: HashMap<String, DeviceCode>,
    refresh_tokens: HashMap<String, RefreshToken>,
    access_tokens: HashMap<String, AccessToken>,
    revoked_sessions: HashMap<u64, GrantFailure>,
    next_session: u64,
    unavailable: u32,
    /// Replaces `FakeOptions::access_token_lifetime` for tokens issued from now on.
    lifetime: Option<Duration>,
    /// The app registration's certificates, consent and client-credentials grants.
    pub app: super::app_identity::AppRegistration,
}

/// What the Graph side learns from an `Authorization` header.
pub enum TokenCheck {
    Missing,
    Unknown,
    Expired,
    Valid(AccessToken),
}

/// Graph scope names without the `https://graph.microsoft.com/` prefix, lower-case; the OIDC
/// scopes (`openid`, `profile`, `email`, `offline_access`) left out.
fn resource_scopes(scope: &str) -> Vec<String> {
    scope
        .split_whitespace()
        .map(|s| {
            s.trim_start_matches("https://graph.microsoft.com/")
                .to_ascii_lowercase()
        })
        .filter(|s| {
            !matches!(
                s.as_str(),
                "openid" | "profile" | "email" | "offline_access"
            )
        })
        .collect()
}

fn has_scope(scope: &str, name: &str) -> bool {
    scope
        .split_whitespace()
        .any(|s| s.eq_ignore_ascii_case(name))
}

fn missing_parameter(name: &str) -> Resp {
    errors::identity(
        400,
        "invalid_request",
        Some(900144),
        &format!("The request body must contain the following parameter: '{name}'."),
    )
}

impl Identity {
    /// `POST /{tenant}/oauth2/v2.0/devicecode` (A.2).
    pub fn device_authorization(&mut self, opts: &FakeOptions, tenant: &str, body: &str) -> Resp {
        let form = form_pairs(body);
        let client_id = match known_client(opts, tenant, &form) {
            Ok(client_id) => client_id,
            Err(resp) => return *resp,
        };
        let Some(scope) = param(&form, "scope").filter(|s| !s.trim().is_empty()) else {
            return missing_parameter("scope");
        };
        let device_code = format!("DAQABAAEAAAD{}", opaque(96));
        let user_code = user_code();
        let interval = Duration::from_secs(opts.poll_interval_secs);
        self.device_codes.insert(
            device_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                tenant: tenant.to_string(),
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                expires: Instant::now() + opts.device_code_lifetime,
                interval,
                last_poll: None,
                status: DeviceStatus::Pending,
            },
        );
        // `verification_uri_complete` is not returned by Entra ID (A.2); `?mkt=` is accepted
        // and ignored (the message stays English).
        let body = json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": opts.device_code_lifetime.as_secs(),
            "interval": opts.poll_interval_secs,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        });
        json_response(200, &body, &[])
    }

    /// `POST /{tenant}/oauth2/v2.0/token` (A.3–A.6).
    pub fn token(
        &mut self,
        opts: &FakeOptions,
        tenant: &str,
        body: &str,
        authorization: Option<&str>,
        token_url: &str,
    ) -> Resp {
        let mut form = form_pairs(body);
        form.extend(basic_credentials(authorization));
        let client_id = match known_client(opts, tenant, &form) {
            Ok(client_id) => client_id,
            Err(resp) => return *resp,
        };
        if param(&form, "grant_type") == Some("client_credentials") {
            return self.client_credentials(opts, client_id, &form, token_url);
        }
        if let Some(resp) = check_secret(opts, &form) {
            return resp;
        }
        if self.unavailable > 0 {
            self.unavailable -= 1;
            // A.6 lists `temporarily_unavailable` without a code or status; the fake uses 503
            // and the STS "service busy" code 50192 is not claimed [UNK].
            return errors::identity(
                503,
                "temporarily_unavailable",
                None,
                "The service is temporarily unavailable. Retry the request later.",
            );
        }
        match param(&form, "grant_type") {
            Some(DEVICE_CODE_GRANT) => self.poll(opts, tenant, client_id, &form),
            Some("refresh_token") => self.refresh(opts, client_id, &form),
            Some(other) => errors::identity(
                400,
                "unsupported_grant_type",
                Some(70003),
                &format!("The app requested an unsupported grant type '{other}'."),
            ),
            None => missing_parameter("grant_type"),
        }
    }

    /// The client-credentials grant ([`super::app_identity`]); `temporarily_unavailable`
    /// applies to it as to every grant.
    fn client_credentials(
        &mut self,
        opts: &FakeOptions,
        client_id: &str,
        form: &[(String, String)],
        token_url: &str,
    ) -> Resp {
        if self.unavailable > 0 {
            self.unavailable -= 1;
            return errors::identity(
                503,
                "temporarily_unavailable",
                None,
                "The service is temporarily unavailable. Retry the request later.",
            );
        }
        let lifetime = self.lifetime.unwrap_or(opts.access_token_lifetime);
        let issued = match self.app.grant(opts, client_id, form, token_url) {
            Ok(issued) => issued,
            Err(resp) => return resp,
        };
        self.access_tokens.insert(
            issued.token.clone(),
            AccessToken {
                scopes: Vec::new(),
                expires: Instant::now() + lifetime,
                roles: issued.roles,
                app_only: true,
            },
        );
        // No refresh token, no id token: the client asks again (client credentials).
        json_response(
            200,
            &json!({
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
                "ext_expires_in": lifetime.as_secs(),
                "access_token": issued.token,
            }),
            &[],
        )
    }

    fn poll(
        &mut self,
        opts: &FakeOptions,
        tenant: &str,
        client_id: &str,
        form: &[(String, String)],
    ) -> Resp {
        let Some(code) = param(form, "device_code") else {
            return missing_parameter("device_code");
        };
        let now = Instant::now();
        let entry = match self.device_codes.get_mut(code) {
            // The same tenant must be used for both calls (A.1); a code from another tenant
            // or client is unknown there. A redeemed code is treated as unknown too [UNK: Entra's
            // answer to a second redemption is not documented; bad_verification_code is the
            // documented neighbour].
            Some(e)
                if e.tenant == tenant
                    && e.client_id == client_id
                    && e.status != DeviceStatus::Redeemed =>
            {
                e
            }
            _ => {
                return errors::identity(
                    400,
                    "bad_verification_code",
                    Some(70018),
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            }
        };
        if now >= entry.expires {
            return errors::identity(
                400,
                "expired_token",
                Some(70019),
                "Verification code expired.",
            );
        }
        match entry.status {
            DeviceStatus::Declined => errors::identity(
                400,
                "authorization_declined",
                None,
                "The end user denied the authorization request.",
            ),
            DeviceStatus::Pending => {
                let too_fast = entry
                    .last_poll
                    .is_some_and(|last| now + POLL_SLACK < last + entry.interval);
                entry.last_poll = Some(now);
                if too_fast {
                    // RFC 8628 §3.5 (A.3): slow_down, and the interval grows by 5 s for this
                    // and all later polls.
                    entry.interval += SLOW_DOWN_STEP;
                    errors::identity(
                        400,
                        "slow_down",
                        None,
                        "The client is polling too quickly and should back off.",
                    )
                } else {
                    errors::identity(
                        400,
                        "authorization_pending",
                        Some(70016),
                        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                    )
                }
            }
            DeviceStatus::Approved | DeviceStatus::Redeemed => {
                entry.status = DeviceStatus::Redeemed;
                let scope = entry.scope.clone();
                let session = self.next_session;
                self.next_session += 1;
                self.issue(opts, session, client_id, &scope)
            }
        }
    }

    fn refresh(&mut self, opts: &FakeOptions, client_id: &str, form: &[(String, String)]) -> Resp {
        let Some(token) = param(form, "refresh_token") else {
            return missing_parameter("refresh_token");
        };
        // [UNK] An unknown, malformed or other client's token: A.6 has no row for it; the
        // generic AADSTS70000 ("Provided grant is invalid or malformed") is the fake's answer.
        let invalid = || {
            errors::identity(
                400,
                "invalid_grant",
                Some(70000),
                "Provided grant is invalid or malformed.",
            )
        };
        let Some(entry) = self.refresh_tokens.get_mut(token) else {
            return invalid();
        };
        if entry.client_id != client_id {
            return invalid();
        }
        if let Some(failure) = entry
            .revoked
            .or_else(|| self.revoked_sessions.get(&entry.session).copied())
        {
            return failure.response(client_id);
        }
        if entry.used && !opts.keep_used_refresh_tokens {
            return invalid();
        }
        // `scope` is optional and must be equal to or a subset of the original grant (A.5);
        // more than was consented is refused like missing consent (AADSTS65001, A.6).
        let granted = resource_scopes(&entry.scope);
        let scope = match param(form, "scope") {
            Some(asked) => {
                if resource_scopes(asked)
                    .iter()
                    .any(|s| !granted.iter().any(|g| g.eq_ignore_ascii_case(s)))
                {
                    return GrantFailure::ConsentRevoked.response(client_id);
                }
                asked.to_string()
            }
            None => entry.scope.clone(),
        };
        entry.used = true;
        let session = entry.session;
        self.issue(opts, session, client_id, &scope)
    }

    /// A successful token response (A.3): `refresh_token` only with `offline_access`,
    /// `id_token` only with `openid`.
    fn issue(&mut self, opts: &FakeOptions, session: u64, client_id: &str, scope: &str) -> Resp {
        let lifetime = self.lifetime.unwrap_or(opts.access_token_lifetime);
        let access_token = jwt(&json!({
            "aud": GRAPH_APP_ID,
            "iss": format!("https://sts.windows.net/{}/", opts.tenant_id),
            "exp": (Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default()).timestamp(),
            "appid": client_id,
            "oid": opts.user.id,
            "upn": opts.user.user_principal_name,
            "scp": resource_scopes(scope).join(" "),
            "tid": opts.tenant_id,
            "uti": opaque(16),
        }));
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                scopes: resource_scopes(scope),
                expires: Instant::now() + lifetime,
                roles: Vec::new(),
                app_only: false,
            },
        );
        let mut body = json!({
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": lifetime.as_secs(),
            "access_token": access_token,
        });
        if has_scope(scope, "offline_access") {
            let refresh_token = format!("1.AXkA{}", opaque(120));
            self.refresh_tokens.insert(
                refresh_token.clone(),
                RefreshToken {
                    session,
                    client_id: client_id.to_string(),
                    scope: scope.to_string(),
                    used: false,
                    revoked: None,
                },
            );
            body["refresh_token"] = json!(refresh_token);
        }
        if has_scope(scope, "openid") {
            body["id_token"] = json!(jwt(&json!({
                "aud": client_id,
                "iss": format!("https://login.microsoftonline.com/{}/v2.0", opts.tenant_id),
                "oid": opts.user.id,
                "tid": opts.tenant_id,
                "preferred_username": opts.user.user_principal_name,
                "name": opts.user.display_name,
            })));
        }
        json_response(200, &body, &[])
    }

    /// Checks a Graph request's `Authorization` header.
    pub fn check_bearer(&self, header: Option<&str>) -> TokenCheck {
        let Some(header) = header else {
            return TokenCheck::Missing;
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            return TokenCheck::Missing;
        }
        match self.access_tokens.get(token) {
            None => TokenCheck::Unknown,
            Some(t) if Instant::now() >= t.expires => TokenCheck::Expired,
            Some(t) => TokenCheck::Valid(t.clone()),
        }
    }

    // --- controls ------------------------------------------------------------------------

    fn by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceCode> {
        self.device_codes
            .values_mut()
            .find(|d| d.user_code.eq_ignore_ascii_case(user_code))
    }

    pub fn set_status(&mut self, user_code: &str, approve: bool) -> bool {
        match self.by_user_code(user_code) {
            Some(d) if d.status == DeviceStatus::Pending => {
                d.status = if approve {
                    DeviceStatus::Approved
                } else {
                    DeviceStatus::Declined
                };
                true
            }
            _ => false,
        }
    }

    pub fn expire_device_code(&mut self, user_code: &str) -> bool {
        match self.by_user_code(user_code) {
            Some(d) => {
                d.expires = Instant::now();
                true
            }
            None => false,
        }
    }

    pub fn pending_user_codes(&self) -> Vec<String> {
        self.device_codes
            .values()
            .filter(|d| d.status == DeviceStatus::Pending && Instant::now() < d.expires)
            .map(|d| d.user_code.clone())
            .collect()
    }

    pub fn revoke_refresh_token(&mut self, token: &str, failure: GrantFailure) -> bool {
        match self.refresh_tokens.get_mut(token) {
            Some(t) => {
                t.revoked = Some(failure);
                true
            }
            None => false,
        }
    }

    /// Every session so far (all refresh tokens issued until now) fails with `failure`.
    /// Access tokens already issued stay valid until they expire, as with Entra.
    pub fn revoke_all(&mut self, failure: GrantFailure) {
        for session in 0..self.next_session {
            self.revoked_sessions.insert(session, failure);
        }
    }

    pub fn set_unavailable(&mut self, times: u32) {
        self.unavailable = times;
    }

    pub fn set_access_token_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = Some(lifetime);
    }

    pub fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for t in self.access_tokens.values_mut() {
            t.expires = now;
        }
    }
}

/// The request's `client_id` once the tenant and the client are known.
fn known_client<'a>(
    opts: &FakeOptions,
    tenant: &str,
    form: &'a [(String, String)],
) -> Result<&'a str, Box<Resp>> {
    if let Some(resp) = check_tenant(opts, tenant) {
        return Err(Box::new(resp));
    }
    let client_id =
        param(form, "client_id").ok_or_else(|| Box::new(missing_parameter("client_id")))?;
    match check_client(opts, client_id, tenant) {
        Some(resp) => Err(Box::new(resp)),
        None => Ok(client_id),
    }
}

/// `AADSTS90002` for a tenant the fake does not host [UNK: not in graph-teams.md]. The fake
/// tenant answers to its GUID, its domain, `organizations` and `common` (A.1).
fn check_tenant(opts: &FakeOptions, tenant: &str) -> Option<Resp> {
    let known = [
        opts.tenant_id.as_str(),
        opts.tenant_domain.as_str(),
        "organizations",
        "common",
    ];
    (!known.iter().any(|t| t.eq_ignore_ascii_case(tenant))).then(|| {
        errors::identity(
            400,
            "invalid_request",
            Some(90002),
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        )
    })
}

/// `AADSTS700016` for an unknown application [UNK: not in graph-teams.md].
fn check_client(opts: &FakeOptions, client_id: &str, tenant: &str) -> Option<Resp> {
    (client_id != opts.client_id).then(|| {
        errors::identity(
            400,
            "unauthorized_client",
            Some(700016),
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        )
    })
}

/// A.4. With public client flows on, a `client_secret`/`client_assertion` is refused
/// (AADSTS700025); with them off, one is demanded (AADSTS7000218) and must be right
/// (AADSTS7000215 [UNK: not in graph-teams.md]). `invalid_client` is answered with 401, which
/// RFC 6749 §5.2 allows [UNK: Entra's status is not in graph-teams.md].
fn check_secret(opts: &FakeOptions, form: &[(String, String)]) -> Option<Resp> {
    let secret = param(form, "client_secret");
    let presented = secret.is_some() || param(form, "client_assertion").is_some();
    if opts.public_client_flows {
        return presented.then(|| {
            errors::identity(
                401,
                "invalid_client",
                Some(700025),
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
        });
    }
    if !presented {
        return Some(errors::identity(
            401,
            "invalid_client",
            Some(7000218),
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    (secret.is_none() || secret != opts.client_secret.as_deref()).then(|| {
        errors::identity(
            401,
            "invalid_client",
            Some(7000215),
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", opts.client_id),
        )
    })
}

/// `Authorization: Basic base64(urlencoded(client_id):urlencoded(secret))` (RFC 6749 §2.3.1)
/// as the form fields it stands for: a secret in the header is presented just as one in the
/// body, so A.4 applies to it too (an OAuth library defaulting to Basic auth meets 700025).
fn basic_credentials(authorization: Option<&str>) -> Vec<(String, String)> {
    let Some(encoded) = authorization.and_then(|h| h.strip_prefix("Basic ")) else {
        return Vec::new();
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let (id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
    vec![
        ("client_id".into(), percent_decode(id, true)),
        ("client_secret".into(), percent_decode(secret, true)),
    ]
}

/// Nine letters and digits, like Entra's user codes.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 9];
    openssl::rand::rand_bytes(&mut b).expect("random");
    b.iter()
        .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
        .collect()
}

/// An unsigned JWT-shaped token. Clients must treat access tokens as opaque; the shape only
/// keeps clients that peek honest.
fn jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256","kid":"fake"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{}", opaque(64))
}
