//! Message templates: text with `{variable}` placeholders (`{{` and `}}` for literal braces),
//! parsed once when the configuration is loaded, so an unknown variable is a configuration
//! error at start and never a surprise at alarm time. Rendering is pure and cannot fail.
//!
//! A dozen lines of parser instead of a template crate: the texts need substitution only (no
//! loops, no conditionals — an empty value renders as "unknown"), and a crate would add
//! escaping rules and error paths at render time that an alarm message must not have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::message_kind::MessageKind;

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "test_notice",
    "possible_notice",
    "message",
    "event",
    "caller",
    "callback",
    "location",
    "map_link",
    "dial_string",
    "zone",
    "time",
    "who",
    "device",
    "reported_by",
];

/// `[notify.templates]`: subject (e-mail, PagerDuty summary) and body (e-mail, SMS, chat
/// messages) per kind of message. Test calls use the alarm texts with `{test_notice}`
/// set to "THIS IS A TEST. "; a possible emergency has its own texts, and `{possible_notice}`
/// ("POSSIBLE EMERGENCY — CHECK TEAMS. ") marks it in the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    pub alarm_subject: String,
    pub alarm_body: String,
    pub possible_subject: String,
    pub possible_body: String,
    pub escalation_subject: String,
    pub escalation_body: String,
    pub acknowledged_subject: String,
    pub acknowledged_body: String,
    pub cleared_subject: String,
    pub cleared_body: String,
}

/// Defaults carry what Kari's Law notification asks for — that an emergency call was
/// placed, by whom, from where, with a call-back number — plus the time and a map link.
impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig {
            alarm_subject: "{test_notice}EMERGENCY CALL {dial_string}: {caller} at {location}"
                .into(),
            alarm_body: "{test_notice}An emergency call was placed from Microsoft Teams.\n\n\
                Caller: {caller}\n\
                Call-back number: {callback}\n\
                Dialled: {dial_string}\n\
                Location: {location}\n\
                Map: {map_link}\n\
                Zone: {zone}\n\
                Time: {time}\n\
                Reported by: {reported_by}\n\n\
                Go to the caller and meet the responders. Acknowledge on Beacon {device}."
                .into(),
            possible_subject: "POSSIBLE EMERGENCY — CHECK TEAMS: message from {caller}".into(),
            possible_body: "A Teams message may report an emergency, but it is not the \
                emergency-call notification Beacon knows. Read it in Teams now.\n\n\
                Message: {message}\n\n\
                From: {caller}\n\
                Location: {location}\n\
                Time: {time}\n\n\
                If it is an emergency, confirm it on Beacon {device} (console, or hold the button) \
                to sound the full alarm; otherwise acknowledge it."
                .into(),
            escalation_subject: "NOT ACKNOWLEDGED: {possible_notice}emergency call {dial_string} \
                from {caller} at {location}"
                .into(),
            escalation_body: "{possible_notice}Nobody has acknowledged this emergency call on \
                Beacon {device}.\n\n\
                Caller: {caller}\n\
                Call-back number: {callback}\n\
                Dialled: {dial_string}\n\
                Location: {location}\n\
                Map: {map_link}\n\
                Zone: {zone}\n\
                Time of the call: {time}"
                .into(),
            acknowledged_subject: "{test_notice}Acknowledged: emergency call from {caller}".into(),
            acknowledged_body: "{test_notice}{who} acknowledged the emergency call from {caller} \
                ({location}, {time})."
                .into(),
            cleared_subject: "{test_notice}Closed: emergency call from {caller}".into(),
            cleared_body: "{test_notice}The emergency call from {caller} ({location}, {time}) \
                was closed by {who}."
                .into(),
        }
    }
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unknown { key: &'static str, variable: String },
    Unclosed { key: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

/// One parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`; `key` names it in errors.
    pub fn parse(key: &'static str, text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed { key }),
                        }
                    }
                    let name = name.trim();
                    let Some(known) = VARIABLES.iter().find(|v| **v == name) else {
                        return Err(TemplateError::Unknown {
                            key,
                            variable: name.chars().take(40).collect(),
                        });
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(known));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    /// The text with every variable replaced (a missing or empty value renders "unknown").
    pub fn render(&self, vars: &BTreeMap<&'static str, String>) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Var(name) => match vars.get(name) {
                    Some(value)
                        if !value.is_empty()
                            || matches!(*name, "test_notice" | "possible_notice") =>
                    {
                        value.as_str()
                    }
                    _ => "unknown",
                },
            })
            .collect()
    }
}

/// All templates, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    alarm: (Template, Template),
    possible: (Template, Template),
    escalation: (Template, Template),
    acknowledged: (Template, Template),
    cleared: (Template, Template),
}

impl Templates {
    pub fn compile(config: &TemplatesConfig) -> Result<Templates, TemplateError> {
        let pair = |s: &'static str, subject: &str, b: &'static str, body: &str| {
            Ok::<_, TemplateError>((Template::parse(s, subject)?, Template::parse(b, body)?))
        };
        Ok(Templates {
            alarm: pair(
                "alarm_subject",
                &config.alarm_subject,
                "alarm_body",
                &config.alarm_body,
            )?,
            possible: pair(
                "possible_subject",
                &config.possible_subject,
                "possible_body",
                &config.possible_body,
            )?,
            escalation: pair(
                "escalation_subject",
                &config.escalation_subject,
                "escalation_body",
                &config.escalation_body,
            )?,
            acknowledged: pair(
                "acknowledged_subject",
                &config.acknowledged_subject,
                "acknowledged_body",
                &config.acknowledged_body,
            )?,
            cleared: pair(
                "cleared_subject",
                &config.cleared_subject,
                "cleared_body",
                &config.cleared_body,
            )?,
        })
    }

    /// (subject, body) for a message of `kind`.
    pub fn render(
        &self,
        kind: MessageKind,
        vars: &BTreeMap<&'static str, String>,
    ) -> (String, String) {
        let (subject, body) = match kind {
            MessageKind::Alarm | MessageKind::Test => &self.alarm,
            MessageKind::Possible => &self.possible,
            MessageKind::Escalation => &self.escalation,
            MessageKind::Acknowledged => &self.acknowledged,
            MessageKind::Cleared => &self.cleared,
        };
        (subject.render(vars), body.render(vars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_and_braces_escaped() {
        let t = Template::parse("x", "{{literal}} {caller} dialled { dial_string }").ok();
        let vars = BTreeMap::from([("caller", "Ann".to_string()), ("dial_string", "911".into())]);
        assert_eq!(
            t.map(|t| t.render(&vars)).as_deref(),
            Some("{literal} Ann dialled 911")
        );
    }

    #[test]
    fn unknown_variable_and_unclosed_brace_are_errors() {
        assert_eq!(
            Template::parse("alarm_body", "hi {callr}"),
            Err(TemplateError::Unknown {
                key: "alarm_body",
                variable: "callr".into()
            })
        );
        assert_eq!(
            Template::parse("alarm_body", "hi {caller"),
            Err(TemplateError::Unclosed { key: "alarm_body" })
        );
    }

    #[test]
    fn missing_values_say_unknown_but_test_notice_may_be_empty() {
        let t = Template::parse("x", "{test_notice}{callback}").ok();
        let vars = BTreeMap::from([("test_notice", String::new())]);
        assert_eq!(t.map(|t| t.render(&vars)).as_deref(), Some("unknown"));
    }

    #[test]
    fn defaults_compile() {
        assert!(Templates::compile(&TemplatesConfig::default()).is_ok());
    }
}
