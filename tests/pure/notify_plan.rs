//! Who is told what (pure): recipients per channel and zone, test calls marked, escalation
//! to the escalation list only, PagerDuty following the whole incident; and the `[notify]`
//! section as an operator writes it — secrets from the environment, errors that name the
//! key (an unknown template variable at start, not at alarm time) and never a value.

use std::collections::BTreeMap;
use std::path::Path;

use beacon::alarm::{ActiveCall, AlarmState, AuditAction, AuditRecord, CallSummary, Source};
use beacon::alarm_task::AlarmNotice;
use beacon::config::Config;
use beacon::local_time::Zone;
use beacon::outputs::notify::channel::Channel;
use beacon::outputs::notify::message_kind::MessageKind;
use beacon::outputs::notify::plan::{plan, CallContext, Message};
use beacon::outputs::notify::NotifyConfig;
use chrono::{DateTime, Utc};

const TOML: &str = r#"
[notify]
smtp_host = "mail.example.com"
smtp_from = "Beacon <beacon@example.com>"
smtp_username = "beacon"
twilio_account_sid = "AC0123456789abcdef0123456789abcdef"
twilio_from = "+15005550006"
pagerduty_routing_key = "from-the-file-is-fine-too"

[[notify.recipients]]
channel = "email"
to = "hq-desk@example.com"
zones = ["HQ"]

[[notify.recipients]]
channel = "email"
to = "annex-desk@example.com"
zones = ["Annex"]

[[notify.recipients]]
channel = "sms"
to = "+14255550100"
on = ["alarm"]

[[notify.recipients]]
channel = "pagerduty"

[[notify.escalation]]
channel = "sms"
to = "+14255550199"

[notify.templates]
alarm_subject = "{test_notice}911 from {caller}"
"#;

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "BEACON_NOTIFY_SMTP_PASSWORD".into(),
            "env-smtp-secret-1".into(),
        ),
        (
            "BEACON_NOTIFY_TWILIO_AUTH_TOKEN".into(),
            "env-twilio-secret-2".into(),
        ),
    ])
}

fn load(text: &str) -> Result<Config, String> {
    Config::from_parts(Path::new("beacon.toml"), text, &env()).map_err(|e| e.to_string())
}

fn notify() -> NotifyConfig {
    load(TOML)
        .map(|c| c.notify)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-29T17:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn active(key: &str, is_test: bool) -> ActiveCall {
    ActiveCall {
        key: key.into(),
        summary: CallSummary {
            caller_name: Some("Ann Smith".into()),
            location: Some("Building 7".into()),
            dial_string: Some(if is_test { "933" } else { "911" }.into()),
            callback_number: Some("+14255550123".into()),
            is_test,
            ..CallSummary::default()
        },
        raised_at: at(),
        acknowledged: None,
        waiting_since: None,
    }
}

fn notice(action: AuditAction, calls: Vec<ActiveCall>) -> AlarmNotice {
    AlarmNotice {
        record: AuditRecord {
            at: at(),
            source: Source::Web,
            who: Some("guard-7".into()),
            action,
            from: AlarmState::Alerting,
            to: AlarmState::Alerting,
            keys: calls.iter().map(|c| c.key.clone()).collect(),
            detail: None,
        },
        calls,
    }
}

fn zone(zone: Option<&str>) -> BTreeMap<String, CallContext> {
    BTreeMap::from([(
        "c/1".to_string(),
        CallContext {
            known: true,
            zone: zone.map(str::to_string),
            latitude: None,
            longitude: None,
            reported_by: String::new(),
        },
    )])
}

fn run(notice: &AlarmNotice, calls: &BTreeMap<String, CallContext>) -> Vec<Message> {
    let config = notify();
    let templates = config.validate().unwrap_or_else(|e| panic!("{e}"));
    plan(
        &config,
        &templates,
        "desk-1",
        notice,
        calls,
        &Zone::named("Europe/Berlin").expect("system zoneinfo"),
    )
}

fn targets(messages: &[Message]) -> Vec<(Channel, String, MessageKind)> {
    messages
        .iter()
        .map(|m| (m.channel, m.recipient.clone(), m.kind))
        .collect()
}

#[test]
fn a_call_in_a_zone_reaches_that_zones_desk_and_the_all_zone_recipients() {
    let messages = run(
        &notice(AuditAction::CallRaised, vec![active("c/1", false)]),
        &zone(Some("HQ")),
    );
    assert_eq!(
        targets(&messages),
        [
            (
                Channel::Email,
                "hq-desk@example.com".into(),
                MessageKind::Alarm
            ),
            (Channel::Sms, "+14255550100".into(), MessageKind::Alarm),
            (Channel::Pagerduty, "pagerduty".into(), MessageKind::Alarm),
        ]
    );
    assert_eq!(messages[0].subject, "911 from Ann Smith", "edited template");
    assert!(
        messages[0].body.contains("Time: 2026-11-29 18:00:00 CET"),
        "{}",
        messages[0].body
    );
}

#[test]
fn a_call_whose_zone_is_unknown_reaches_every_zone() {
    let messages = run(
        &notice(AuditAction::CallRaised, vec![active("c/1", false)]),
        &BTreeMap::new(),
    );
    let emails: Vec<_> = messages
        .iter()
        .filter(|m| m.channel == Channel::Email)
        .map(|m| m.recipient.as_str())
        .collect();
    assert_eq!(emails, ["hq-desk@example.com", "annex-desk@example.com"]);
}

#[test]
fn a_test_call_is_marked_and_goes_only_to_who_wants_tests() {
    let messages = run(
        &notice(AuditAction::CallRaised, vec![active("c/1", true)]),
        &zone(Some("HQ")),
    );
    assert_eq!(
        targets(&messages),
        [
            (
                Channel::Email,
                "hq-desk@example.com".into(),
                MessageKind::Test
            ),
            (Channel::Pagerduty, "pagerduty".into(), MessageKind::Test),
        ],
        "the SMS recipient asked for real alarms only"
    );
    assert!(messages
        .iter()
        .all(|m| m.subject.starts_with("THIS IS A TEST. ")));
    assert!(messages.iter().all(|m| m.details.is_test));
}

#[test]
fn escalation_goes_to_the_escalation_list_only() {
    let messages = run(
        &notice(AuditAction::Escalated, vec![active("c/1", false)]),
        &zone(Some("HQ")),
    );
    assert_eq!(
        targets(&messages),
        [(Channel::Sms, "+14255550199".into(), MessageKind::Escalation)]
    );
    assert!(messages[0].subject.starts_with("NOT ACKNOWLEDGED"));
    assert!(messages[0].body.contains("Call-back number: +14255550123"));
}

#[test]
fn acknowledgement_and_clearing_follow_the_incident_on_pagerduty_only_by_default() {
    let ack = run(
        &notice(AuditAction::Acknowledged, vec![active("c/1", false)]),
        &zone(Some("HQ")),
    );
    assert_eq!(
        targets(&ack),
        [(
            Channel::Pagerduty,
            "pagerduty".into(),
            MessageKind::Acknowledged
        )]
    );
    assert!(
        ack[0].body.contains("guard-7 acknowledged"),
        "{}",
        ack[0].body
    );
    let cleared = run(
        &notice(AuditAction::AutoCleared, vec![active("c/1", false)]),
        &zone(Some("HQ")),
    );
    assert_eq!(
        targets(&cleared),
        [(Channel::Pagerduty, "pagerduty".into(), MessageKind::Cleared)]
    );
    for quiet in [
        AuditAction::CallUpdated,
        AuditAction::Silenced,
        AuditAction::TroubleRaised,
    ] {
        assert!(run(&notice(quiet, vec![active("c/1", false)]), &zone(None)).is_empty());
    }
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let config = load(TOML).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.notify.smtp_password.as_ref().map(|s| s.expose()),
        Some("env-smtp-secret-1")
    );
    assert_eq!(
        config.notify.twilio_auth_token.as_ref().map(|s| s.expose()),
        Some("env-twilio-secret-2")
    );
    let shown = format!(
        "{config:?} {}",
        serde_json::to_string(&config).unwrap_or_default()
    );
    for secret in [
        "env-smtp-secret-1",
        "env-twilio-secret-2",
        "from-the-file-is-fine-too",
    ] {
        assert!(!shown.contains(secret));
    }
}

#[test]
fn configuration_errors_name_the_key_and_not_the_value() {
    let cases = [
        (
            TOML.replace("{test_notice}911 from {caller}", "911 from {calller}"),
            "templates.alarm_subject: unknown variable {calller}",
        ),
        (
            TOML.replace("to = \"+14255550100\"", "to = \"4255550100\""),
            "recipients[2].to: a phone number in E.164 form",
        ),
        (
            TOML.replace("to = \"hq-desk@example.com\"", "to = \"hq-desk\""),
            "recipients[0].to: an e-mail address is required",
        ),
        (
            TOML.replace("channel = \"pagerduty\"", "channel = \"slack\""),
            "recipients[3].channel: the slack channel is not configured",
        ),
        (
            TOML.replace(
                "smtp_host = \"mail.example.com\"",
                "smtp_host = \"mail.example.com\"\nsmtp_security = \"none\"",
            ),
            "smtp_security",
        ),
        (format!("{TOML}\n[notify.extra]\nx = 1\n"), "notify"),
    ];
    for (text, expected) in cases {
        let error = load(&text).err().unwrap_or_default();
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
        for value in [
            "env-smtp-secret-1",
            "env-twilio-secret-2",
            "4255550100\"",
            "hq-desk\"",
        ] {
            assert!(!error.contains(value), "{error}");
        }
    }
}

fn possible(key: &str) -> ActiveCall {
    let mut call = active(key, false);
    call.summary.is_possible = true;
    call.summary.dial_string = None;
    call.summary.message = Some("Smoke from rack 4 — someone check?".into());
    call
}

#[test]
fn a_possible_emergency_is_its_own_message_with_the_text_to_read() {
    let messages = run(
        &notice(AuditAction::CallRaised, vec![possible("c/1")]),
        &zone(Some("HQ")),
    );
    // Everyone who gets alarms gets it (the SMS recipient lists only "alarm"), as "possible".
    assert_eq!(
        targets(&messages),
        [
            (
                Channel::Email,
                "hq-desk@example.com".into(),
                MessageKind::Possible
            ),
            (Channel::Sms, "+14255550100".into(), MessageKind::Possible),
            (
                Channel::Pagerduty,
                "pagerduty".into(),
                MessageKind::Possible
            ),
        ]
    );
    let email = &messages[0];
    assert!(
        email
            .subject
            .starts_with("POSSIBLE EMERGENCY — CHECK TEAMS"),
        "{}",
        email.subject
    );
    assert!(
        email.body.contains("Smoke from rack 4 — someone check?"),
        "{}",
        email.body
    );
    assert!(email.details.is_possible);
}

#[test]
fn a_confirmed_possible_call_sends_the_alarm() {
    let mut confirmed = possible("c/1");
    confirmed.summary.is_possible = false;
    let messages = run(
        &notice(AuditAction::Confirmed, vec![confirmed]),
        &zone(Some("HQ")),
    );
    let kinds: Vec<MessageKind> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [MessageKind::Alarm, MessageKind::Alarm, MessageKind::Alarm]
    );
    assert!(!messages[0].details.is_possible);
}

#[test]
fn an_escalated_possible_call_says_it_is_possible() {
    let messages = run(
        &notice(AuditAction::Escalated, vec![possible("c/1")]),
        &zone(Some("HQ")),
    );
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]
            .subject
            .contains("POSSIBLE EMERGENCY — CHECK TEAMS"),
        "{}",
        messages[0].subject
    );
}
