//! Access to the console over plain HTTP (reqwest), as an attacker on the LAN would try it:
//! every route but login, first-run and static files refuses without a session; the first-run
//! setup code sets the admin password once; logins are rate limited; forms without the CSRF
//! token are refused and change nothing; a guard cannot open or change settings; every answer
//! carries the security headers.

use crate::support::console::{Client, Console, ADMIN, GUARD};

/// Every route with its method; the login, first-run and static ones are open.
const GUARDED_GETS: &[&str] = &[
    "/",
    "/live",
    "/display.png",
    "/calls",
    "/calls.csv",
    "/calls/YWJj",
    "/chats",
    "/settings",
    "/settings/floor-plans",
    "/floor-plans/1",
    "/setup",
    "/setup/call-events",
    "/setup/call-events/certificate.cer",
    "/api/calls",
    "/api/calls/YWJj",
    "/api/health",
    "/api/events",
    "/metrics",
];
const GUARDED_POSTS: &[&str] = &[
    "/acknowledge",
    "/confirm",
    "/logout",
    "/settings/users",
    "/settings/tokens",
    "/settings/tokens/revoke",
    "/settings/floor-plans",
    "/settings/floor-plans/remove",
    "/demo/call",
    "/setup/oauth",
    "/setup/eventhub",
    "/setup/sign-in",
    "/setup/sign-in/cancel",
    "/setup/subscription",
    "/setup/test-alarm",
    "/setup/call-events",
    "/settings/fleet/code",
    "/settings/fleet/rotate",
    "/settings/fleet/leave",
    "/settings/fleet/acknowledgements",
    "/settings/fleet/join",
    "/settings/fleet/replace-subscription",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_without_a_session() {
    let console = Console::with_users().await;
    let mut client = Client::new(&console.url());
    for path in GUARDED_GETS {
        let response = client.get(path).await;
        let status = response.status().as_u16();
        if path.starts_with("/api") || *path == "/metrics" {
            assert_eq!(status, 401, "GET {path}");
        } else {
            assert_eq!(status, 303, "GET {path}");
            assert_eq!(
                response.headers()["location"],
                "/login",
                "GET {path} goes to the login"
            );
        }
    }
    for path in GUARDED_POSTS {
        let response = client.post(path, &[("csrf", "x")]).await;
        let status = response.status().as_u16();
        assert!(status == 303 || status == 403, "POST {path}: {status}");
        assert!(!client.cookies.contains_key("beacon_session"));
    }
    // Open: the login page and static files.
    assert_eq!(client.get("/login").await.status().as_u16(), 200);
    assert_eq!(
        client.get("/static/console.css").await.status().as_u16(),
        200
    );
    assert_eq!(
        client
            .get("/static/leaflet/leaflet.js")
            .await
            .status()
            .as_u16(),
        200
    );
    // A forged session cookie is no session.
    client
        .cookies
        .insert("beacon_session".into(), "forged".into());
    assert_eq!(client.get("/api/calls").await.status().as_u16(), 401);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_code_sets_the_admin_password_once() {
    let console = Console::start().await;
    let code = console
        .server()
        .setup_code()
        .expect("a setup code while no admin exists");
    let mut client = Client::new(&console.url());
    let response = client.get("/").await;
    assert_eq!(response.headers()["location"], "/first-run");
    let token = client.csrf("/first-run").await;

    let wrong = client
        .post(
            "/first-run",
            &[
                ("csrf", &token),
                ("code", "AAAA-AAAA"),
                ("user", "chief"),
                ("password", "a long password"),
                ("confirm", "a long password"),
            ],
        )
        .await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap_or_default()
        .contains("not the setup code"));

    let short = client
        .post(
            "/first-run",
            &[
                ("csrf", &token),
                ("code", &code),
                ("user", "chief"),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status().as_u16(), 400);

    let ok = client
        .post(
            "/first-run",
            &[
                ("csrf", &token),
                ("code", &code.to_lowercase()),
                ("user", "chief"),
                ("password", "a long password"),
                ("confirm", "a long password"),
            ],
        )
        .await;
    assert_eq!(ok.status().as_u16(), 303);
    assert_eq!(ok.headers()["location"], "/");
    assert_eq!(
        client.get("/settings").await.status().as_u16(),
        200,
        "logged in as admin"
    );
    assert_eq!(console.server().setup_code(), None, "used once");

    // The code is spent: a second visitor cannot take the appliance over.
    let mut other = Client::new(&console.url());
    let page = other.get("/first-run").await;
    assert_eq!(page.headers()["location"], "/login");
    let token = other.csrf("/login").await;
    let again = other
        .post(
            "/first-run",
            &[
                ("csrf", &token),
                ("code", &code),
                ("user", "mallory"),
                ("password", "a long password"),
                ("confirm", "a long password"),
            ],
        )
        .await;
    assert_eq!(again.headers()["location"], "/login");
    other.login("chief", "a long password").await;
    let mut mallory = Client::new(&console.url());
    let token = mallory.csrf("/login").await;
    let refused = mallory
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("user", "mallory"),
                ("password", "a long password"),
            ],
        )
        .await;
    assert_eq!(refused.status().as_u16(), 401);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_rate_limited_per_address() {
    let console = Console::with_users().await;
    let mut client = Client::new(&console.url());
    let token = client.csrf("/login").await;
    for attempt in 0..5 {
        let response = client
            .post(
                "/login",
                &[
                    ("csrf", &token),
                    ("user", ADMIN.0),
                    ("password", "wrong password"),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 401, "attempt {attempt}");
    }
    // The sixth attempt is refused even with the right password.
    let limited = client
        .post(
            "/login",
            &[("csrf", &token), ("user", ADMIN.0), ("password", ADMIN.1)],
        )
        .await;
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(!client.cookies.contains_key("beacon_session"));
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let console = Console::with_users().await;
    console
        .post_message(
            "19:csrf@thread.v2",
            "m-1",
            crate::support::console::emergency_message("Ana Ruiz"),
        )
        .await;
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    for form in [vec![("note", "no token")], vec![("csrf", "not-the-token")]] {
        let response = guard.post("/acknowledge", &form).await;
        assert_eq!(response.status().as_u16(), 403);
    }
    assert_eq!(
        console.alarm.view().borrow().state,
        beacon::alarm::AlarmState::Alerting,
        "still alerting"
    );
    // The login form needs the token of its cookie too.
    let mut fresh = Client::new(&console.url());
    let _ = fresh.csrf("/login").await;
    let response = fresh
        .post(
            "/login",
            &[("csrf", "guess"), ("user", ADMIN.0), ("password", ADMIN.1)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    // With the token it works.
    let token = guard.csrf("/").await;
    let response = guard.post("/acknowledge", &[("csrf", &token)]).await;
    assert_eq!(response.status().as_u16(), 303);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while console.alarm.view().borrow().state != beacon::alarm::AlarmState::Acknowledged {
        assert!(tokio::time::Instant::now() < deadline, "acknowledged");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guard_cannot_open_or_change_settings() {
    let console = Console::with_users().await;
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    assert_eq!(guard.get("/").await.status().as_u16(), 200);
    assert_eq!(guard.get("/calls").await.status().as_u16(), 200);
    assert_eq!(guard.get("/settings").await.status().as_u16(), 403);
    assert_eq!(guard.get("/setup").await.status().as_u16(), 403);
    let token = guard.csrf("/").await;
    let response = guard
        .post(
            "/setup/oauth",
            &[
                ("csrf", &token),
                ("tenant_id", "evil.example.com"),
                ("client_id", "00000000-0000-4000-8000-000000000001"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        beacon::cloud_settings::saved(&console.store)
            .oauth
            .is_none(),
        "a guard changed nothing"
    );
    let response = guard
        .post(
            "/settings/users",
            &[
                ("csrf", &token),
                ("user", "eve"),
                ("role", "admin"),
                ("password", "a long password"),
                ("confirm", "a long password"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    let users = beacon::web::password::Users::new(console.store.clone());
    assert!(
        users.list().iter().all(|(name, _)| name != "eve"),
        "no user added"
    );
    let page = guard.get("/").await.text().await.unwrap_or_default();
    assert!(
        !page.contains("href=\"/settings\""),
        "no settings link for a guard"
    );

    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(admin.get("/settings").await.status().as_u16(), 200);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_the_security_headers() {
    let console = Console::with_users().await;
    let mut client = Client::new(&console.url());
    let mut answers = vec![
        client.get("/login").await,
        client.get("/").await,
        client.get("/nowhere").await,
        client.get("/static/console.js").await,
    ];
    client.login(ADMIN.0, ADMIN.1).await;
    answers.push(client.get("/").await);
    answers.push(client.get("/api/calls").await);
    for response in answers {
        let url = response.url().to_string();
        let headers = response.headers();
        let csp = headers["content-security-policy"]
            .to_str()
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{url}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{url}");
    }
    // The session cookie is HttpOnly and SameSite=Strict (Secure over HTTPS: web_https.rs).
    let mut fresh = Client::new(&console.url());
    let token = fresh.csrf("/login").await;
    let response = fresh
        .post(
            "/login",
            &[("csrf", &token), ("user", ADMIN.0), ("password", ADMIN.1)],
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("beacon_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_token_reads_the_api_until_it_is_revoked_and_never_opens_a_page() {
    let console = Console::with_users().await;
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    let csrf = admin.csrf("/settings").await;
    let made = admin
        .post(
            "/settings/tokens",
            &[("csrf", &csrf), ("name", "grafana"), ("role", "guard")],
        )
        .await;
    assert_eq!(made.status().as_u16(), 200);
    let html = made.text().await.unwrap_or_default();
    let token = html
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new token is shown once")
        .to_string();
    assert!(token.starts_with("beacon_"), "{token}");
    // Shown once: the settings page does not show it again.
    let again = admin
        .get("/settings")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(!again.contains(&token));
    assert!(again.contains("grafana"));

    let machine = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str, bearer: &str| {
        machine
            .get(format!("{}{path}", console.url()))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
    };
    for path in ["/api/calls", "/api/health", "/metrics"] {
        let answer = get(path, &token).await.expect("GET");
        assert_eq!(answer.status().as_u16(), 200, "GET {path} with the token");
    }
    assert_eq!(
        get("/api/calls", "beacon_not-a-token")
            .await
            .expect("GET")
            .status()
            .as_u16(),
        401
    );
    // A token is for the API only: a page still wants a login.
    let page = get("/settings", &token).await.expect("GET");
    assert_eq!(page.status().as_u16(), 303);

    let csrf = admin.csrf("/settings").await;
    let revoked = admin
        .post(
            "/settings/tokens/revoke",
            &[("csrf", &csrf), ("name", "grafana")],
        )
        .await;
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(
        get("/api/calls", &token)
            .await
            .expect("GET")
            .status()
            .as_u16(),
        401,
        "revoked"
    );
    console.stop().await;
}
