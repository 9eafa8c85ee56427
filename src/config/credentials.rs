//! Secrets from systemd credentials: a file per setting in `$CREDENTIALS_DIRECTORY`, named by
//! the setting's key (`eventhub.connection_string`, `graph.client_secret`,
//! `notify.smtp_password`, `mqtt.password`, …), put there by the unit's `LoadCredential=` (or
//! `LoadCredentialEncrypted=`). systemd.exec(5) advises against secrets in environment
//! variables (they are inherited and visible to the service manager's clients); credentials are
//! readable only by the service, on a non-swappable file system.
//!
//! The name may carry a `beacon_` or `beacon.` prefix: the shipped unit loads the directory
//! `/etc/beacon/credentials/` (root only, 0700) with `LoadCredential=beacon:/etc/beacon/credentials`,
//! and systemd names each file `beacon_<file>` (`beacon_eventhub.connection_string`); an empty
//! directory is no credentials, not a failed start as a missing `LoadCredential=` file would be.
//! `ImportCredential=beacon.*` (systemd 254 and later) brings `beacon.<key>` from the system's
//! credential store the same way.
//!
//! A credential overrides the file; a `BEACON_*` variable still overrides both. One that names
//! no setting is an error like an unknown variable. Values are used as they are, without a
//! trailing newline.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::ConfigError;
use super::Config;

/// The largest credential read (a connection string is a few hundred bytes).
const MAX_BYTES: u64 = 64 * 1024;

/// The credentials in the directory `$CREDENTIALS_DIRECTORY` names; none when it is unset.
pub fn from_environment() -> Result<BTreeMap<String, String>, ConfigError> {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => read_dir(Path::new(&dir)),
        None => Ok(BTreeMap::new()),
    }
}

/// Every file in `dir` as name → content (trailing newline removed).
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let unreadable = |reason: String| ConfigError::Read {
        path: dir.to_path_buf(),
        reason,
    };
    let mut found = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(e.kind().to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(e.kind().to_string()))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let read_error = |reason: String| ConfigError::Read {
            path: path.clone(),
            reason,
        };
        if entry.metadata().map(|m| m.len()).unwrap_or(0) > MAX_BYTES {
            return Err(read_error(format!("larger than {MAX_BYTES} bytes")));
        }
        let bytes = std::fs::read(&path).map_err(|e| read_error(e.kind().to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| read_error("not UTF-8".into()))?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        found.insert(name, value.to_string());
    }
    Ok(found)
}

/// Writes each credential into the table at its key. Returns key → credential name.
pub(super) fn apply(
    table: &mut toml::Table,
    credentials: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let shape = serde_json::to_value(Config::default()).unwrap_or(serde_json::Value::Null);
    let mut applied = BTreeMap::new();
    for (name, value) in credentials {
        let unknown = || ConfigError::UnknownCredential { name: name.clone() };
        let setting = name
            .strip_prefix("beacon_")
            .or_else(|| name.strip_prefix("beacon."))
            .unwrap_or(name);
        let (section, key) = setting.split_once('.').ok_or_else(unknown)?;
        let known = shape
            .get(section)
            .and_then(|s| s.as_object())
            .is_some_and(|s| s.contains_key(key));
        if !known {
            return Err(unknown());
        }
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            return Err(unknown());
        };
        inner.insert(key.to_string(), toml::Value::String(value.clone()));
        applied.insert(setting.to_string(), name.clone());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_settings_without_their_trailing_newline() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("mqtt.password"), "s3cret\n").expect("write");
        std::fs::write(dir.path().join("beacon.graph.client_secret"), "cs").expect("write");
        std::fs::write(dir.path().join("beacon_notify.smtp_password"), "pw").expect("write");
        let read = read_dir(dir.path()).expect("read");
        assert_eq!(read["mqtt.password"], "s3cret");
        let mut table = toml::Table::new();
        let applied = apply(&mut table, &read).expect("known");
        assert_eq!(applied["mqtt.password"], "mqtt.password");
        assert_eq!(applied["graph.client_secret"], "beacon.graph.client_secret");
        assert_eq!(table["mqtt"]["password"].as_str(), Some("s3cret"));
        assert_eq!(table["graph"]["client_secret"].as_str(), Some("cs"));
        assert_eq!(table["notify"]["smtp_password"].as_str(), Some("pw"));
    }

    #[test]
    fn a_credential_that_names_no_setting_is_an_error_that_names_it() {
        let creds = BTreeMap::from([("mqtt.pasword".to_string(), "x".to_string())]);
        let err = apply(&mut toml::Table::new(), &creds).expect_err("unknown");
        assert_eq!(
            err,
            ConfigError::UnknownCredential {
                name: "mqtt.pasword".into()
            }
        );
        assert!(!err.to_string().contains('x'));
    }
}
