//! `beacon run` with `[mqtt]` as the service runs it (real Kafka-protocol broker for the hub,
//! real Mosquitto): the broker publishes the last will `offline` when the process is killed
//! with SIGKILL (no DISCONNECT), a SIGTERM stops it cleanly with `offline` published by
//! Beacon itself, and the MQTT password never appears in the log or in `check-config`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::kafka::{connection_string, create_topic};
use crate::support::mqtt::{broker, unique, Observer};
use crate::support::process::beacon;

const PASSWORD: &str = "mqtt-pass-5be1c0d7-never-printed";

/// Writes a config for device `device` with the hub on the test broker and `[mqtt]` on the
/// test Mosquitto (with a user name and password: this Mosquitto allows anonymous clients and
/// takes any credentials).
async fn config(dir: &std::path::Path, device: &str) -> std::path::PathBuf {
    let hub = unique("mqtt-run-hub");
    create_topic(&hub, 1).await;
    let kafka = crate::support::kafka::broker();
    let (host, port) = broker();
    let path = dir.join("beacon.toml");
    std::fs::write(
        &path,
        format!(
            "device_id = \"{device}\"\ndata_dir = \"{data}\"\n\
             [eventhub]\nconnection_string = \"{cs}\"\nbootstrap_override = \"{bootstrap}\"\nca_file = \"{ca}\"\nconsumer_group = \"{group}\"\n\
             [mqtt]\nenabled = true\nhost = \"{host}\"\nport = {port}\nusername = \"beacon\"\npassword = \"{PASSWORD}\"\nkeepalive_secs = 5\n",
            data = dir.join("data").display(),
            cs = connection_string(&hub).expose(),
            bootstrap = kafka.bootstrap,
            ca = kafka.ca.display(),
            group = unique("beacon-mqtt-run"),
        ),
    )
    .expect("config");
    path
}

/// Starts `beacon run`, collecting its log.
fn run(config: &std::path::Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = beacon(&["run"], config)
        .env("BEACON_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    (child, lines)
}

async fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("exited within 30 s")
    .expect("join")
    .expect("wait")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_publishes_the_last_will_when_beacon_is_killed() {
    let dir = tempfile::tempdir().expect("dir");
    let device = unique("run-kill");
    let config = config(dir.path(), &device).await;
    let availability = format!("beacon/{device}/availability");
    let live = Observer::new(std::slice::from_ref(&availability)).await;

    let (mut child, log) = run(&config);
    live.wait_for(&availability, "online", |s| s.text() == "online")
        .await;
    child.kill().expect("SIGKILL");
    let _ = wait_exit(child).await;

    // No DISCONNECT was sent: the broker publishes the will, retained.
    live.wait_for(&availability, "the will", |s| s.text() == "offline")
        .await;
    let late = Observer::new(std::slice::from_ref(&availability)).await;
    let retained = late
        .wait_for(&availability, "retained availability", |s| s.retained)
        .await;
    assert_eq!(retained.text(), "offline");
    let log = log.lock().expect("lock").join("\n");
    assert!(!log.contains(PASSWORD), "the MQTT password is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_beacon_cleanly_with_offline_published() {
    let dir = tempfile::tempdir().expect("dir");
    let device = unique("run-term");
    let config = config(dir.path(), &device).await;
    let root = format!("beacon/{device}/#");
    let availability = format!("beacon/{device}/availability");
    let live = Observer::new(&[root]).await;

    let (child, log) = run(&config);
    live.wait_for(&availability, "online", |s| s.text() == "online")
        .await;
    live.wait_for(&format!("beacon/{device}/alarm"), "state", |s| {
        s.json()["state"] == "idle"
    })
    .await;
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_exit(child).await;
    assert!(status.success(), "{status:?}");
    live.wait_for(&availability, "offline", |s| s.text() == "offline")
        .await;
    let log = log.lock().expect("lock").join("\n");
    assert!(log.contains("MQTT connected"), "{log}");
    assert!(!log.contains(PASSWORD), "the MQTT password is in the log");

    // `check-config` shows the section, never the password.
    let out = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("check-config");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("mqtt"), "{printed}");
    assert!(
        !printed.contains(PASSWORD),
        "check-config printed the MQTT password"
    );
}
