//! `beacon demo` on a fresh machine: it prints the console's address and a login, plays a
//! demonstration emergency that the console shows as an active alarm, and ends on SIGTERM,
//! removing its temporary data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::console::Client;
use crate::support::process::beacon_command;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_prints_a_login_and_shows_an_emergency() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut demo = beacon_command()
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--first-after",
            "1",
            "--every",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo");
    let stdout = demo.stdout.take().expect("stdout");
    // The first line, then keep reading (the demo must never write into a closed pipe here).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .expect("join")
        .expect("the demo prints its login");
    // "Beacon demo: open http://… and log in as demo with password …"
    let words: Vec<&str> = first.split_whitespace().collect();
    let url = words
        .iter()
        .find(|w| w.starts_with("http://"))
        .expect("url")
        .to_string();
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let password = words.last().expect("password").to_string();
    let mut client = Client::new(&url);
    client.login("demo", &password).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let live = client.get("/live").await.text().await.unwrap_or_default();
        if live.contains("EMERGENCY CALL") && live.contains("Jordan Rivera") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no demonstration call shown: {live}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(demo.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let pid = demo.id();
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let data = std::env::temp_dir().join(format!("beacon-demo-{pid}"));
    assert!(!data.exists(), "the demo's data is removed");
}

/// A `beacon` a test starts ends with it: once the thread that started it is gone (as a
/// panicking test's is), the kernel kills the child instead of leaving it running.
#[test]
fn a_beacon_started_by_a_test_ends_with_the_thread_that_started_it() {
    use std::os::unix::process::ExitStatusExt as _;
    let mut demo = std::thread::spawn(|| {
        beacon_command()
            .args(["demo", "--listen", "127.0.0.1:0", "--every", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo")
    })
    .join()
    .expect("the starting thread");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = demo.kill();
            let _ = demo.wait();
            panic!("the demo outlived the thread that started it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Killed, it could not remove its data.
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("beacon-demo-{}", demo.id())));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}
