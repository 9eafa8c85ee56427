//! A tracing layer that writes each event to journald over its native protocol
//! (systemd.journal-fields(7), "Native Journal Protocol"): one datagram per event to the
//! journal's socket, `KEY=value` lines (a value with a newline length-prefixed).
//!
//! Each entry carries `PRIORITY` (error 3, warn 4, info 6, debug and trace 7),
//! `SYSLOG_IDENTIFIER=beacon`, `CODE_FILE`, `CODE_LINE`, `TARGET`, every field of the event
//! as an upper-case journal field (`error` → `ERROR`, `setup_code` → `SETUP_CODE`), and a
//! `MESSAGE` that reads as the plain log line does (`target: message key=value …`), so
//! `journalctl -u beacon` shows what the terminal shows. (tracing-journald sends the message
//! alone, which would hide every field — the setup code, the error — from that view.)
//! An entry the socket refuses is written to stderr instead: nothing is dropped silently.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// journald's socket for native entries.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// See the module docs.
pub struct JournaldLayer {
    socket: UnixDatagram,
    path: PathBuf,
}

impl JournaldLayer {
    /// A layer sending to the journal socket at `path`; fails when nothing listens there.
    pub fn connect(path: impl AsRef<Path>) -> std::io::Result<JournaldLayer> {
        let socket = UnixDatagram::unbound()?;
        let path = path.as_ref().to_path_buf();
        // An empty datagram, which journald ignores: proves the socket is there.
        socket.send_to(&[], &path)?;
        Ok(JournaldLayer { socket, path })
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JournaldLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = format!("{}: {}", meta.target(), fields.message);
        for (name, value) in &fields.others {
            let _ = write!(line, " {name}={value}");
        }
        let mut entry = Vec::with_capacity(256 + line.len());
        put(&mut entry, "PRIORITY", priority(*meta.level()));
        put(&mut entry, "SYSLOG_IDENTIFIER", "beacon");
        put(&mut entry, "MESSAGE", &line);
        put(&mut entry, "TARGET", meta.target());
        if let Some(file) = meta.file() {
            put(&mut entry, "CODE_FILE", file);
        }
        if let Some(number) = meta.line() {
            put(&mut entry, "CODE_LINE", &number.to_string());
        }
        for (name, value) in &fields.others {
            if let Some(key) = journal_key(name) {
                put(&mut entry, &key, value);
            }
        }
        if self.socket.send_to(&entry, &self.path).is_err() {
            let _ = writeln!(std::io::stderr(), "{} {line}", meta.level());
        }
    }
}

/// syslog priority of a tracing level.
pub fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        Level::DEBUG | Level::TRACE => "7",
    }
}

/// A field name as a journal key: upper case, `[A-Z0-9_]`, not starting with `_` or a digit
/// (those are the journal's own); `None` when nothing is left or it is one of ours.
pub fn journal_key(name: &str) -> Option<String> {
    let key: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    let key = key.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit());
    let reserved = [
        "MESSAGE",
        "PRIORITY",
        "SYSLOG_IDENTIFIER",
        "TARGET",
        "CODE_FILE",
        "CODE_LINE",
    ];
    (!key.is_empty() && !reserved.contains(&key)).then(|| key.chars().take(64).collect())
}

/// Appends `key=value` in the native protocol's form.
fn put(entry: &mut Vec<u8>, key: &str, value: &str) {
    entry.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        entry.push(b'\n');
        entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        entry.push(b'=');
    }
    entry.extend_from_slice(value.as_bytes());
    entry.push(b'\n');
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.others.push((field.name().to_string(), text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// The fields of one native-protocol datagram.
    fn parse(mut datagram: &[u8]) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        while let Some(end) = datagram.iter().position(|b| *b == b'\n' || *b == b'=') {
            let key = String::from_utf8_lossy(&datagram[..end]).to_string();
            if datagram[end] == b'=' {
                let rest = &datagram[end + 1..];
                let stop = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
                fields.push((key, String::from_utf8_lossy(&rest[..stop]).to_string()));
                datagram = &rest[(stop + 1).min(rest.len())..];
            } else {
                let mut size = [0u8; 8];
                size.copy_from_slice(&datagram[end + 1..end + 9]);
                let size = u64::from_le_bytes(size) as usize;
                let value = &datagram[end + 9..end + 9 + size];
                fields.push((key, String::from_utf8_lossy(value).to_string()));
                datagram = &datagram[end + 9 + size + 1..];
            }
        }
        fields
    }

    #[test]
    fn an_error_reaches_the_socket_with_its_priority_fields_and_readable_message() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("journal.socket");
        let journal = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let layer = JournaldLayer::connect(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut buffer = vec![0u8; 65536];
        let _ = journal.recv(&mut buffer); // the empty probe
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                error = "line one\nline two",
                attempts = 3,
                "link: cannot connect"
            );
            tracing::info!("console listening");
        });
        let size = journal.recv(&mut buffer).unwrap_or_else(|e| panic!("{e}"));
        let fields = parse(&buffer[..size]);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{key} missing in {fields:?}"))
        };
        assert_eq!(get("PRIORITY"), "3");
        assert_eq!(get("SYSLOG_IDENTIFIER"), "beacon");
        assert_eq!(get("ERROR"), "line one\nline two", "multi-line value kept");
        assert_eq!(get("ATTEMPTS"), "3");
        assert!(get("MESSAGE").contains("link: cannot connect"));
        assert!(
            get("MESSAGE").contains("attempts=3"),
            "fields in the message"
        );
        assert!(get("CODE_FILE").ends_with("journald.rs"));
        assert!(!get("MESSAGE").contains("20"), "no timestamp of ours");
        let size = journal.recv(&mut buffer).unwrap_or_else(|e| panic!("{e}"));
        let fields = parse(&buffer[..size]);
        assert!(
            fields.contains(&("PRIORITY".into(), "6".into())),
            "{fields:?}"
        );
    }

    #[test]
    fn field_names_become_journal_keys() {
        assert_eq!(journal_key("setup_code").as_deref(), Some("SETUP_CODE"));
        assert_eq!(journal_key("client.addr").as_deref(), Some("CLIENT_ADDR"));
        assert_eq!(journal_key("_private").as_deref(), Some("PRIVATE"));
        assert_eq!(journal_key("message"), None);
        assert_eq!(
            journal_key("priority"),
            None,
            "cannot override the priority"
        );
        assert_eq!(journal_key("__"), None);
    }
}
