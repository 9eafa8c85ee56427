//! The command parser (pure): what may be published to `…/command/<name>`, and why anything
//! else is rejected. The publisher answers every command on `…/command/result` and logs and
//! counts rejections; nothing here touches the alarm.
//!
//! Accepted (payloads at most [`MAX_PAYLOAD`] bytes of UTF-8; words case-insensitive, spaces
//! around them ignored):
//!
//! | topic | payload | does |
//! |---|---|---|
//! | `…/command/acknowledge` | empty, `PRESS`, `acknowledge`, or `{"who":"name"}` | acknowledges every active call |
//! | `…/command/test` | empty, `PRESS`, `test`, or `{"who":"name"}` | starts a lamp test |
//! | `…/command/confirm` | empty, `PRESS`, `confirm`, or `{"who":"name"}` | makes every active possible emergency the full alarm |
//! | `…/command/siren` | `OFF` or `{"state":"OFF"}` | acknowledges (Home Assistant's siren control) |
//!
//! `who` (1 to [`MAX_WHO`] characters, no control characters) is recorded in the audit log as
//! the person who acted. `ON` to the siren is rejected: only an emergency call raises the
//! alarm.

use serde::Deserialize;

/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 256;
/// Longest `who`.
pub const MAX_WHO: usize = 64;

/// A command that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Acknowledge every active call.
    Acknowledge { who: Option<String> },
    /// Start a lamp test (every output on for a few seconds).
    LampTest { who: Option<String> },
    /// Make every active possible emergency the full alarm.
    Confirm { who: Option<String> },
}

impl Command {
    /// The name used in results and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Acknowledge { .. } => "acknowledge",
            Command::LampTest { .. } => "test",
            Command::Confirm { .. } => "confirm",
        }
    }
}

/// Why a command was not carried out. The text never repeats the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("commands are disabled on this appliance (mqtt.commands_enabled = false)")]
    Disabled,
    #[error("a retained command is never carried out (publish it without the retain flag)")]
    Retained,
    #[error("unknown command '{0}' (known: acknowledge, test, confirm, siren)")]
    Unknown(String),
    #[error("payload of {0} bytes is larger than the {MAX_PAYLOAD} accepted")]
    TooLarge(usize),
    #[error("payload is not UTF-8 text")]
    NotText,
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    #[error(
        "the alarm is raised only by an emergency call; the siren accepts only OFF (acknowledge)"
    )]
    SirenOn,
}

/// A JSON payload of the acknowledge and test commands.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    who: Option<String>,
    /// Optional; when present it must name the topic's command.
    #[serde(default)]
    command: Option<String>,
}

/// A JSON payload of the siren command (Home Assistant's default without templates).
#[derive(Deserialize)]
struct SirenBody {
    state: String,
}

/// Parses `payload` published to `…/command/<name>`.
pub fn parse(name: &str, payload: &[u8]) -> Result<Command, Rejection> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Rejection::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Rejection::NotText)?;
    let text = text.trim();
    match name {
        "acknowledge" => simple(name, text).map(|who| Command::Acknowledge { who }),
        "test" => simple(name, text).map(|who| Command::LampTest { who }),
        "confirm" => simple(name, text).map(|who| Command::Confirm { who }),
        "siren" => siren(text),
        other => Err(Rejection::Unknown(printable(other))),
    }
}

/// Empty, `PRESS`, the command's name, or a JSON body; returns `who`.
fn simple(name: &str, text: &str) -> Result<Option<String>, Rejection> {
    if text.is_empty() || text.eq_ignore_ascii_case("press") || text.eq_ignore_ascii_case(name) {
        return Ok(None);
    }
    if !text.starts_with('{') {
        return Err(Rejection::Malformed(
            "expected empty, PRESS, the command's name or a JSON object like {\"who\":\"name\"}",
        ));
    }
    let body: Body = serde_json::from_str(text).map_err(|_| {
        Rejection::Malformed("expected a JSON object with only \"who\" (and \"command\")")
    })?;
    if let Some(command) = &body.command {
        if !command.eq_ignore_ascii_case(name) {
            return Err(Rejection::Malformed(
                "\"command\" names another command than the topic",
            ));
        }
    }
    match body.who {
        None => Ok(None),
        Some(who) => {
            let who = who.trim();
            if who.is_empty() || who.chars().count() > MAX_WHO || who.chars().any(char::is_control)
            {
                Err(Rejection::Malformed(
                    "\"who\" must be 1 to 64 characters without control characters",
                ))
            } else {
                Ok(Some(who.to_string()))
            }
        }
    }
}

fn siren(text: &str) -> Result<Command, Rejection> {
    let state = if text.starts_with('{') {
        serde_json::from_str::<SirenBody>(text)
            .map_err(|_| Rejection::Malformed("expected OFF or {\"state\":\"OFF\"}"))?
            .state
    } else {
        text.to_string()
    };
    if state.eq_ignore_ascii_case("off") {
        Ok(Command::Acknowledge { who: None })
    } else if state.eq_ignore_ascii_case("on") {
        Err(Rejection::SirenOn)
    } else {
        Err(Rejection::Malformed("expected OFF or {\"state\":\"OFF\"}"))
    }
}

/// At most 32 characters of `name`, control characters replaced, for a rejection message.
fn printable(name: &str) -> String {
    name.chars()
        .take(32)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_are_accepted() {
        for payload in ["", "PRESS", "press", " acknowledge ", "ACKNOWLEDGE", "{}"] {
            assert_eq!(
                parse("acknowledge", payload.as_bytes()),
                Ok(Command::Acknowledge { who: None }),
                "{payload:?}"
            );
        }
        assert_eq!(
            parse("acknowledge", br#"{"who":"Guard Desk 2"}"#),
            Ok(Command::Acknowledge {
                who: Some("Guard Desk 2".into())
            })
        );
        assert_eq!(
            parse("acknowledge", br#"{"command":"acknowledge","who":"kim"}"#),
            Ok(Command::Acknowledge {
                who: Some("kim".into())
            })
        );
        assert_eq!(parse("test", b"PRESS"), Ok(Command::LampTest { who: None }));
        assert_eq!(
            parse("siren", b"OFF"),
            Ok(Command::Acknowledge { who: None })
        );
        assert_eq!(
            parse("siren", br#"{"state":"OFF"}"#),
            Ok(Command::Acknowledge { who: None })
        );
    }

    #[test]
    fn anything_else_is_rejected_with_a_reason() {
        assert_eq!(
            parse("reboot", b""),
            Err(Rejection::Unknown("reboot".into()))
        );
        assert_eq!(parse("acknowledge", &[0xff, 0xfe]), Err(Rejection::NotText));
        assert_eq!(
            parse("acknowledge", &[b' '; MAX_PAYLOAD + 1]),
            Err(Rejection::TooLarge(MAX_PAYLOAD + 1))
        );
        assert_eq!(parse("siren", b"ON"), Err(Rejection::SirenOn));
        assert_eq!(
            parse("siren", br#"{"state":"ON","tone":"fire"}"#),
            Err(Rejection::SirenOn)
        );
        for (name, payload) in [
            ("acknowledge", "yes please"),
            ("acknowledge", "{\"who\":"),
            ("acknowledge", r#"{"who":"kim","extra":1}"#),
            ("acknowledge", r#"{"who":""}"#),
            ("acknowledge", r#"{"who":"a\nb"}"#),
            ("acknowledge", r#"{"who":42}"#),
            ("acknowledge", r#"{"command":"test"}"#),
            ("acknowledge", "[1,2]"),
            ("test", "acknowledge"),
            ("siren", "maybe"),
        ] {
            assert!(
                matches!(
                    parse(name, payload.as_bytes()),
                    Err(Rejection::Malformed(_))
                ),
                "{name} {payload:?}"
            );
        }
        let long_who = format!(r#"{{"who":"{}"}}"#, "x".repeat(MAX_WHO + 1));
        assert!(matches!(
            parse("acknowledge", long_who.as_bytes()),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn a_rejection_never_repeats_the_payload() {
        let secretish = r#"{"who":"kim","password":"hunter2"}"#;
        let reason = parse("acknowledge", secretish.as_bytes())
            .err()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(!reason.is_empty());
        assert!(!reason.contains("hunter2"), "{reason}");
        let unknown = parse(&"n\u{7}".repeat(40), b"")
            .err()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(!unknown.contains('\u{7}'));
        assert!(unknown.len() < 120, "{unknown}");
    }
}
