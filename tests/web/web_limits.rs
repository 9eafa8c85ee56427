//! Idle and slow clients cannot keep a guard out: while one client holds many idle TCP
//! connections, unfinished TLS handshakes and an unfinished request head, a guard from another
//! address logs in and acknowledges; the console closes the idle client's connections beyond
//! its share at once, and the rest when the handshake and header timeouts run out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use beacon::web::server::{HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS_PER_CLIENT};
use beacon::web::WebConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::console::{add_users, emergency_message, Client, Console, GUARD};

const IDLE_CLIENT: [u8; 4] = [127, 0, 0, 1];
const SLOW_CLIENT: [u8; 4] = [127, 0, 0, 3];
const GUARD_CLIENT: [u8; 4] = [127, 0, 0, 2];

async fn connect_from(local: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((local, 0)))
        .expect("bind a loopback address");
    socket.connect(to).await.expect("connect")
}

/// Whether the console has closed `stream` (end of stream or reset) within `wait`.
async fn closed_within<S: AsyncReadExt + Unpin>(stream: &mut S, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A TLS client that trusts the console's own certificate.
fn trusting(cert_pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(cert.expect("certificate")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_connections_do_not_keep_a_guard_from_acknowledging() {
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
    let addr = console.server().addr;
    console
        .post_message("19:limits@thread.v2", "m-1", emergency_message("Ana Ruiz"))
        .await;

    // One client opens far more idle connections than its share; some start a TLS handshake
    // (a ClientHello's first bytes) and stop.
    let mut idle = Vec::new();
    for n in 0..3 * MAX_CONNECTIONS_PER_CLIENT {
        let mut stream = connect_from(IDLE_CLIENT, addr).await;
        if n % 4 == 0 {
            stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .expect("partial ClientHello");
        }
        idle.push(stream);
    }
    // Another finishes the handshake and sends half a request head.
    let cert = std::fs::read(console.dir.path().join("data/web/cert.pem")).expect("cert");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut slow = trusting(&cert)
        .connect(name, connect_from(SLOW_CLIENT, addr).await)
        .await
        .expect("handshake");
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: beacon.local\r\n")
        .await
        .expect("half a head");
    slow.flush().await.expect("flush");

    // Beyond its share, the idle client's connections are closed at once.
    let mut refused = 0;
    for stream in idle.iter_mut() {
        if closed_within(stream, Duration::from_millis(100)).await {
            refused += 1;
        }
    }
    assert_eq!(
        refused,
        2 * MAX_CONNECTIONS_PER_CLIENT,
        "connections over the share closed"
    );

    // The guard, from another address, logs in and acknowledges meanwhile.
    let mut guard = Client::from_address(&console.url(), IpAddr::from(GUARD_CLIENT));
    guard.login(GUARD.0, GUARD.1).await;
    let token = guard.csrf("/").await;
    let response = guard.post("/acknowledge", &[("csrf", &token)]).await;
    assert_eq!(response.status().as_u16(), 303);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while console.alarm.view().borrow().state != beacon::alarm::AlarmState::Acknowledged {
        assert!(tokio::time::Instant::now() < deadline, "acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The connections held without a handshake, and the unfinished head, are closed by the
    // timeouts.
    let grace = HANDSHAKE_TIMEOUT.max(HEADER_TIMEOUT) + Duration::from_secs(3);
    let mut still_open = 0;
    let until = tokio::time::Instant::now() + grace;
    for stream in idle.iter_mut() {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !closed_within(stream, left).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle connections past the handshake timeout");
    let left = until.saturating_duration_since(tokio::time::Instant::now());
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(left, slow.read_to_end(&mut answer)).await;
    assert!(
        ended.is_ok(),
        "the unfinished head is cut off by the header timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    console.stop().await;
}
