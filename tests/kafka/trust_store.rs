//! One trust store: with the private test CAs in `[tls] ca_files` (installed as `beacon
//! run` installs them) and none of the clients' own CA settings, every TLS client of Beacon
//! accepts a server whose certificate only such a CA signed — the identity platform and
//! Graph (reqwest, through the same builders), the Event Hub (librdkafka, through the bundle
//! it is given), MQTT (rumqttc) and SMTP (lettre). The system store alone refuses them.
//!
//! In this binary because it needs the broker, and because the store is process-wide: no
//! other test here expects a private CA to be refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use beacon::eventhub::consumer::{self, ConsumerSettings};
use beacon::outputs::mqtt::{self, MqttConfig};
use beacon::outputs::notify::config::SmtpSecurity;
use beacon::outputs::notify::NotifyConfig;
use beacon::secret::Secret;
use beacon::store::Store;
use beacon::trust::{TrustConfig, TrustStore};
use chrono::Utc;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::campaign::outputs::SmtpSink;

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(scripts/test-env)\"` first"))
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
}

/// A certificate for `name` signed by `issuer` (itself when `None`: the CA).
fn certificate(name: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut subject = X509NameBuilder::new().expect("name");
    subject
        .append_entry_by_nid(Nid::COMMONNAME, name)
        .expect("cn");
    let subject = subject.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(issuer.map_or(&subject, |(ca, _)| ca.subject_name()))
        .expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("t"))
        .expect("na");
    let serial = openssl::bn::BigNum::from_u32(rand_serial()).expect("bn");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    match issuer {
        None => {
            b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("bc");
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .build()
                    .expect("ku"),
            )
            .expect("ku");
        }
        Some((ca, _)) => {
            let san = SubjectAlternativeName::new()
                .dns(name)
                .build(&b.x509v3_context(Some(ca), None))
                .expect("san");
            b.append_extension(san).expect("san");
        }
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .expect("sign");
    b.build()
}

fn rand_serial() -> u32 {
    let mut bytes = [0u8; 4];
    openssl::rand::rand_bytes(&mut bytes).expect("rand");
    u32::from_be_bytes(bytes) >> 1
}

/// An HTTPS server on 127.0.0.1 answering every request `200 trusted`, with a certificate
/// for `localhost` from a CA of its own; returns its port and the CA's PEM file.
async fn https_server_with_private_ca(dir: &Path) -> (u16, PathBuf) {
    let ca_key = key();
    let ca = certificate("Beacon test private CA", &ca_key, None);
    let server_key = key();
    let server = certificate("localhost", &server_key, Some((&ca, &ca_key)));
    let ca_file = dir.join("private-ca.pem");
    std::fs::write(&ca_file, ca.to_pem().expect("pem")).expect("write CA");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![server.to_der().expect("der").into()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(
            server_key.private_key_to_pkcs8().expect("pkcs8").into(),
        ),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = tls.read(&mut request).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntrusted",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca_file)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tls_client_accepts_a_ca_configured_once_in_tls_ca_files() {
    let dir = tempfile::tempdir().expect("dir");
    let (https_port, private_ca) = https_server_with_private_ca(dir.path()).await;
    let url = format!("https://localhost:{https_port}/token");

    // The system store alone does not know the private CA.
    let system_only = TrustStore::system()
        .reqwest_builder()
        .expect("builder")
        .build()
        .expect("client");
    assert!(
        system_only.get(&url).send().await.is_err(),
        "refused without the CA"
    );

    // [tls] ca_files: the private CA, the broker's and Mosquitto's CA, the SMTP server's CA.
    let smtp_tls = PathBuf::from(var("BEACON_TEST_SMTP_TLS"));
    let installed = beacon::trust::install(&TrustConfig {
        ca_files: vec![
            private_ca,
            PathBuf::from(var("BEACON_TEST_KAFKA_CA")),
            smtp_tls.join("ca.pem"),
        ],
    })
    .expect("CA files load");
    assert!(installed.configured_count() >= 3);

    // Sign-in and Graph: the identity platform's client (and Graph's, built the same way).
    let login = beacon::graph::auth::http_client().expect("client");
    let answer = login
        .get(&url)
        .send()
        .await
        .expect("login client trusts the CA");
    assert_eq!(answer.text().await.expect("body"), "trusted");
    let webhooks = beacon::outputs::notify::http::client(Duration::from_secs(10)).expect("client");
    let answer = webhooks
        .get(&url)
        .send()
        .await
        .expect("webhook client trusts the CA");
    assert_eq!(answer.status().as_u16(), 200);

    // The Event Hub: librdkafka gets the shared CAs as a bundle; no eventhub.ca_file.
    let bundle = beacon::trust::librdkafka_ca_file(&dir.path().join("trust"), None)
        .expect("bundle written")
        .expect("a bundle, since CA files are configured");
    let settings = ConsumerSettings {
        group_id: "trust-store-test".into(),
        client_id: "trust-store-test".into(),
        ca_file: Some(bundle),
        instance_id: None,
        max_batch: 10,
        commit: false,
        target: crate::support::kafka::target("trust-store"),
    };
    let kafka: BaseConsumer = consumer::client_config(&settings)
        .create()
        .expect("consumer");
    let metadata = tokio::task::spawn_blocking(move || {
        kafka
            .fetch_metadata(None, Duration::from_secs(20))
            .map(|m| m.brokers().len())
    })
    .await
    .expect("join");
    assert!(
        metadata.is_ok_and(|brokers| brokers > 0),
        "SASL_SSL handshake with the bundle"
    );

    // MQTT over TLS, without mqtt.ca_file.
    let address = var("BEACON_TEST_MQTT_TLS");
    let mqtt_port = address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port");
    let config = MqttConfig {
        enabled: true,
        host: "localhost".into(),
        port: mqtt_port,
        tls: true,
        ca_file: None,
        username: Some(var("BEACON_TEST_MQTT_USER")),
        password: Some(Secret::new(var("BEACON_TEST_MQTT_PASSWORD"))),
        trouble_after_secs: 1,
        discovery: false,
        ..MqttConfig::default()
    };
    let store = Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = beacon::alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let service = mqtt::spawn(
        &config,
        "trust-desk",
        store,
        alarm,
        crate::support::mqtt::no_health(),
    )
    .expect("mqtt");
    let mut status = service.status();
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.connected))
        .await
        .expect("MQTT connected over TLS within 20 s")
        .expect("status");

    // SMTP with STARTTLS, without notify.smtp_ca_file.
    let sink = SmtpSink::start_with(&[
        "--cert",
        &smtp_tls.join("server.pem").display().to_string(),
        "--key",
        &smtp_tls.join("server.key").display().to_string(),
    ]);
    let notify = NotifyConfig {
        smtp_host: Some("localhost".into()),
        smtp_port: Some(sink.port),
        smtp_security: SmtpSecurity::Starttls,
        smtp_from: Some("beacon@campaign.test".into()),
        ..NotifyConfig::default()
    };
    let email = beacon::outputs::notify::email::Email::new(&notify, Duration::from_secs(10))
        .expect("settings")
        .expect("e-mail configured");
    email
        .send("desk@campaign.test", "trust", "sent over STARTTLS")
        .await
        .expect("SMTP client trusts the CA");
}
