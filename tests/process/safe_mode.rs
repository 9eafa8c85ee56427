//! A bad configuration never darkens the box: `beacon run` with a file that does not load
//! runs the last good configuration (its console answers) and says why, instead of exiting
//! into a restart loop; `beacon check-config` says the same file is invalid with status 78,
//! warns about unknown keys without failing, and names what the setup wizard overrides.

use std::time::Duration;

use crate::support::process::{run_logged, sigterm_and_wait, Log};

fn good_config(data: &std::path::Path) -> String {
    format!(
        "device_id = \"safe-mode\"\ndata_dir = \"{}\"\n[alarm]\nsiren_auto_silence_minutes = 5\n[web]\nlisten = \"127.0.0.1:0\"\nhttps = false\n",
        data.display()
    )
}

/// The console's address from the log.
async fn console_address(log: &mut Log) -> String {
    let line = log
        .wait_for("console listening", Duration::from_secs(30))
        .await;
    let at = line.find("addr=").expect("addr in the line") + 5;
    line[at..]
        .split_whitespace()
        .next()
        .expect("address")
        .to_string()
}

async fn console_answers(addr: &str) {
    let response = reqwest::get(format!("http://{addr}/login"))
        .await
        .expect("the console answers");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_file_runs_the_last_good_configuration_and_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let path = dir.path().join("beacon.toml");
    std::fs::write(&path, good_config(&data)).expect("write");

    // A good start keeps the file as the last good configuration.
    let (mut run, mut log) = run_logged(&path, "info");
    console_answers(&console_address(&mut log).await).await;
    assert!(sigterm_and_wait(&mut run, Duration::from_secs(30))
        .await
        .success());
    assert!(data.join("last-good.toml").exists());

    // Someone saves a typo in a value: the service still comes up, on the last good file.
    std::fs::write(&path, good_config(&data).replace("= 5", "= \"five\"")).expect("write");
    let (mut run, mut log) = run_logged(&path, "info");
    let error = log
        .wait_for("the configuration does not load", Duration::from_secs(30))
        .await;
    assert!(
        error.contains("beacon.toml") && error.contains("siren_auto_silence_minutes"),
        "the error names the file and the key: {error}"
    );
    let line = log
        .wait_for(
            "running on the last good configuration",
            Duration::from_secs(30),
        )
        .await;
    assert!(line.contains("last-good.toml"), "{line}");
    console_answers(&console_address(&mut log).await).await;
    assert!(
        run.try_wait().expect("wait").is_none(),
        "beacon run must not exit on a bad configuration"
    );
    assert!(sigterm_and_wait(&mut run, Duration::from_secs(30))
        .await
        .success());

    // check-config: the same file is invalid (EX_CONFIG), in words.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("check-config");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("siren_auto_silence_minutes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_warns_about_unknown_keys_and_names_what_the_wizard_overrides() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let path = dir.path().join("beacon.toml");
    std::fs::write(&path, format!("{}newer_key = true\n", good_config(&data))).expect("write");
    // What the setup wizard saved, as the store's keepsake lists it.
    {
        let store = beacon::store::Store::open(&data).expect("store");
        store
            .settings
            .insert(
                "wizard/oauth",
                &serde_json::json!({"tenant_id": "t", "client_id": "c", "client_secret_expires": null}),
            )
            .expect("insert");
        store.flush().expect("flush");
    }
    let check = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_beacon"));
        cmd.args(args);
        cmd.env_remove("BEACON_CONFIG");
        cmd.output().expect("run")
    };
    let out = check(&["check-config", path.to_str().expect("utf-8")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("warning: ignored"), "{stdout}");
    assert!(stdout.contains("newer_key"), "{stdout}");
    let overrides = stdout
        .split("setup wizard:")
        .nth(1)
        .unwrap_or_else(|| panic!("no setup wizard part: {stdout}"));
    assert!(overrides.contains("graph.client_id"), "{stdout}");
    assert!(
        !overrides.contains("eventhub.connection_string"),
        "no connection string was saved by the wizard: {stdout}"
    );

    // The exit statuses are listed in --help; a wrong command line is EX_USAGE.
    let help = check(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("78  the configuration is wrong"));
    assert_eq!(check(&["no-such-command"]).status.code(), Some(64));
}

#[test]
fn secrets_come_from_systemd_credentials_and_are_never_printed() {
    const KEY: &str = "c2VjcmV0LWtleS1vZi10aGUtY3JlZGVudGlhbA==";
    let dir = tempfile::tempdir().expect("dir");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).expect("dir");
    // As the unit's LoadCredential=beacon:/etc/beacon/credentials names them, with the
    // trailing newline an editor adds.
    std::fs::write(
        credentials.join("beacon_eventhub.connection_string"),
        format!("Endpoint=sb://contoso-cred.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey={KEY};EntityPath=teams\n"),
    )
    .expect("write");
    let path = dir.path().join("beacon.toml");
    std::fs::write(
        &path,
        format!("data_dir = \"{}\"\n", dir.path().join("data").display()),
    )
    .expect("write");
    let run = |credentials_dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
            .arg("check-config")
            .arg(&path)
            .env("CREDENTIALS_DIRECTORY", credentials_dir)
            .env_remove("BEACON_EVENTHUB_CONNECTION_STRING")
            .output()
            .expect("run")
    };
    let out = run(&credentials);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("contoso-cred"),
        "the credential is used: {stdout}"
    );
    assert!(stdout.contains("topic 'teams'"), "{stdout}");
    assert!(!stdout.contains(KEY), "{stdout}");

    // A credential that names no setting is a warning naming it, never its value.
    std::fs::write(credentials.join("beacon.mqtt.pasword"), KEY).expect("write");
    let out = run(&credentials);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("credential beacon.mqtt.pasword"),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY), "{stdout}");
}
