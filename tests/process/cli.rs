//! The command line as an operator uses it: `check-config` and `replay`; `beacon run` stopped
//! by systemd while it is still starting.

use std::process::Command;

use crate::support::notifications::{basic, validation};
use crate::support::CLIENT_STATE;

const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGhlLWNsaS10ZXN0LW9ubHk=";

fn beacon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    // Only what the test sets: no BEACON_* from the developer's shell.
    for (k, _) in std::env::vars() {
        if k.starts_with("BEACON_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn help_teaches_the_commands() {
    let out = beacon().arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "check-config", "replay"] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn check_config_accepts_a_good_file_and_never_prints_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let cs = format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey={KEY};EntityPath=teams");
    let path = write(
        dir.path(),
        "ok.toml",
        &format!("device_id = \"desk-1\"\n[eventhub]\nconnection_string = \"{cs}\"\n"),
    );
    let out = beacon()
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("contoso.servicebus.windows.net:9093"),
        "{stdout}"
    );
    assert!(stdout.contains("beacon-desk-1"), "{stdout}");
    assert!(stdout.contains("set (not shown)"), "{stdout}");
    assert!(!stdout.contains(KEY), "{stdout}");
}

#[test]
fn check_config_errors_name_file_and_key_and_hide_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAcessKey={KEY}");
    let path = write(
        dir.path(),
        "bad.toml",
        &format!("[eventhub]\nconnection_string = \"{bad}\"\n"),
    );
    let out = beacon()
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("eventhub.connection_string"), "{stderr}");
    assert!(stderr.contains("unknown part 'SharedAcessKey'"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");

    // The same string from the environment: the variable is named instead of the file.
    let ok = write(dir.path(), "empty.toml", "");
    let out = beacon()
        .arg("check-config")
        .arg(&ok)
        .env("BEACON_EVENTHUB_CONNECTION_STRING", &bad)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains("BEACON_EVENTHUB_CONNECTION_STRING"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY), "{stderr}");
}

#[test]
fn replay_feeds_the_pipeline_and_a_second_replay_is_all_duplicates() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    crate::support::seed_store(&data);
    let config = write(
        dir.path(),
        "beacon.toml",
        &format!("data_dir = \"{}\"\n", data.display()),
    );
    let lines = [
        basic(CLIENT_STATE, "1", "created"),
        basic(CLIENT_STATE, "2", "created"),
        basic(CLIENT_STATE, "1", "created"),
        validation(),
        "garbage".to_string(),
        String::new(),
    ];
    let file = write(dir.path(), "drill.jsonl", &lines.join("\n"));
    let run = || {
        let out = beacon()
            .arg("replay")
            .arg(&file)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("summary JSON")
    };
    let first = run();
    assert_eq!(first["lines"], 5);
    assert_eq!(first["handed_off"], 2);
    assert_eq!(first["duplicates"], 1);
    assert_eq!(first["ignored"], 1);
    assert_eq!(first["rejected"], 1);
    let second = run();
    assert_eq!(second["handed_off"], 0);
    assert_eq!(second["duplicates"], 3);
}

#[test]
fn parse_prints_the_stable_shape_and_exit_codes() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emergency");
    let run = |name: &str| {
        let out = beacon()
            .arg("parse")
            .arg(fixtures.join(name))
            .output()
            .expect("run");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), json)
    };
    let (code, json) = run("en_h7_html_and_card.json");
    assert_eq!(code, Some(0));
    assert_eq!(json["classification"], "emergency");
    let call = &json["call"];
    assert_eq!(call["caller"]["display_name"], "Jordan Rivera");
    assert_eq!(call["caller"]["upn"], "jordan.rivera@contoso.com");
    assert_eq!(call["dial_string"], "911");
    assert_eq!(call["is_test"], false);
    for key in ["text", "site", "address", "latitude", "longitude"] {
        assert!(
            call["location"].get(key).is_some(),
            "location.{key} missing"
        );
    }
    for key in ["chat_id", "message_id", "created"] {
        assert!(call[key].is_string(), "{key}");
    }
    let (code, json) = run("test_933_html.json");
    assert_eq!(
        (code, json["classification"].as_str()),
        (Some(0), Some("test"))
    );
    let (code, json) = run("trap_chat_mentions_emergency.json");
    assert_eq!(
        (code, json["classification"].as_str()),
        (Some(1), Some("not_emergency"))
    );
    assert!(json["call"].is_null());

    let dir = tempfile::tempdir().expect("dir");
    let bad = write(dir.path(), "bad.json", "{ not json");
    let out = beacon().arg("parse").arg(&bad).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
}

#[test]
fn parse_decrypts_a_rich_notification_with_key() {
    let key = beacon::graph::crypto::EncryptionKey::generate("parse-key", chrono::Utc::now(), 30)
        .expect("key");
    let message: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/emergency/en_h7_html_and_card.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    let body = crate::support::notifications::rich(
        CLIENT_STATE,
        "1741000123456",
        &message,
        key.certificate_der(),
        &key.id,
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = write(dir.path(), "rich.json", &body);
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, key.private_key_pem().expect("pem")).expect("write");
    let out = beacon()
        .arg("parse")
        .arg(&file)
        .arg("--key")
        .arg(&pem)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["classification"], "emergency");
    // Without the key: a clear error, exit 2.
    let out = beacon().arg("parse").arg(&file).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}

#[test]
fn sigterm_while_beacon_run_is_starting_still_stops_it_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("dir");
    let config = write(
        dir.path(),
        "beacon.toml",
        &format!(
            "device_id = \"starting\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    );
    let mut child = beacon()
        .args(["run", "--config"])
        .arg(&config)
        .env("BEACON_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("beacon run");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // The first line comes from opening the store: start-up has only begun.
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(!first.is_empty(), "beacon run logged nothing");
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("beacon run did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let log = rest.join().expect("log reader").join("\n");
    assert!(
        status.success(),
        "SIGTERM during start-up must stop beacon cleanly, not kill it: {status:?}"
    );
    assert!(log.contains("shutting down"), "{log}");
}
