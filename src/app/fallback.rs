//! Which configuration `beacon run` starts with when the file does not load: never a restart
//! loop that nobody sees, always an appliance that alarms and says what is wrong.
//!
//! * The file loads (unknown keys left out, see [`Config::load_tolerant`]): it is used, and a
//!   copy of its text is kept in the data directory as the last good configuration
//!   (`last-good.toml`, written durably). Ignored keys are a trouble naming them.
//! * It does not load: the last good configuration is used (with the process's `BEACON_*`
//!   variables, or without them when they are what is wrong), and the error is a trouble —
//!   on the display, the console, MQTT when the last good configuration has it, and the
//!   trouble output.
//! * There is no last good one either: the safe defaults — the alarm, the display and the
//!   console on its usual address (HTTPS, port 443), no cloud link — and the error as a trouble.
//!
//! The data directory of a file that does not load is read from it when its TOML is readable,
//! else from `BEACON_DATA_DIR`, else the default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{beacon_env, credentials, Config, ConfigError};
use crate::store::keepsake::write_durably;

/// The last good configuration's file name in the data directory.
pub const LAST_GOOD: &str = "last-good.toml";
/// The trouble component of a configuration problem.
pub const CONFIG_COMPONENT: &str = "configuration";

/// The configuration to start with, and the troubles to raise about it.
#[derive(Debug)]
pub struct Chosen {
    pub config: Config,
    /// (component, words).
    pub troubles: Vec<(String, String)>,
    /// Which of the three it is.
    pub source: Source,
    /// The file's text when it loaded: to keep as the last good configuration once the
    /// appliance has started on it ([`keep_last_good`]).
    pub good_text: Option<String>,
}

/// Where the configuration in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The file, as asked.
    File,
    /// The last good copy (the file did not load).
    LastGood(PathBuf),
    /// The built-in safe defaults (the file did not load, and there was no good copy).
    SafeDefaults,
}

/// Loads `path` for `beacon run` (see the module doc). Never fails.
pub fn choose(path: &Path) -> Chosen {
    let env = beacon_env();
    // Unreadable credentials are an error like an unreadable file: fall back without them.
    let (credentials, credentials_error) = match credentials::from_environment() {
        Ok(found) => (found, None),
        Err(e) => (BTreeMap::new(), Some(e)),
    };
    let text = std::fs::read_to_string(path);
    let loaded = match (&text, credentials_error) {
        (_, Some(e)) => Err(e),
        (Ok(text), None) => Config::from_parts_tolerant(path, text, &env, &credentials),
        (Err(e), None) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.kind().to_string(),
        }),
    };
    match loaded {
        Ok(loaded) => {
            let mut troubles = Vec::new();
            if !loaded.ignored.is_empty() {
                let what: Vec<String> = loaded.ignored.iter().map(|e| e.to_string()).collect();
                tracing::warn!(ignored = ?what, "configuration keys that name no setting were ignored");
                troubles.push((
                    CONFIG_COMPONENT.to_string(),
                    format!(
                        "unknown settings ignored (check the spelling with beacon check-config): {}",
                        what.join("; ")
                    ),
                ));
            }
            Chosen {
                config: loaded.config,
                troubles,
                source: Source::File,
                good_text: text.ok(),
            }
        }
        Err(error) => {
            tracing::error!(%error, "the configuration does not load");
            let data_dir = text
                .as_deref()
                .ok()
                .and_then(data_dir_of)
                .or_else(|| env.get("BEACON_DATA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| Config::default().data_dir);
            fall_back(&error, &data_dir, &env, &credentials)
        }
    }
}

/// The last good configuration in `data_dir`, or the safe defaults.
fn fall_back(
    error: &ConfigError,
    data_dir: &Path,
    env: &BTreeMap<String, String>,
    credentials: &BTreeMap<String, String>,
) -> Chosen {
    let last = data_dir.join(LAST_GOOD);
    if let Ok(text) = std::fs::read_to_string(&last) {
        let none = BTreeMap::new();
        let with_overrides = Config::from_parts_tolerant(&last, &text, env, credentials);
        let loaded =
            with_overrides.or_else(|_| Config::from_parts_tolerant(&last, &text, &none, &none));
        if let Ok(loaded) = loaded {
            let saved = std::fs::metadata(&last)
                .and_then(|m| m.modified())
                .map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .format(" (saved %Y-%m-%d %H:%M UTC)")
                        .to_string()
                })
                .unwrap_or_default();
            tracing::warn!(path = %last.display(), "running on the last good configuration");
            return Chosen {
                config: loaded.config,
                troubles: vec![(
                    CONFIG_COMPONENT.to_string(),
                    format!(
                        "the configuration does not load; running on the last good one{saved}: \
                         {error} — fix it and restart"
                    ),
                )],
                source: Source::LastGood(last),
                good_text: None,
            };
        }
    }
    tracing::warn!("no last good configuration: running on the safe defaults");
    Chosen {
        config: Config {
            data_dir: data_dir.to_path_buf(),
            web: Some(crate::web::WebConfig::default()),
            ..Config::default()
        },
        troubles: vec![(
            CONFIG_COMPONENT.to_string(),
            format!(
                "the configuration does not load; running on the safe defaults (alarm, display, \
                 console; no link to Teams, so no calls are received): {error} — fix it and \
                 restart"
            ),
        )],
        source: Source::SafeDefaults,
        good_text: None,
    }
}

/// `data_dir` from a file whose TOML reads even though the configuration does not load.
fn data_dir_of(text: &str) -> Option<PathBuf> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("data_dir")?.as_str().map(PathBuf::from)
}

/// Keeps `text` as the last good configuration (0600 in the 0700 data directory the store
/// made: it may hold secrets, like the store beside it). A failure is logged: it must not
/// stop the start.
pub fn keep_last_good(data_dir: &Path, text: &str) {
    let path = data_dir.join(LAST_GOOD);
    if std::fs::read_to_string(&path).is_ok_and(|kept| kept == text) {
        return;
    }
    if let Err(e) = write_durably(&path, text.as_bytes()) {
        tracing::warn!(error = %e, path = %path.display(), "cannot keep the last good configuration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_good_file_is_used_and_kept_and_a_bad_one_falls_back_to_it() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let good = format!(
            "data_dir = \"{}\"\n[alarm]\nsiren_auto_silence_minutes = 7\n",
            data.display()
        );
        let path = write(dir.path(), "beacon.toml", &good);
        let chosen = choose(&path);
        assert_eq!(chosen.source, Source::File);
        assert!(chosen.troubles.is_empty());
        keep_last_good(&data, chosen.good_text.as_deref().expect("loaded"));
        assert_eq!(
            std::fs::read_to_string(data.join(LAST_GOOD)).expect("kept"),
            good
        );

        // A typo in a value: the last good configuration, and the error as a trouble.
        let bad = good.replace("= 7", "= \"seven\"");
        std::fs::write(&path, bad).expect("write");
        let chosen = choose(&path);
        assert_eq!(chosen.source, Source::LastGood(data.join(LAST_GOOD)));
        assert_eq!(chosen.config.alarm.siren_auto_silence_minutes, Some(7));
        let (component, words) = &chosen.troubles[0];
        assert_eq!(component, CONFIG_COMPONENT);
        assert!(words.contains("siren_auto_silence_minutes"), "{words}");
        assert!(
            words.starts_with("the configuration does not load; running on the last good one"),
            "{words}"
        );
        // The bad file did not replace the good copy.
        assert_eq!(
            std::fs::read_to_string(data.join(LAST_GOOD)).expect("kept"),
            good
        );
    }

    #[test]
    fn without_a_good_copy_the_safe_defaults_keep_the_console_and_say_why() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        let path = write(
            dir.path(),
            "beacon.toml",
            &format!("data_dir = \"{}\"\n[alarm\n", data.display()),
        );
        let chosen = choose(&path);
        assert_eq!(chosen.source, Source::SafeDefaults);
        assert!(chosen.config.web.is_some(), "the console runs");
        assert_eq!(
            chosen.config.data_dir,
            Config::default().data_dir,
            "unreadable TOML: the default place"
        );
        assert!(
            chosen.troubles[0].1.contains("not valid TOML"),
            "{:?}",
            chosen.troubles
        );
    }

    #[test]
    fn unknown_keys_are_left_out_and_named_in_a_trouble() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        let path = write(
            dir.path(),
            "beacon.toml",
            &format!(
                "data_dir = \"{}\"\nfuture_key = 1\n[alarm]\nsiren_auto_silence_minutes = 9\nsirne = 2\n",
                data.display()
            ),
        );
        let chosen = choose(&path);
        assert_eq!(chosen.source, Source::File);
        assert_eq!(chosen.config.alarm.siren_auto_silence_minutes, Some(9));
        assert_eq!(chosen.config.data_dir, data);
        let words = &chosen.troubles[0].1;
        assert!(
            words.contains("future_key") && words.contains("sirne"),
            "{words}"
        );
    }
}
