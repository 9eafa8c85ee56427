//! Parses an Event Hubs connection string into what a Kafka client needs.
//!
//! `Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=<policy>;SharedAccessKey=<key>[;EntityPath=<hub>]`
//! becomes bootstrap `<ns>.servicebus.windows.net:9093`, topic `<hub>`, and SASL PLAIN with
//! username `$ConnectionString` and the whole string as password (graph-teams.md F.2). Errors
//! say which part is wrong and never contain the key.

use crate::secret::Secret;

/// The Kafka endpoint of one event hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHubTarget {
    /// `<ns>.servicebus.windows.net`
    pub namespace_host: String,
    /// `host:port` the client connects to (`<ns>:9093` unless overridden).
    pub bootstrap: String,
    /// The hub (= topic) named in the string, or filled in from configuration.
    pub entity_path: Option<String>,
    /// Name of the shared access policy (not secret; shown in status).
    pub key_name: String,
    /// The whole connection string: the SASL PLAIN password.
    pub password: Secret,
}

/// SASL PLAIN username Event Hubs expects with a connection string as password.
pub const SASL_USERNAME: &str = "$ConnectionString";

/// What is wrong with a connection string. No variant carries the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("no Event Hub connection string is configured (eventhub.connection_string or BEACON_EVENTHUB_CONNECTION_STRING)")]
    NotConfigured,
    #[error("the connection string is empty")]
    Empty,
    #[error("part {index} of the connection string is not Name=Value")]
    NotAPair { index: usize },
    #[error("the connection string names '{name}' twice")]
    Duplicate { name: String },
    #[error("the connection string has an unknown part '{name}'")]
    UnknownPart { name: String },
    #[error("the connection string has no {name}")]
    Missing { name: &'static str },
    #[error("the connection string's {name} is empty")]
    EmptyValue { name: &'static str },
    #[error("Endpoint must look like sb://<namespace>.servicebus.windows.net/")]
    BadEndpoint,
    #[error("SharedAccessSignature tokens are not accepted by the Kafka endpoint; use a SharedAccessKeyName/SharedAccessKey connection string")]
    SasToken,
    #[error(
        "the connection string has no EntityPath and eventhub.hub is not set: which event hub?"
    )]
    NoHub,
}

impl EventHubTarget {
    /// Parses a connection string. Part names are case-insensitive, as in Azure's SDKs.
    pub fn parse(connection_string: &Secret) -> Result<EventHubTarget, ConnectionError> {
        let text = connection_string.expose().trim();
        if text.is_empty() {
            return Err(ConnectionError::Empty);
        }
        let mut endpoint = None;
        let mut key_name = None;
        let mut key = None;
        let mut entity_path = None;
        for (index, part) in text.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part
                .split_once('=')
                .ok_or(ConnectionError::NotAPair { index: index + 1 })?;
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => &mut endpoint,
                "sharedaccesskeyname" => &mut key_name,
                "sharedaccesskey" => &mut key,
                "entitypath" => &mut entity_path,
                "sharedaccesssignature" => return Err(ConnectionError::SasToken),
                _ => {
                    return Err(ConnectionError::UnknownPart {
                        name: safe_name(name),
                    })
                }
            };
            if slot.is_some() {
                return Err(ConnectionError::Duplicate {
                    name: name.trim().to_string(),
                });
            }
            *slot = Some(value.trim());
        }
        let endpoint = required(endpoint, "Endpoint")?;
        let key_name = required(key_name, "SharedAccessKeyName")?;
        required(key, "SharedAccessKey")?;
        let namespace_host = endpoint_host(endpoint)?;
        let entity_path = match entity_path {
            Some("") => return Err(ConnectionError::EmptyValue { name: "EntityPath" }),
            other => other.map(str::to_string),
        };
        Ok(EventHubTarget {
            bootstrap: format!("{namespace_host}:9093"),
            namespace_host,
            entity_path,
            key_name: key_name.to_string(),
            password: Secret::new(text),
        })
    }

    /// The Kafka topic (the event hub name). Empty only if the caller skipped [`crate::config::Config::eventhub_target`].
    pub fn topic(&self) -> &str {
        self.entity_path.as_deref().unwrap_or("")
    }

    /// Namespace name: the first label of the host.
    pub fn namespace(&self) -> &str {
        self.namespace_host
            .split('.')
            .next()
            .unwrap_or(&self.namespace_host)
    }
}

fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, ConnectionError> {
    match value {
        None => Err(ConnectionError::Missing { name }),
        Some("") => Err(ConnectionError::EmptyValue { name }),
        Some(v) => Ok(v),
    }
}

/// `sb://host/` → `host`.
fn endpoint_host(endpoint: &str) -> Result<String, ConnectionError> {
    let rest = endpoint
        .strip_prefix("sb://")
        .or_else(|| endpoint.strip_prefix("SB://"))
        .ok_or(ConnectionError::BadEndpoint)?;
    let host = rest.trim_end_matches('/');
    let valid = !host.is_empty()
        && !host.contains('/')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'));
    if valid {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(ConnectionError::BadEndpoint)
    }
}

/// An unknown part's name, cut short and limited to harmless characters: a string pasted in
/// the wrong order could otherwise put key material in the "name" position.
fn safe_name(name: &str) -> String {
    let name = name.trim();
    if name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphabetic()) {
        name.to_string()
    } else {
        "(unreadable name)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AbCdEf0123456789/+abcdefghijklmnopqrstuvwxyzABC=";

    fn parse(s: &str) -> Result<EventHubTarget, ConnectionError> {
        EventHubTarget::parse(&Secret::new(s))
    }

    #[test]
    fn hub_level_string() {
        let s = format!("Endpoint=sb://contoso-eh.servicebus.windows.net/;SharedAccessKeyName=beacon-listen;SharedAccessKey={KEY};EntityPath=teams-emergency");
        let t = parse(&s).map_err(|e| e.to_string());
        let t = match t {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.bootstrap, "contoso-eh.servicebus.windows.net:9093");
        assert_eq!(t.topic(), "teams-emergency");
        assert_eq!(t.namespace(), "contoso-eh");
        assert_eq!(t.key_name, "beacon-listen");
        assert_eq!(t.password.expose(), s);
    }

    #[test]
    fn namespace_level_string_has_no_topic_and_parts_are_case_insensitive() {
        let s = format!(
            "endpoint=sb://ns.servicebus.windows.net/;sharedaccesskeyname=p;sharedaccesskey={KEY};"
        );
        let t = parse(&s).map_err(|e| e.to_string());
        assert_eq!(t.map(|t| t.entity_path), Ok(None));
    }

    #[test]
    fn errors_are_precise_and_never_contain_the_key() {
        let cases: Vec<(String, ConnectionError)> = vec![
            (String::new(), ConnectionError::Empty),
            (
                format!("Endpoint=https://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey={KEY}"),
                ConnectionError::BadEndpoint,
            ),
            (
                format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey={KEY}"),
                ConnectionError::Missing { name: "SharedAccessKeyName" },
            ),
            (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p".into(),
                ConnectionError::Missing { name: "SharedAccessKey" },
            ),
            (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey=".into(),
                ConnectionError::EmptyValue { name: "SharedAccessKey" },
            ),
            (
                format!(
                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;{}",
                    KEY.trim_end_matches('=')
                ),
                ConnectionError::NotAPair { index: 3 },
            ),
            (
                format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey={KEY};SharedAccessKey={KEY}"),
                ConnectionError::Duplicate { name: "SharedAccessKey".into() },
            ),
            (
                format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr={KEY}"),
                ConnectionError::SasToken,
            ),
            (
                format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey={KEY};{KEY}=x"),
                ConnectionError::UnknownPart { name: "(unreadable name)".into() },
            ),
        ];
        for (input, expected) in cases {
            let got = parse(&input);
            assert_eq!(got.as_ref().err(), Some(&expected), "input {input:?}");
            let text = expected.to_string();
            assert!(!text.contains(KEY) && !text.contains("AbCdEf"), "{text}");
        }
    }

    #[test]
    fn debug_of_a_target_hides_the_password() {
        let s = format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey={KEY}"
        );
        let t = parse(&s).map_err(|e| e.to_string());
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(KEY), "{dbg}");
    }
}
