//! The command line as an operator uses it: `check-config` and `replay`.

mod support;

use std::process::Command;

use support::notifications::{basic, validation};
use support::CLIENT_STATE;

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
    assert_eq!(out.status.code(), Some(2));
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
    assert_eq!(out.status.code(), Some(2));
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
    // Seed the appliance's store with the subscription's clientState, as the keeper would.
    {
        let store = beacon::store::Store::open(&data).expect("store");
        beacon::graph::client_state::ClientStates::default()
            .add(
                &store,
                "sub-test",
                beacon::secret::Secret::new(CLIENT_STATE),
            )
            .expect("state");
    }
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
