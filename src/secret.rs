//! `Secret`: a string that must never reach a log line, an error, an API response or HTML.
//!
//! Client secrets, refresh tokens, the Event Hub connection string, SMTP/SMS credentials and
//! subscription `clientState` values are held in this type. `Debug` prints `Secret(***)`, there
//! is no `Display`, and serialising writes `"***"`: the only way to the value is the explicit,
//! greppable [`Secret::expose`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string. See the module docs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a SASL password, a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let secret = Secret::new("SharedAccessKey=abc123");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
        let json = serde_json::to_string(&secret).unwrap_or_default();
        assert_eq!(json, "\"***\"");
        assert_eq!(secret.expose(), "SharedAccessKey=abc123");
    }
}
