//! `beacon run` with the console: the log shows the one-time setup code, the console serves,
//! and SIGTERM still ends the service promptly and cleanly while a browser holds an event
//! stream open (the console must not keep an alarm handle past shutdown).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::console::Client;
use crate::support::kafka::{broker, connection_string, create_topic};
use crate::support::process::beacon;
use crate::support::unique;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_beacon_run_while_a_page_follows_the_events() {
    let hub = unique("web-hub");
    create_topic(&hub, 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"web-run\"\ndata_dir = \"{}\"\n[eventhub]\nconnection_string = \"{}\"\nbootstrap_override = \"{}\"\nca_file = \"{}\"\nconsumer_group = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\nhttps = false\n",
            dir.path().join("data").display(),
            connection_string(&hub).expose(),
            broker().bootstrap,
            broker().ca.display(),
            unique("web-run"),
        ),
    )
    .expect("config");
    let mut run = beacon(&["run"], &config)
        .env("BEACON_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let stderr = run.stderr.take().expect("stderr");
    let (tx, mut log) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut code = None;
    let mut addr = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while code.is_none() || addr.is_none() {
        let line = tokio::time::timeout_at(deadline, log.recv())
            .await
            .expect("the setup code and the console address are logged within 30 s")
            .expect("log open");
        if let Some(at) = line.find("setup_code=") {
            let value: String = line[at + 11..]
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(9)
                .collect();
            code = Some(value);
        }
        if line.contains("console listening") {
            if let Some(at) = line.find("addr=") {
                addr = line[at + 5..].split_whitespace().next().map(str::to_string);
            }
        }
    }
    let (code, addr) = (code.unwrap_or_default(), addr.unwrap_or_default());
    let mut client = Client::new(&format!("http://{addr}"));
    let token = client.csrf("/first-run").await;
    let created = client
        .post(
            "/first-run",
            &[
                ("csrf", &token),
                ("code", &code),
                ("user", "chief"),
                ("password", "a long password"),
                ("confirm", "a long password"),
            ],
        )
        .await;
    assert_eq!(
        created.status().as_u16(),
        303,
        "the logged setup code works"
    );
    let mut events = client.get("/api/events").await;
    assert_eq!(events.status().as_u16(), 200);
    let first = events
        .chunk()
        .await
        .expect("stream")
        .expect("a first event");
    assert!(String::from_utf8_lossy(&first).contains("hello"));

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(run.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let waited = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = run.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = run.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join");
    let status = waited.expect("beacon run ended within 30 s of SIGTERM with an open event stream");
    assert!(status.success(), "{status:?}");
    // The stream ended with the service.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream closed");
}
