//! The one shape of a configuration error: where (the file or the environment variable), which
//! key, what is wrong — never the value.

use std::path::PathBuf;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    /// A configuration built in code (`beacon demo`, tests), not read from a file.
    Code,
    /// A systemd credential of that name (`$CREDENTIALS_DIRECTORY`).
    Credential(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Code => write!(f, "built-in configuration"),
            Origin::Credential(name) => write!(f, "credential {name}"),
        }
    }
}

/// A configuration problem. The text names where and which key; it never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the file: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}:{line}:{column}: not valid TOML: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{origin}: `{key}`: {reason}")]
    Invalid {
        origin: Origin,
        key: String,
        reason: String,
    },
    #[error("environment variable {var}: names no setting (BEACON_<SECTION>_<KEY>, e.g. BEACON_EVENTHUB_HUB)")]
    UnknownVariable { var: String },
    #[error(
        "credential {name}: names no setting (<section>.<key>, e.g. eventhub.connection_string)"
    )]
    UnknownCredential { name: String },
}

/// Drops the offending value from a serde message ("invalid type: string \"x\", expected u32"
/// becomes "invalid type, expected u32"), so a secret typed into the wrong key is not echoed.
pub(super) fn without_values(message: &str) -> String {
    for prefix in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(prefix) {
            if let Some(pos) = message.find(", expected") {
                return format!("{prefix}{}", &message[pos..]);
            }
            return prefix.to_string();
        }
    }
    message.to_string()
}
