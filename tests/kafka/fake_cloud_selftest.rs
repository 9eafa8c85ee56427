//! Self-test of the fake Microsoft cloud (tests/support/fake_cloud), driven with plain
//! reqwest (not Beacon's client) against graph-teams.md. The Kafka tests need the test broker
//! (`eval "$(scripts/test-env)"`).

use std::time::{Duration, Instant};

use crate::support::fake_cloud::{
    hub, CreateFault, FakeCloud, FakeOptions, GrantFailure, LifecycleEvent,
};
use crate::support::{kafka, notifications, unique};
use beacon::graph::crypto::{EncryptionKey, KeyRing};
use beacon::graph::notification::EncryptedContent;
use chrono::Utc;
use serde_json::{json, Value};

const SCOPE: &str = "offline_access openid profile User.Read Chat.Read";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Client {
    http: reqwest::Client,
    login: String,
    graph: String,
    tenant: String,
    client_id: String,
}

impl Client {
    fn new(cloud: &FakeCloud) -> Client {
        Client {
            http: reqwest::Client::new(),
            login: cloud.login_url(),
            graph: cloud.graph_url(),
            tenant: cloud.options().tenant_id.clone(),
            client_id: cloud.options().client_id.clone(),
        }
    }

    async fn form(&self, endpoint: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![("client_id", self.client_id.as_str())];
        form.extend_from_slice(extra);
        let url = format!("{}/{}/oauth2/v2.0/{endpoint}", self.login, self.tenant);
        let resp = self.http.post(url).form(&form).send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    async fn device_code(&self) -> Value {
        let (status, body) = self.form("devicecode", &[("scope", SCOPE)]).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn poll(&self, device_code: &Value) -> (u16, Value) {
        self.poll_with(device_code, &[]).await
    }

    /// A device-code poll with extra form fields.
    async fn poll_with(&self, device_code: &Value, extra: &[(&str, &str)]) -> (u16, Value) {
        let code = device_code["device_code"].as_str().expect("device_code");
        let mut form = vec![("grant_type", DEVICE_GRANT), ("device_code", code)];
        form.extend_from_slice(extra);
        self.form("token", &form).await
    }

    async fn refresh(&self, refresh_token: &str, scope: Option<&str>) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.form("token", &form).await
    }

    /// Device code → approve → tokens.
    async fn sign_in(&self, cloud: &FakeCloud) -> Value {
        let code = self.device_code().await;
        assert!(cloud.approve(code["user_code"].as_str().expect("user_code")));
        let (status, tokens) = self.poll(&code).await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    async fn graph(
        &self,
        method: &str,
        path_or_url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.graph)
        };
        let mut req = self.http.request(method.parse().expect("method"), url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json body")
        };
        (status, headers, value)
    }
}

/// A started fake and a client for it.
async fn started(options: FakeOptions) -> (FakeCloud, Client) {
    let cloud = FakeCloud::start(options).await;
    let client = Client::new(&cloud);
    (cloud, client)
}

/// A started fake, a client for it and the tokens of a completed device-code sign-in.
async fn signed_in(options: FakeOptions) -> (FakeCloud, Client, Value) {
    let (cloud, client) = started(options).await;
    let tokens = client.sign_in(&cloud).await;
    (cloud, client, tokens)
}

fn token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

/// The identity platform's error shape (A.3, A.6), with the AADSTS code when given.
fn assert_identity_error(body: &Value, error: &str, code: Option<u32>) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    match code {
        Some(code) => {
            assert!(
                description.starts_with(&format!("AADSTS{code}: ")),
                "{description}"
            );
            assert_eq!(body["error_codes"], json!([code]), "{body}");
        }
        None => assert_eq!(body["error_codes"], json!([]), "{body}"),
    }
    assert!(
        body["trace_id"].is_string()
            && body["correlation_id"].is_string()
            && body["timestamp"].is_string()
    );
}

/// An identity-platform error response with this HTTP status.
fn expect_identity_error(response: (u16, Value), status: u16, error: &str, code: Option<u32>) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_identity_error(&response.1, error, code);
}

/// `401 invalid_client` with this AADSTS code (A.3, A.4).
fn expect_invalid_client(response: (u16, Value), code: u32) {
    expect_identity_error(response, 401, "invalid_client", Some(code));
}

/// A Graph error response with this HTTP status.
fn expect_graph_error(
    response: (u16, reqwest::header::HeaderMap, Value),
    status: u16,
    code: &str,
    message_part: &str,
) {
    assert_eq!(response.0, status, "{}", response.2);
    assert_graph_error(&response.2, code, message_part);
}

/// Graph's error shape (B.5).
fn assert_graph_error(body: &Value, code: &str, message_part: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains(message_part),
        "{message:?} lacks {message_part:?}"
    );
    assert!(
        error["innerError"]["request-id"].is_string() && error["innerError"]["date"].is_string(),
        "{body}"
    );
}

fn fast_options() -> FakeOptions {
    FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    }
}

fn hub_url(hub: &str) -> String {
    format!("EventHub:https://beacon-test.servicebus.windows.net/eventhubname/{hub}?tenantId=contoso.com")
}

fn in_minutes(minutes: i64) -> String {
    (Utc::now() + chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The documented creation body (B.5, G.2).
fn subscription_body(cloud: &FakeCloud, hub: &str, change_type: &str) -> Value {
    json!({
        "changeType": change_type,
        "notificationUrl": hub_url(hub),
        "lifecycleNotificationUrl": hub_url(hub),
        "resource": format!("/users/{}/chats/getAllMessages", cloud.options().user.id),
        "expirationDateTime": in_minutes(4300),
        "clientState": crate::support::CLIENT_STATE,
    })
}

#[tokio::test]
async fn device_code_pending_then_approved_gives_tokens() {
    let (cloud, client) = started(fast_options()).await;
    let code = client.device_code().await;
    for field in ["device_code", "user_code", "verification_uri", "message"] {
        assert!(code[field].is_string(), "{field} in {code}");
    }
    assert_eq!(code["expires_in"], 900);
    assert_eq!(code["interval"], 1);
    assert!(
        code.get("verification_uri_complete").is_none(),
        "Entra does not return it (A.2)"
    );
    let user_code = code["user_code"].as_str().expect("user_code");
    assert!(code["message"]
        .as_str()
        .expect("message")
        .contains(user_code));
    assert_eq!(cloud.pending_user_codes(), vec![user_code.to_string()]);

    let (status, body) = client.poll(&code).await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "authorization_pending", Some(70016));

    assert!(!cloud.approve("NOSUCHCODE"));
    assert!(cloud.approve(user_code));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = client.poll(&code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], SCOPE);
    assert_eq!(tokens["expires_in"], 3599);
    for field in ["access_token", "refresh_token", "id_token"] {
        assert!(
            tokens[field].as_str().is_some_and(|t| !t.is_empty()),
            "{field}"
        );
    }

    // The code is spent.
    let (status, body) = client.poll(&code).await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "bad_verification_code", Some(70018));

    // Without offline_access/openid: no refresh token, no id token (A.3).
    let (_, code) = client
        .form("devicecode", &[("scope", "User.Read Chat.Read")])
        .await;
    assert!(cloud.approve(code["user_code"].as_str().expect("user_code")));
    let (status, tokens) = client.poll(&code).await;
    assert_eq!(status, 200);
    assert!(
        tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none(),
        "{tokens}"
    );
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval() {
    let (_cloud, client) = started(fast_options()).await;
    let code = client.device_code().await;
    assert_eq!(client.poll(&code).await.1["error"], "authorization_pending");
    let (status, body) = client.poll(&code).await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "slow_down", None);
    // The interval is now 1 + 5 s (RFC 8628 §3.5): 1.2 s later is still too fast.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(client.poll(&code).await.1["error"], "slow_down");
}

#[tokio::test]
async fn declined_expired_and_unknown_device_codes() {
    let (cloud, client) = started(FakeOptions {
        device_code_lifetime: Duration::from_secs(1),
        ..fast_options()
    })
    .await;

    let code = client.device_code().await;
    assert!(cloud.decline(code["user_code"].as_str().expect("user_code")));
    let (status, body) = client.poll(&code).await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "authorization_declined", None);

    let code = client.device_code().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_identity_error(&client.poll(&code).await.1, "expired_token", Some(70019));

    let (status, body) = client
        .poll(&json!({"device_code": "DAQABAAEAAADnot-a-code"}))
        .await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "bad_verification_code", Some(70018));
}

#[tokio::test]
async fn refresh_rotates_and_old_tokens_follow_the_option() {
    let (_cloud, client, tokens) = signed_in(fast_options()).await;
    let first = tokens["refresh_token"].as_str().expect("rt");
    let (status, renewed) = client.refresh(first, None).await;
    assert_eq!(status, 200, "{renewed}");
    let second = renewed["refresh_token"].as_str().expect("rotated rt");
    assert_ne!(first, second, "each use returns a new refresh token (A.5)");
    assert_ne!(token(&tokens), token(&renewed));
    // A.5: the old one is not revoked by the use.
    assert_eq!(client.refresh(first, None).await.0, 200);
    // A subset of the scopes is fine; more than was granted is not.
    assert_eq!(
        client
            .refresh(
                second,
                Some("https://graph.microsoft.com/Chat.Read offline_access")
            )
            .await
            .0,
        200
    );
    let (status, body) = client
        .refresh(second, Some("Chat.ReadWrite offline_access"))
        .await;
    assert_eq!(status, 400);
    assert_identity_error(&body, "invalid_grant", Some(65001));

    let (strict, client) = started(FakeOptions {
        keep_used_refresh_tokens: false,
        ..fast_options()
    })
    .await;
    let tokens = client.sign_in(&strict).await;
    let first = tokens["refresh_token"].as_str().expect("rt");
    assert_eq!(client.refresh(first, None).await.0, 200);
    let (status, body) = client.refresh(first, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn revoked_refresh_tokens_answer_invalid_grant_with_the_aadsts_code() {
    let (cloud, client, tokens) = signed_in(fast_options()).await;
    // A.5: used refresh tokens stay valid, so each case starts from the first one.
    let first = tokens["refresh_token"].as_str().expect("rt");
    for failure in GrantFailure::ALL {
        let (status, fresh) = client.refresh(first, None).await;
        assert_eq!(status, 200, "{fresh}");
        let refresh_token = fresh["refresh_token"].as_str().expect("rt");
        assert!(cloud.revoke_refresh_token(refresh_token, failure));
        let (status, body) = client.refresh(refresh_token, None).await;
        assert_eq!(status, 400, "{failure:?}");
        assert_identity_error(&body, "invalid_grant", Some(failure.code()));
    }
    // The whole session: every refresh token of it fails; issued access tokens still work.
    let (_, fresh) = client.refresh(first, None).await;
    cloud.revoke_session(GrantFailure::PasswordChanged);
    for rt in [first, fresh["refresh_token"].as_str().expect("rt")] {
        assert_identity_error(
            &client.refresh(rt, None).await.1,
            "invalid_grant",
            Some(50173),
        );
    }
    assert_eq!(
        client.status("GET", "/me", Some(token(&fresh)), None).await,
        200
    );

    cloud.token_endpoint_unavailable(1);
    let again = client.sign_in_fails_once(&cloud).await;
    assert_eq!(again, "temporarily_unavailable");
}

impl Client {
    /// A device-code poll authenticating the client with HTTP Basic.
    async fn poll_basic(&self, device_code: &Value, secret: &str) -> (u16, Value) {
        let code = device_code["device_code"].as_str().expect("device_code");
        let url = format!("{}/{}/oauth2/v2.0/token", self.login, self.tenant);
        let resp = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(secret))
            .form(&[("grant_type", DEVICE_GRANT), ("device_code", code)])
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    /// The status of a Graph request.
    async fn status(
        &self,
        method: &str,
        path_or_url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> u16 {
        self.graph(method, path_or_url, token, body).await.0
    }

    /// A sign-in whose first token request meets `temporarily_unavailable`; returns that error.
    async fn sign_in_fails_once(&self, cloud: &FakeCloud) -> String {
        let code = self.device_code().await;
        assert!(cloud.approve(code["user_code"].as_str().expect("user_code")));
        let (status, body) = self.poll(&code).await;
        assert_eq!(status, 503);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(self.poll(&code).await.0, 200);
        body["error"].as_str().expect("error").to_string()
    }
}

#[tokio::test]
async fn client_secret_rules_follow_public_client_flows() {
    let secret = Some("s3cret".to_string());
    // Public client flows on: a secret is refused (AADSTS700025), on any grant.
    let (public, client) = started(FakeOptions {
        client_secret: secret.clone(),
        ..fast_options()
    })
    .await;
    let code = client.device_code().await;
    let with_secret = [("client_secret", "s3cret")];
    expect_invalid_client(client.poll_with(&code, &with_secret).await, 700025);
    assert!(public.approve(code["user_code"].as_str().expect("user_code")));
    let tokens = client.poll(&code).await.1;
    let rt = tokens["refresh_token"].as_str().expect("rt");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_secret", "s3cret"),
    ];
    expect_invalid_client(client.form("token", &refresh).await, 700025);

    // Public client flows off: a secret is demanded (AADSTS7000218) and must be right.
    let (confidential, client) = started(FakeOptions {
        client_secret: secret,
        public_client_flows: false,
        ..fast_options()
    })
    .await;
    let code = client.device_code().await;
    expect_invalid_client(client.poll(&code).await, 7000218);
    let wrong = [("client_secret", "wrong")];
    expect_invalid_client(client.poll_with(&code, &wrong).await, 7000215);
    assert!(confidential.approve(code["user_code"].as_str().expect("user_code")));
    let (status, tokens) = client.poll_with(&code, &with_secret).await;
    assert_eq!(status, 200, "{tokens}");
    // A secret in an `Authorization: Basic` header is presented too (RFC 6749 §2.3.1).
    let code = client.device_code().await;
    expect_invalid_client(client.poll_basic(&code, "wrong").await, 7000215);
    let (status, body) = client.poll_basic(&code, "s3cret").await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("authorization_pending"))
    );
}

#[tokio::test]
async fn me_needs_a_valid_unexpired_token() {
    let (cloud, client) = started(FakeOptions {
        access_token_lifetime: Duration::from_secs(1),
        ..fast_options()
    })
    .await;
    expect_graph_error(
        client.graph("GET", "/me", None, None).await,
        401,
        "InvalidAuthenticationToken",
        "empty",
    );
    expect_graph_error(
        client.graph("GET", "/me", Some("not-a-token"), None).await,
        401,
        "InvalidAuthenticationToken",
        "",
    );

    let tokens = client.sign_in(&cloud).await;
    assert_eq!(tokens["expires_in"], 1);
    let (status, _, me) = client.graph("GET", "/me", Some(token(&tokens)), None).await;
    assert_eq!(status, 200, "{me}");
    let user = &cloud.options().user;
    assert_eq!(
        (
            me["id"].as_str(),
            me["userPrincipalName"].as_str(),
            me["displayName"].as_str()
        ),
        (
            Some(user.id.as_str()),
            Some(user.user_principal_name.as_str()),
            Some(user.display_name.as_str())
        )
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    expect_graph_error(
        client.graph("GET", "/me", Some(token(&tokens)), None).await,
        401,
        "InvalidAuthenticationToken",
        "expired",
    );

    let (long, client) = started(fast_options()).await;
    let tokens = client.sign_in(&long).await;
    long.expire_access_tokens();
    assert_eq!(
        client
            .status("GET", "/me", Some(token(&tokens)), None)
            .await,
        401
    );
    // A token without Chat.Read cannot subscribe or read chats (B.1, D.1).
    let (_, code) = client
        .form("devicecode", &[("scope", "offline_access User.Read")])
        .await;
    assert!(long.approve(code["user_code"].as_str().expect("user_code")));
    let user_only = client.poll(&code).await.1;
    assert_eq!(
        client
            .status("GET", "/me", Some(token(&user_only)), None)
            .await,
        200
    );
    expect_graph_error(
        client
            .graph("GET", "/me/chats", Some(token(&user_only)), None)
            .await,
        403,
        "Forbidden",
        "Chat.Read",
    );
}

#[tokio::test]
async fn subscriptions_create_validate_list_renew_delete() {
    let (cloud, client, tokens) = signed_in(FakeOptions {
        page_size: 2,
        ..fast_options()
    })
    .await;
    let at = Some(token(&tokens));

    let body = subscription_body(&cloud, "hub-a", "created,updated");
    let (status, _, created) = client
        .graph("POST", "/subscriptions", at, Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["changeType"], "created,updated");
    assert_eq!(created["resource"], body["resource"]);
    assert_eq!(created["notificationUrl"], body["notificationUrl"]);
    assert_eq!(
        created["lifecycleNotificationUrl"],
        body["lifecycleNotificationUrl"]
    );
    assert_eq!(created["clientState"], crate::support::CLIENT_STATE);
    assert_eq!(created["includeResourceData"], false);
    assert!(chrono::DateTime::parse_from_rfc3339(
        created["expirationDateTime"].as_str().expect("expiry")
    )
    .is_ok());
    // B.6: the validation message went into the hub.
    let published = cloud.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].topic, "hub-a");
    let validation: Value = serde_json::from_str(&published[0].body).expect("json");
    assert!(validation["value"][0]["changeType"]
        .as_str()
        .expect("changeType")
        .starts_with(
            "Validation: Testing client application reachability for subscription Request-Id: "
        ));
    assert_eq!(validation["value"][0]["subscriptionId"], "NA");

    // 409 for the same changeType + resource (B.5).
    let (status, _, err) = client
        .graph("POST", "/subscriptions", at, Some(body.clone()))
        .await;
    assert_eq!(status, 409);
    assert_graph_error(
        &err,
        "Conflict",
        &format!("Subscription Id {id} already exists for the requested combination"),
    );

    // Invalid bodies → 400 with Graph's error shape.
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut too_long = body.clone();
    too_long["expirationDateTime"] = json!(in_minutes(4330));
    cases.push((too_long, "4320 minutes"));
    let mut no_lifecycle = body.clone();
    no_lifecycle
        .as_object_mut()
        .expect("object")
        .remove("lifecycleNotificationUrl");
    no_lifecycle["changeType"] = json!("created");
    cases.push((no_lifecycle, "lifecycleNotificationUrl is a required property for subscription creation on this resource when the expirationDateTime value is set to greater than 1 hour"));
    let mut bad_url = body.clone();
    bad_url["notificationUrl"] =
        json!("EventHub:https://beacon-test.servicebus.windows.net/hub-a?tenantId=contoso.com");
    cases.push((bad_url, "Invalid event hub notification url"));
    let mut no_tenant = body.clone();
    no_tenant["notificationUrl"] =
        json!("EventHub:https://beacon-test.servicebus.windows.net/eventhubname/hub-a");
    cases.push((no_tenant, "Invalid event hub notification url"));
    let mut wrong_tenant = body.clone();
    wrong_tenant["notificationUrl"] =
        json!(hub_url("hub-a").replace("contoso.com", "fabrikam.com"));
    cases.push((
        wrong_tenant,
        "Client EventHubs publishing validation failed",
    ));
    let mut long_state = body.clone();
    long_state["clientState"] = json!("x".repeat(129));
    cases.push((long_state, "clientState"));
    let mut rich_without_cert = body.clone();
    rich_without_cert["includeResourceData"] = json!(true);
    cases.push((rich_without_cert, "encryptionCertificate"));
    let mut bad_change = body.clone();
    bad_change["changeType"] = json!("created,edited");
    cases.push((bad_change, "changeType"));
    let mut misspelt = body.clone();
    misspelt["changetype"] = json!("created");
    cases.push((misspelt, "changetype"));
    let mut missing = body.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("expirationDateTime");
    cases.push((missing, "expirationDateTime"));
    let resp = client
        .http
        .post(format!("{}/subscriptions", client.graph))
        .bearer_auth(token(&tokens))
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400, "JSON needs its Content-Type");
    let mut model_a = body.clone();
    model_a["resource"] = json!(format!(
        "{}?model=A",
        body["resource"].as_str().expect("resource")
    ));
    cases.push((model_a, "model"));
    let mut tenant_wide = body.clone();
    tenant_wide["resource"] = json!("/chats/getAllMessages");
    cases.push((tenant_wide, "application permissions"));
    for (case, expected) in cases {
        let (status, _, err) = client
            .graph("POST", "/subscriptions", at, Some(case.clone()))
            .await;
        assert!(status == 400 || status == 403, "{status} for {case}");
        assert!(
            err["error"]["message"]
                .as_str()
                .expect("message")
                .contains(expected),
            "{err} for {case}"
        );
        assert!(err["error"]["innerError"]["request-id"].is_string());
    }

    // Short lifetimes are raised to 45 minutes and need no lifecycle URL (B.3).
    let mut short = body.clone();
    short
        .as_object_mut()
        .expect("object")
        .remove("lifecycleNotificationUrl");
    short["changeType"] = json!("created");
    short["expirationDateTime"] = json!(in_minutes(10));
    let (status, _, s) = client
        .graph("POST", "/subscriptions", at, Some(short))
        .await;
    assert_eq!(status, 201, "{s}");
    let expiry =
        chrono::DateTime::parse_from_rfc3339(s["expirationDateTime"].as_str().expect("expiry"))
            .expect("time");
    assert!(
        expiry > Utc::now() + chrono::Duration::minutes(44),
        "{expiry}"
    );
    let mut per_chat = body.clone();
    per_chat["resource"] = json!(format!("/chats/{}/messages", notifications::CHAT));
    assert_eq!(
        client
            .status("POST", "/subscriptions", at, Some(per_chat))
            .await,
        201
    );

    // Documented error switches.
    cloud.fail_subscription_creation(CreateFault::QuotaExceeded, 1);
    cloud.fail_subscription_creation(CreateFault::PublishingValidationFailed, 1);
    let mut other = body.clone();
    other["changeType"] = json!("deleted");
    expect_graph_error(
        client
            .graph("POST", "/subscriptions", at, Some(other.clone()))
            .await,
        403,
        "Forbidden",
        "limit",
    );
    let (status, _, err) = client
        .graph("POST", "/subscriptions", at, Some(other.clone()))
        .await;
    assert_eq!(status, 400);
    assert_graph_error(
        &err,
        "InvalidRequest",
        "Client EventHubs publishing validation failed",
    );
    assert_eq!(
        client
            .status("POST", "/subscriptions", at, Some(other))
            .await,
        201
    );

    // List: 4 subscriptions, pages of 2 via @odata.nextLink, no clientState (B.8).
    let (status, _, page) = client.graph("GET", "/subscriptions", at, None).await;
    assert_eq!(status, 200);
    let mut seen: Vec<Value> = page["value"].as_array().expect("value").clone();
    assert_eq!(seen.len(), 2);
    let mut next = page["@odata.nextLink"].as_str().map(str::to_string);
    while let Some(url) = next {
        assert!(url.starts_with(&cloud.graph_url()), "{url}");
        let (status, _, page) = client.graph("GET", &url, at, None).await;
        assert_eq!(status, 200);
        seen.extend(page["value"].as_array().expect("value").iter().cloned());
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s["clientState"].is_null()));
    assert!(seen.iter().any(|s| s["id"] == id.as_str()));

    // Get, renew, reauthorize, delete; 404 for unknown ids.
    assert_eq!(
        client
            .status("GET", &format!("/subscriptions/{id}"), at, None)
            .await,
        200
    );
    let new_expiry = in_minutes(4000);
    let (status, _, renewed) = client
        .graph(
            "PATCH",
            &format!("/subscriptions/{id}"),
            at,
            Some(json!({"expirationDateTime": new_expiry})),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let renewed_at = chrono::DateTime::parse_from_rfc3339(
        renewed["expirationDateTime"].as_str().expect("expiry"),
    )
    .expect("time");
    assert_eq!(
        renewed_at,
        chrono::DateTime::parse_from_rfc3339(&new_expiry).expect("time")
    );
    expect_graph_error(
        client
            .graph(
                "PATCH",
                &format!("/subscriptions/{id}"),
                at,
                Some(json!({"expirationDateTime": in_minutes(5000)})),
            )
            .await,
        400,
        "InvalidRequest",
        "4320",
    );
    let (status, _, empty) = client
        .graph(
            "POST",
            &format!("/subscriptions/{id}/reauthorize"),
            at,
            None,
        )
        .await;
    assert_eq!((status, empty), (204, Value::Null));
    assert_eq!(cloud.subscription(&id).expect("sub").reauthorizations, 1);
    assert_eq!(
        client
            .status("DELETE", &format!("/subscriptions/{id}"), at, None)
            .await,
        204
    );
    for (method, path) in [
        ("GET", format!("/subscriptions/{id}")),
        ("DELETE", format!("/subscriptions/{id}")),
        ("POST", format!("/subscriptions/{id}/reauthorize")),
    ] {
        let (status, _, err) = client.graph(method, &path, at, None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_graph_error(&err, "ResourceNotFound", "");
    }
    let (status, _, _) = client
        .graph(
            "PATCH",
            &format!("/subscriptions/{id}"),
            at,
            Some(json!({"expirationDateTime": in_minutes(100)})),
        )
        .await;
    assert_eq!(status, 404);
    // Expired subscriptions are gone (B.8).
    let other_id = seen
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .find(|s| *s != id)
        .expect("another")
        .to_string();
    assert!(cloud.expire_subscription(&other_id));
    assert_eq!(
        client
            .status(
                "PATCH",
                &format!("/subscriptions/{other_id}"),
                at,
                Some(json!({"expirationDateTime": in_minutes(100)}))
            )
            .await,
        404
    );
}

#[tokio::test]
async fn throttling_errors_and_delays_then_success() {
    let (cloud, client, tokens) = signed_in(fast_options()).await;
    let at = Some(token(&tokens));

    cloud.throttle("/v1.0/me", 1, 2);
    let (status, headers, body) = client.graph("GET", "/me", at, None).await;
    assert_eq!(status, 429);
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_graph_error(&body, "TooManyRequests", "");
    let retry = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse::<u64>()
        .expect("secs");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(client.status("GET", "/me", at, None).await, 200);
    let log = cloud.requests_to("/v1.0/me");
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(log.iter().all(|r| r.authorized && r.method == "GET"));
    assert!(
        log[1].at - log[0].at >= Duration::from_secs(2),
        "the log shows the client's wait"
    );

    cloud.server_error("/v1.0/subscriptions", 2, 503);
    for _ in 0..2 {
        expect_graph_error(
            client.graph("GET", "/subscriptions", at, None).await,
            503,
            "ServiceUnavailable",
            "",
        );
    }
    assert_eq!(client.status("GET", "/subscriptions", at, None).await, 200);

    cloud.delay("/v1.0/me", 1, Duration::from_millis(400));
    let start = Instant::now();
    assert_eq!(client.status("GET", "/me", at, None).await, 200);
    assert!(start.elapsed() >= Duration::from_millis(400));

    // Identity-platform requests are recorded too, with the form body and no Authorization.
    let token_requests =
        cloud.requests_to(&format!("/{}/oauth2/v2.0/token", cloud.options().tenant_id));
    assert!(!token_requests.is_empty());
    assert!(token_requests
        .iter()
        .all(|r| !r.authorized && r.body.contains("grant_type=")));
}

#[tokio::test]
async fn chats_and_messages_are_listed_paged_and_fetched() {
    let (cloud, client, tokens) = signed_in(fast_options()).await;
    let at = Some(token(&tokens));
    let other_chat = "19:0011223344556677889900aabbccddee@thread.v2";
    for (chat, id) in [
        (notifications::CHAT, "1001"),
        (other_chat, "2001"),
        (notifications::CHAT, "1002"),
    ] {
        // Without the fixed timestamps of the builder: the fake stamps the time of posting.
        let mut message = notifications::chat_message(id, &format!("message {id}"));
        message
            .as_object_mut()
            .expect("object")
            .retain(|k, _| !k.ends_with("DateTime"));
        cloud.post_message(chat, message).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, _, page) = client.graph("GET", "/me/chats?$expand=lastMessagePreview&$orderby=lastMessagePreview/createdDateTime%20desc&$top=1", at, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["value"][0]["id"], notifications::CHAT);
    assert_eq!(page["value"][0]["lastMessagePreview"]["id"], "1002");
    let next = page["@odata.nextLink"].as_str().expect("nextLink");
    let (_, _, page) = client.graph("GET", next, at, None).await;
    assert_eq!(page["value"][0]["id"], other_chat);
    assert!(page.get("@odata.nextLink").is_none());

    let encoded = notifications::CHAT.replace(':', "%3A").replace('@', "%40");
    let (status, _, page) = client
        .graph(
            "GET",
            &format!("/chats/{encoded}/messages?$top=1"),
            at,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["value"][0]["id"], "1002", "newest first");
    let (_, _, page) = client
        .graph(
            "GET",
            page["@odata.nextLink"].as_str().expect("nextLink"),
            at,
            None,
        )
        .await;
    assert_eq!(page["value"][0]["id"], "1001");

    let (status, _, message) = client
        .graph("GET", &format!("/chats/{encoded}/messages/1001"), at, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(message["body"]["content"], "<p>message 1001</p>");
    assert_eq!(message["importance"], "high");
    assert!(
        cloud
            .edit_message(
                notifications::CHAT,
                "1001",
                json!({"body": {"contentType": "html", "content": "<p>edited</p>"}})
            )
            .await
    );
    let (_, _, message) = client
        .graph(
            "GET",
            &format!("/me/chats/{encoded}/messages/1001"),
            at,
            None,
        )
        .await;
    assert_eq!(message["body"]["content"], "<p>edited</p>");
    assert!(message["lastEditedDateTime"].is_string());
    assert!(cloud.delete_message(notifications::CHAT, "1001").await);
    expect_graph_error(
        client
            .graph("GET", &format!("/chats/{encoded}/messages/1001"), at, None)
            .await,
        404,
        "NotFound",
        "",
    );
    let (status, _, _) = client.graph("GET", "/me/chats?$search=x", at, None).await;
    assert_eq!(status, 400);
}

/// Publishing into the test broker.
fn kafka_options() -> FakeOptions {
    FakeOptions {
        kafka: true,
        ..fast_options()
    }
}

/// Creates a hub (topic) on the test broker and returns its name.
async fn new_hub(prefix: &str) -> String {
    let name = unique(prefix);
    kafka::create_topic(&name, 2).await;
    name
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("record is JSON")
}

/// The single item of each record, sorted by `changeType` ("Validation: …" last). Records
/// come from several partitions, so their order is not Graph's (C.5).
fn items(records: &[String]) -> Vec<Value> {
    let mut items: Vec<Value> = records
        .iter()
        .map(|r| {
            let collection = parse(r);
            assert_eq!(collection["value"].as_array().map(Vec::len), Some(1), "{r}");
            collection["value"][0].clone()
        })
        .collect();
    items.sort_by_key(|i| {
        let change_type = i["changeType"].as_str().unwrap_or_default().to_string();
        (change_type.starts_with("Validation:"), change_type)
    });
    items
}

#[tokio::test]
async fn posted_messages_reach_the_hub_as_documented_notifications() {
    let (cloud, client, tokens) = signed_in(kafka_options()).await;
    let at = Some(token(&tokens));
    let hub_name = new_hub("fake-basic").await;
    let lifecycle_hub = new_hub("fake-lifecycle").await;

    // A hub that does not exist: Graph cannot publish (B.5).
    let (status, _, err) = client
        .graph(
            "POST",
            "/subscriptions",
            at,
            Some(subscription_body(&cloud, &unique("missing"), "created")),
        )
        .await;
    assert_eq!(status, 400);
    assert_graph_error(
        &err,
        "InvalidRequest",
        "Client EventHubs publishing validation failed",
    );

    let mut body = subscription_body(&cloud, &hub_name, "created,updated");
    body["lifecycleNotificationUrl"] = json!(hub_url(&lifecycle_hub));
    let (status, _, sub) = client.graph("POST", "/subscriptions", at, Some(body)).await;
    assert_eq!(status, 201, "{sub}");
    let sub_id = sub["id"].as_str().expect("id");

    let id = cloud
        .post_message(
            notifications::CHAT,
            notifications::chat_message("1741000123456", "help"),
        )
        .await;
    assert_eq!(id, "1741000123456");
    let records = hub::read(&hub_name, 2, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let both = items(&records);
    assert!(both[1]["changeType"]
        .as_str()
        .expect("ct")
        .starts_with("Validation:"));
    let item = &both[0];
    let resource = format!("chats('{}')/messages('1741000123456')", notifications::CHAT);
    assert_eq!(item["subscriptionId"], sub_id);
    assert_eq!(item["changeType"], "created");
    assert_eq!(item["clientState"], crate::support::CLIENT_STATE);
    assert_eq!(item["tenantId"], cloud.options().tenant_id.as_str());
    assert_eq!(item["resource"], resource.as_str());
    assert_eq!(
        item["resourceData"],
        json!({"id": "1741000123456", "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": resource})
    );
    assert!(item["subscriptionExpirationDateTime"]
        .as_str()
        .expect("expiry")
        .ends_with("+00:00"));
    assert!(item.get("encryptedContent").is_none());

    // Lifecycle (H.3): into the lifecycle hub; delivery pauses until reauthorized (C.4).
    assert!(
        cloud
            .send_lifecycle(sub_id, LifecycleEvent::ReauthorizationRequired)
            .await
    );
    let lifecycle = hub::read(&lifecycle_hub, 1, Duration::from_secs(30)).await;
    assert_eq!(
        lifecycle.len(),
        1,
        "no validation message in the lifecycle hub"
    );
    let event = &parse(lifecycle.last().expect("lifecycle record"))["value"][0];
    assert_eq!(event["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(event["subscriptionId"], sub_id);
    assert!(event.get("changeType").is_none());
    let before = cloud.published().len();
    cloud
        .post_message(
            notifications::CHAT,
            notifications::chat_message("1741000123457", "paused"),
        )
        .await;
    assert_eq!(cloud.published().len(), before, "paused until reauthorized");
    assert_eq!(
        client
            .status(
                "POST",
                &format!("/subscriptions/{sub_id}/reauthorize"),
                at,
                None
            )
            .await,
        204
    );
    assert!(
        cloud
            .edit_message(
                notifications::CHAT,
                "1741000123456",
                json!({"importance": "urgent"})
            )
            .await
    );
    // Deleted is not in the subscription's changeType: nothing.
    assert!(
        cloud
            .delete_message(notifications::CHAT, "1741000123457")
            .await
    );
    // Publishing stopped (evaluation quota): nothing, silently.
    cloud.set_publishing(false);
    cloud
        .post_message(
            notifications::CHAT,
            notifications::chat_message("1741000123458", "quota"),
        )
        .await;
    let records = hub::read(&hub_name, 4, Duration::from_secs(5)).await;
    let kinds: Vec<Value> = items(&records)
        .iter()
        .map(|i| i["changeType"].clone())
        .collect();
    assert_eq!(kinds.len(), 3, "validation, created, updated: {records:?}");
    assert_eq!(
        (&kinds[0], &kinds[1]),
        (&json!("created"), &json!("updated"))
    );

    // Server-side removal sends subscriptionRemoved (H.4) and the subscription is gone.
    assert!(cloud.remove_subscription(sub_id).await);
    let lifecycle = hub::read(&lifecycle_hub, 2, Duration::from_secs(30)).await;
    let events: Vec<Value> = items(&lifecycle)
        .iter()
        .map(|i| i["lifecycleEvent"].clone())
        .collect();
    assert!(events.contains(&json!("subscriptionRemoved")), "{events:?}");
    assert_eq!(
        client
            .status("GET", &format!("/subscriptions/{sub_id}"), at, None)
            .await,
        404
    );
}

#[tokio::test]
async fn rich_notifications_decrypt_with_the_subscription_key() {
    let (cloud, client, tokens) = signed_in(kafka_options()).await;
    let at = Some(token(&tokens));
    let hub_name = new_hub("fake-rich").await;
    let key = EncryptionKey::generate("beacon-selftest", Utc::now(), 30).expect("key");
    let mut body = subscription_body(&cloud, &hub_name, "created");
    body["resource"] = json!(format!("/chats/{}/messages", notifications::CHAT));
    body["includeResourceData"] = json!(true);
    body["encryptionCertificate"] = json!(key.certificate_base64());
    body["encryptionCertificateId"] = json!(key.id);
    let (status, _, sub) = client
        .graph("POST", "/subscriptions", Some(token(&tokens)), Some(body))
        .await;
    assert_eq!(status, 201, "{sub}");

    let message = notifications::chat_message(
        "1741000999000",
        "Jordan Rivera has placed an Emergency Call",
    );
    cloud
        .post_message(notifications::CHAT, message.clone())
        .await;
    // Another chat is not covered by a per-chat subscription.
    cloud
        .post_message(
            "19:ffffffffffffffffffffffffffffffff@thread.v2",
            notifications::chat_message("1", "elsewhere"),
        )
        .await;
    let records = hub::read(&hub_name, 3, Duration::from_secs(5)).await;
    assert_eq!(
        records.len(),
        2,
        "validation + one notification: {records:?}"
    );
    let first = items(&records);
    let content = &first[0]["encryptedContent"];
    assert_eq!(content["encryptionCertificateId"], "beacon-selftest");
    let sealed = sealed_content(&first[0]);
    let plain = KeyRing::new(vec![key.clone()])
        .decrypt(&sealed)
        .expect("decrypts");
    let decrypted: Value = serde_json::from_slice(&plain).expect("json");
    assert_eq!(decrypted["id"], message["id"]);
    assert_eq!(decrypted["body"], message["body"]);
    assert_eq!(decrypted["from"], message["from"]);
    // A key that is not the subscription's cannot read it.
    let other = EncryptionKey::generate("beacon-selftest", Utc::now(), 30).expect("key");
    assert!(KeyRing::new(vec![other]).decrypt(&sealed).is_err());

    // Rotation by PATCH during renewal (B.7): later notifications use the new certificate.
    let next = EncryptionKey::generate("beacon-selftest-2", Utc::now(), 30).expect("key");
    let patch = json!({
        "expirationDateTime": in_minutes(4000),
        "encryptionCertificate": next.certificate_base64(),
        "encryptionCertificateId": next.id,
    });
    let path = format!("/subscriptions/{}", sub["id"].as_str().expect("id"));
    let (status, _, renewed) = client.graph("PATCH", &path, at, Some(patch)).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["encryptionCertificateId"], "beacon-selftest-2");
    let message = notifications::chat_message("1741000999001", "after rotation");
    cloud.post_message(notifications::CHAT, message).await;
    let records = hub::read(&hub_name, 3, Duration::from_secs(30)).await;
    let rotated = items(&records)
        .iter()
        .map(sealed_content)
        .find(|c| c.encryption_certificate_id == "beacon-selftest-2")
        .expect("a notification for the new certificate");
    let plain = KeyRing::new(vec![key, next])
        .decrypt(&rotated)
        .expect("decrypts");
    let decrypted: Value = serde_json::from_slice(&plain).expect("json");
    assert_eq!(decrypted["id"], "1741000999001");
}

/// `encryptedContent` of a notification item (H.2) as Beacon's crypto takes it.
fn sealed_content(item: &Value) -> EncryptedContent {
    let content = &item["encryptedContent"];
    let field = |name: &str| content[name].as_str().unwrap_or_default().to_string();
    EncryptedContent {
        data: field("data"),
        data_key: field("dataKey"),
        data_signature: field("dataSignature"),
        encryption_certificate_id: field("encryptionCertificateId"),
        encryption_certificate_thumbprint: content["encryptionCertificateThumbprint"]
            .as_str()
            .map(str::to_string),
    }
}

#[tokio::test]
async fn evaluation_quota_and_batched_collections() {
    let (cloud, client, tokens) = signed_in(FakeOptions {
        evaluation_quota: 1,
        batch_notifications: true,
        ..fast_options()
    })
    .await;
    let at = Some(token(&tokens));
    let evaluation = subscription_body(&cloud, "hub-q", "created");
    let mut model_b = evaluation.clone();
    model_b["resource"] = json!("/me/chats/getAllMessages?model=B");
    for body in [evaluation, model_b] {
        let (status, _, sub) = client.graph("POST", "/subscriptions", at, Some(body)).await;
        assert_eq!(status, 201, "{sub}");
    }
    let notifications_in = |cloud: &FakeCloud| -> Vec<usize> {
        cloud
            .published()
            .iter()
            .map(|p| parse(&p.body))
            .filter(|c| c["value"][0]["changeType"] == "created")
            .map(|c| c["value"].as_array().map_or(0, Vec::len))
            .collect()
    };
    cloud
        .post_message(notifications::CHAT, notifications::chat_message("1", "one"))
        .await;
    // One record for the hub with both subscriptions' notifications (C.1).
    assert_eq!(notifications_in(&cloud), vec![2]);
    assert_eq!(cloud.evaluation_notifications(), 1);
    // The evaluation quota is used up: only the model=B subscription still gets one (B.1).
    cloud
        .post_message(notifications::CHAT, notifications::chat_message("2", "two"))
        .await;
    assert_eq!(notifications_in(&cloud), vec![2, 1]);
    assert_eq!(cloud.evaluation_notifications(), 1);
}
