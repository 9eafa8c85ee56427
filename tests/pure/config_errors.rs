//! Configuration as an operator meets it: the example file is valid, environment variables
//! override single keys with the right types, and every error names the file or variable and
//! the key without ever showing a value.

use std::path::{Path, PathBuf};

use beacon::config::{Config, ConfigError};

const KEY: &str = "c2VjcmV0LWtleS12YWx1ZS10aGF0LW11c3Qtbm90LWxlYWs=";

fn cs() -> String {
    format!("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey={KEY};EntityPath=teams")
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_parts(Path::new("/etc/beacon/beacon.toml"), text, &env)
}

#[test]
fn example_file_is_valid() {
    let text = include_str!("../../config/beacon.example.toml");
    let config = load(text, &[]).map_err(|e| e.to_string());
    assert!(config.is_ok(), "{config:?}");
}

/// Static membership left the power-cut campaign's box deaf on the test broker: off unless
/// the file turns it on.
#[test]
fn static_membership_is_off_unless_turned_on() {
    let off = load("", &[]).map_err(|e| e.to_string());
    assert!(
        matches!(off, Ok(ref c) if !c.eventhub.static_membership),
        "{off:?}"
    );
    let on = load("[eventhub]\nstatic_membership = true\n", &[]).map_err(|e| e.to_string());
    assert!(
        matches!(on, Ok(ref c) if c.eventhub.static_membership),
        "{on:?}"
    );
}

#[test]
fn env_overrides_file_and_keeps_types() {
    let config = load(
        "data_dir = \"/tmp/a\"\n[ingest]\nqueue = 10\n",
        &[
            ("BEACON_DATA_DIR", "/tmp/b"),
            ("BEACON_INGEST_QUEUE", "20"),
            ("BEACON_EVENTHUB_STATIC_MEMBERSHIP", "true"),
            ("BEACON_EVENTHUB_CONNECTION_STRING", &cs()),
        ],
    )
    .map_err(|e| e.to_string());
    let config = match config {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(config.data_dir, PathBuf::from("/tmp/b"));
    assert_eq!(config.ingest.queue, 20);
    assert!(config.eventhub.static_membership);
    let target = config.eventhub_target().map_err(|e| e.to_string());
    assert_eq!(
        target.map(|t| t.topic().to_string()),
        Ok("teams".to_string())
    );
}

#[test]
fn unknown_key_names_file_and_key() {
    let err = load("[eventhub]\nhubb = \"x\"\n", &[])
        .map(|_| ())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("/etc/beacon/beacon.toml: `eventhub"),
        "{text}"
    );
    assert!(text.contains("unknown field `hubb`"), "{text}");
}

#[test]
fn wrong_type_from_env_names_the_variable_not_the_value() {
    let err = load("", &[("BEACON_INGEST_QUEUE", "lots")])
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("BEACON_INGEST_QUEUE"), "{err}");
    assert!(err.contains("ingest.queue"), "{err}");
    assert!(!err.contains("lots"), "{err}");
}

#[test]
fn unknown_variable_is_an_error() {
    let err = load("", &[("BEACON_EVENTHUB_CONECTION_STRING", "x")])
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownVariable { .. }));
}

#[test]
fn secret_in_a_numeric_key_is_not_echoed() {
    let text = format!("[ingest]\nqueue = \"{KEY}\"\n");
    let err = load(&text, &[]).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("ingest.queue"), "{err}");
    assert!(!err.contains(KEY), "{err}");
}

#[test]
fn syntax_error_gives_line_and_no_snippet() {
    let text = format!("[eventhub]\nconnection_string = \"{KEY}\nhub = 1\n");
    let err = load(&text, &[]).map(|_| ()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
}

#[test]
fn malformed_connection_string_never_shows_the_key() {
    let bad = format!("Endpoint=https://contoso.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey={KEY}");
    let text = format!("[eventhub]\nconnection_string = \"{bad}\"\n");
    let err = load(&text, &[]).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("eventhub.connection_string"), "{err}");
    assert!(err.contains("sb://"), "{err}");
    assert!(!err.contains(KEY), "{err}");
}

#[test]
fn hub_mismatch_is_reported() {
    let text = format!(
        "[eventhub]\nconnection_string = \"{}\"\nhub = \"other\"\n",
        cs()
    );
    let err = load(&text, &[]).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("'teams'") && err.contains("'other'"), "{err}");
}

#[test]
fn plain_http_only_on_loopback() {
    assert!(load("[graph]\ngraph_url = \"http://127.0.0.1:9/v1.0\"\n", &[]).is_ok());
    let err = load("[graph]\ngraph_url = \"http://graph.example\"\n", &[])
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("graph.graph_url"), "{err}");
}

#[test]
fn secret_expiry_warns_thirty_days_ahead() {
    let config = load(
        "[graph]\nclient_secret = \"s\"\nclient_secret_expires = 2027-01-31\n",
        &[],
    )
    .map_err(|e| e.to_string());
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
    assert_eq!(config.secret_expiry_warning(day("2026-12-31")), None);
    assert!(config
        .secret_expiry_warning(day("2027-01-01"))
        .is_some_and(|w| w.contains("30 days")));
    assert!(config
        .secret_expiry_warning(day("2027-02-01"))
        .is_some_and(|w| w.contains("expired")));
}

#[test]
fn default_group_is_per_device() {
    let config = Config::default();
    assert_eq!(config.consumer_group("desk-1"), "beacon-desk-1");
}
