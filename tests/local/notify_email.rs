//! E-mail notifications against a real SMTP server on loopback (aiosmtpd, installed by
//! scripts/test-env, started per test by scripts/smtp-sink.py): the message arrives with the
//! caller, call-back number, location, map link and dial string; a test call says
//! "THIS IS A TEST"; STARTTLS with AUTH works against the test CA; refused credentials are a
//! trouble at once, and the password never reaches the outbox.

use crate::support::campaign::outputs as smtp_sink;
use crate::support::notify_harness;

use std::path::PathBuf;
use std::time::Duration;

use beacon::outputs::notify::channel::Channel;
use beacon::outputs::notify::config::{Recipient, SmtpSecurity};
use beacon::outputs::notify::message_kind::MessageKind;
use beacon::outputs::notify::outbox::Status;
use beacon::outputs::notify::NotifyConfig;
use beacon::secret::Secret;
use notify_harness::{call, captured_logs, stored_outbox, test_call, Bench};
use smtp_sink::SmtpSink;

const PASSWORD: &str = "smtp-pass-7c41e9";

/// scripts/test-env's throw-away CA and server certificate for STARTTLS.
fn tls_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("BEACON_TEST_SMTP_TLS")
            .expect("BEACON_TEST_SMTP_TLS: run eval \"$(scripts/test-env)\" first"),
    )
}

/// The test's SMTP server (`support/campaign/outputs.rs`), optionally with STARTTLS and a
/// required login.
fn sink(tls: bool, auth: bool) -> SmtpSink {
    let certs = tls_dir();
    let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
    let mut options = Vec::new();
    if tls {
        options.extend([
            "--cert".to_string(),
            cert.display().to_string(),
            "--key".to_string(),
            key.display().to_string(),
        ]);
    }
    if auth {
        options.extend(["--user", "beacon", "--password", PASSWORD].map(str::to_string));
    }
    SmtpSink::start_with(&options.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The messages `sink` received so far, in order, decoded.
fn received(sink: &SmtpSink) -> Vec<Mail> {
    sink.raw_messages()
        .iter()
        .map(|raw| Mail::parse(raw))
        .collect()
}

/// Waits until `sink` holds `n` messages (or `timeout` passed); returns them.
async fn wait(sink: &SmtpSink, n: usize, timeout: Duration) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = received(sink);
        if got.len() >= n || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A received message: unfolded headers and the decoded body.
#[derive(Debug)]
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut mail = Mail {
            headers,
            body: body.to_string(),
        };
        if mail
            .header("content-transfer-encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        {
            mail.body = quoted_printable(&mail.body);
        }
        mail
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn email_config(sink: &SmtpSink, security: SmtpSecurity, to: &[&str]) -> NotifyConfig {
    NotifyConfig {
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(sink.port),
        smtp_security: security,
        smtp_from: Some("Beacon <beacon@example.test>".into()),
        retry_first_seconds: 1,
        retry_max_seconds: 2,
        trouble_after_seconds: 60,
        timeout_seconds: 10,
        recipients: to
            .iter()
            .map(|to| Recipient {
                channel: Channel::Email,
                to: Some(to.to_string()),
                zones: Vec::new(),
                on: None,
            })
            .collect(),
        ..NotifyConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_email_arrives_with_caller_callback_location_and_map_link() {
    let sink = sink(false, false);
    let mut bench = Bench::new();
    bench.start(&email_config(
        &sink,
        SmtpSecurity::None,
        &["guard@example.test"],
    ));
    bench.record_call("chat-1/m-1", Some("HQ"), Some((47.6412, -122.1269)));
    bench
        .raise(
            "chat-1/m-1",
            call("Ann Smith", "Building 7, Floor 2, Room 201"),
        )
        .await;

    let mails = wait(&sink, 1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "one e-mail");
    let mail = &mails[0];
    assert_eq!(mail.header("x-sink-rcpt-to"), Some("guard@example.test"));
    assert_eq!(mail.header("x-sink-mail-from"), Some("beacon@example.test"));
    let subject = mail.header("subject").unwrap_or_default();
    assert!(subject.contains("EMERGENCY CALL 911"), "{subject}");
    assert!(subject.contains("Ann Smith"), "{subject}");
    assert!(!subject.contains("THIS IS A TEST"), "{subject}");
    for expected in [
        "Caller: Ann Smith",
        "Call-back number: +14255550123",
        "Dialled: 911",
        "Location: Building 7, Floor 2, Room 201",
        "Map: https://www.openstreetmap.org/?mlat=47.641200&mlon=-122.126900",
        "Zone: HQ",
    ] {
        assert!(
            mail.body.contains(expected),
            "missing {expected:?} in\n{}",
            mail.body
        );
    }
    assert!(!mail.body.contains("THIS IS A TEST"));

    let entries = bench
        .wait_outbox(Duration::from_secs(5), |e| {
            e.iter().all(|(_, e)| e.status == Status::Delivered)
        })
        .await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0].1;
    assert_eq!(entry.status, Status::Delivered);
    assert_eq!(entry.kind, MessageKind::Alarm);
    assert_eq!(entry.call_key.as_deref(), Some("chat-1/m-1"));
    assert_eq!(entry.recipient, "guard@example.test");
    assert_eq!(entry.attempts, 1);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_call_email_says_this_is_a_test() {
    let sink = sink(false, false);
    let mut bench = Bench::new();
    bench.start(&email_config(
        &sink,
        SmtpSecurity::None,
        &["guard@example.test", "office@example.test"],
    ));
    bench.record_call("chat-1/m-2", None, None);
    bench
        .raise("chat-1/m-2", test_call("Bob Jones", "Lobby"))
        .await;
    let mails = wait(&sink, 2, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 2, "one e-mail per recipient");
    for mail in &mails {
        let subject = mail.header("subject").unwrap_or_default();
        assert!(subject.starts_with("THIS IS A TEST."), "{subject}");
        assert!(mail.body.starts_with("THIS IS A TEST."), "{}", mail.body);
        assert!(mail.body.contains("Dialled: 933"));
        // No coordinates: a map search for the location text.
        assert!(
            mail.body
                .contains("Map: https://www.openstreetmap.org/search?query=Lobby"),
            "{}",
            mail.body
        );
    }
    let mut to: Vec<_> = mails
        .iter()
        .filter_map(|m| m.header("x-sink-rcpt-to"))
        .collect();
    to.sort();
    assert_eq!(to, ["guard@example.test", "office@example.test"]);
    let entries = bench.outbox();
    assert!(entries.iter().all(|(_, e)| e.kind == MessageKind::Test));
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_auth_delivers_and_wrong_password_is_a_trouble() {
    captured_logs();
    let ca = tls_dir().join("ca.pem");
    let sink = sink(true, true);
    let mut config = email_config(&sink, SmtpSecurity::Starttls, &["guard@example.test"]);
    config.smtp_ca_file = Some(ca);
    config.smtp_username = Some("beacon".into());
    config.smtp_password = Some(Secret::new(PASSWORD));

    let mut bench = Bench::new();
    bench.start(&config);
    bench.record_call("chat-2/m-1", None, None);
    bench.raise("chat-2/m-1", call("Cy Doe", "Warehouse")).await;
    let mails = wait(&sink, 1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "delivered over STARTTLS with AUTH");
    bench.stop().await;

    // The same server with a wrong password: refused (535), permanent, a trouble at once.
    config.smtp_password = Some(Secret::new("not-the-password-31b0"));
    let mut bench = Bench::new();
    bench.start(&config);
    bench.record_call("chat-2/m-2", None, None);
    bench.raise("chat-2/m-2", call("Di Roe", "Yard")).await;
    assert!(
        bench
            .wait_trouble("notify:email", true, Duration::from_secs(20))
            .await,
        "refused credentials raise notify:email: {:?}",
        bench.outbox()
    );
    let entries = bench.outbox();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0].1;
    assert_eq!(entry.status, Status::Pending, "kept for after the fix");
    assert!(entry.last_error.is_some());
    let stored = stored_outbox(&bench.store);
    let logs = captured_logs();
    for password in ["not-the-password-31b0", PASSWORD] {
        assert!(!stored.contains(password), "a password is in the outbox");
        assert!(!logs.contains(password), "a password is in the logs");
    }
    assert!(logs.contains("notify:email"), "the trouble is logged");
    assert_eq!(received(&sink).len(), 1, "nothing more arrived");
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_timed_out_and_becomes_a_trouble() {
    // Accepts connections and says nothing (no greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = NotifyConfig {
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_security: SmtpSecurity::None,
        smtp_from: Some("beacon@example.test".into()),
        retry_first_seconds: 1,
        retry_max_seconds: 1,
        trouble_after_seconds: 2,
        timeout_seconds: 1,
        recipients: vec![Recipient {
            channel: Channel::Email,
            to: Some("guard@example.test".into()),
            zones: Vec::new(),
            on: None,
        }],
        ..NotifyConfig::default()
    };
    let mut bench = Bench::new();
    bench.start(&config);
    bench.record_call("chat-3/m-1", None, None);
    bench.raise("chat-3/m-1", call("Eve Poe", "Gate")).await;
    assert!(
        bench
            .wait_trouble("notify:email", true, Duration::from_secs(20))
            .await,
        "a silent server is a trouble: {:?}",
        bench.outbox()
    );
    let entry = bench.outbox()[0].1.clone();
    assert_eq!(entry.status, Status::Pending);
    assert!(entry.attempts >= 2, "{entry:?}");
    assert!(
        entry
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out") || e.contains("timeout")),
        "{entry:?}"
    );
    bench.stop().await;
}
