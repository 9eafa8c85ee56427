//! HTTPS: on first start the console makes a self-signed certificate (kept, 0600 key) that a
//! client trusting it accepts for `localhost`; session cookies are `Secure`, HSTS is sent, and
//! plain HTTP is redirected to the HTTPS address. The certificate is one an iPhone accepts.

use crate::support::console::{add_users, Client, Console, ADMIN};
use beacon::web::WebConfig;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_serves_https_with_its_own_certificate_and_redirects_http() {
    let console = Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: true,
            redirect_http: Some("127.0.0.1:0".parse().expect("addr")),
            ..WebConfig::default()
        },
        &beacon::config::Config::default(),
        add_users,
    )
    .await;
    let url = console.url();
    assert!(url.starts_with("https://"), "{url}");
    let cert_path = console.dir.path().join("data/web/cert.pem");
    let key_path = console.dir.path().join("data/web/key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_path)
        .expect("key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // A client that trusts exactly this certificate reaches https://localhost:<port>.
    let pem = std::fs::read(&cert_path).expect("cert");
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let port = console.server().addr.port();
    let response = trusting
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await
        .expect("the certificate is valid for localhost");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["strict-transport-security"]
        .to_str()
        .unwrap_or_default()
        .contains("max-age="));

    // Session cookies are Secure over HTTPS.
    let mut client = Client::new(&url);
    let token = client.csrf("/login").await;
    let response = client
        .post(
            "/login",
            &[("csrf", &token), ("user", ADMIN.0), ("password", ADMIN.1)],
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP is sent to HTTPS, same host and path.
    let redirect = console.server().redirect_addr.expect("redirect listener");
    let plain = Client::new(&format!("http://{redirect}"))
        .http
        .get(format!("http://localhost:{}/calls?x=1", redirect.port()))
        .send()
        .await
        .expect("http");
    assert_eq!(plain.status().as_u16(), 308);
    assert_eq!(
        plain.headers()["location"],
        format!("https://localhost:{port}/calls?x=1").as_str()
    );

    // A restart keeps the certificate (browsers that accepted it keep accepting it).
    let again =
        beacon::web::tls::certificate_files(None, &console.dir.path().join("data")).expect("files");
    assert_eq!(std::fs::read(&again.0).expect("cert"), pem);
    console.stop().await;
}

/// The certificate made on first start is one Apple platforms accept once trusted (HT210176:
/// at most 825 days, serverAuth) and not a CA; it names beacon.local, this host and its
/// addresses; its fingerprint is on the settings page (as `openssl` prints it).
#[tokio::test(flavor = "multi_thread")]
async fn the_self_signed_certificate_is_a_server_certificate_a_phone_accepts() {
    let console = Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: true,
            ..WebConfig::default()
        },
        &beacon::config::Config::default(),
        add_users,
    )
    .await;
    let cert_path = console.dir.path().join("data/web/cert.pem");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(["x509", "-in"])
            .arg(&cert_path)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = openssl(&["-noout", "-text"]);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("DNS:beacon.local"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if !host.is_empty() && host != "localhost" {
        assert!(text.contains(&format!("DNS:{host}")), "{text}");
        assert!(text.contains(&format!("DNS:{host}.local")), "{text}");
    }
    // Each address of this machine but loopback and IPv6 link-local.
    let ip = std::process::Command::new("hostname").arg("-I").output();
    for address in ip
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
        .split_whitespace()
        .filter(|a| !a.starts_with("fe80"))
    {
        let parsed: std::net::IpAddr = address.parse().expect("address");
        let shown = match parsed {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            // openssl prints IPv6 in full, upper case
            std::net::IpAddr::V6(v6) => v6
                .segments()
                .iter()
                .map(|s| format!("{s:X}"))
                .collect::<Vec<_>>()
                .join(":"),
        };
        assert!(
            text.contains(&format!("IP Address:{shown}")),
            "{address}: {text}"
        );
    }
    // Valid for 825 days, not a second more.
    let pem = std::fs::read(&cert_path).expect("cert");
    let cert = openssl::x509::X509::from_pem(&pem).expect("pem");
    let validity = cert.not_before().diff(cert.not_after()).expect("validity");
    assert_eq!((validity.days, validity.secs), (825, 0));

    // The settings page shows the fingerprint openssl computes.
    let fingerprint = openssl(&["-noout", "-fingerprint", "-sha256"]);
    let fingerprint = fingerprint.trim().rsplit('=').next().unwrap_or_default();
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    let settings = admin.get("/settings").await.text().await.expect("page");
    assert!(
        settings.contains(fingerprint),
        "{fingerprint} not on the settings page"
    );
    console.stop().await;
}
