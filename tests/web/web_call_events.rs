//! `/setup/call-events`: the admin sees the application permission to grant and the
//! appliance's certificate to upload in Entra — downloadable as `.cer` and `.pem`, the same
//! certificate whose thumbprint the page shows, with no private key in it — and guards and
//! strangers are kept out.

use crate::support::console::{Client, Console, ADMIN, GUARD};
use openssl::hash::MessageDigest;
use openssl::x509::X509;

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_gets_the_certificate_to_upload_and_the_permission_to_grant() {
    let console = Console::with_users().await;
    let mut stranger = Client::new(&console.url());
    let response = stranger.get("/setup/call-events/certificate.cer").await;
    assert_eq!(response.status().as_u16(), 303, "to the login");
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    assert_eq!(guard.get("/setup/call-events").await.status().as_u16(), 403);

    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    let page = admin
        .get("/setup/call-events")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("CallEvents-Emergency.Read.All"), "{page}");
    assert!(page.contains("Grant admin consent"));
    assert!(
        page.contains("id=\"call-events-off\""),
        "off without policies"
    );
    let shown = page
        .split("id=\"thumbprint\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("a thumbprint on the page")
        .to_string();

    let cer = admin.get("/setup/call-events/certificate.cer").await;
    assert_eq!(cer.headers()["content-type"], "application/pkix-cert");
    assert!(cer.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .contains("beacon-call-events.cer"));
    let der = cer.bytes().await.expect("body");
    let certificate = X509::from_der(&der).expect("a DER certificate");
    let thumbprint: String = certificate
        .digest(MessageDigest::sha1())
        .expect("digest")
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(
        thumbprint, shown,
        "the page names the certificate it hands out"
    );

    let pem = admin
        .get("/setup/call-events/certificate.pem")
        .await
        .text()
        .await
        .expect("pem");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!pem.contains("PRIVATE"), "no key leaves the box");
    assert_eq!(
        X509::from_pem(pem.as_bytes())
            .expect("pem")
            .to_der()
            .expect("der"),
        der.to_vec(),
        "the same certificate, made once"
    );
    console.stop().await;
}
