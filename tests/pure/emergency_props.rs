//! Property tests: the classifier never panics on arbitrary JSON-ish input or arbitrary strings
//! in the body, cards and sender, and an extracted call always keeps the raw message verbatim.

use beacon::emergency::{classify, extract::extract, merge_update, Context, ParseReport, Rules};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("high"),
            Just("HIGH"),
            Just("html"),
            Just("message"),
            Just("systemEventMessage"),
            Just("<p>x has placed an Emergency Call to 911</p>"),
            Just("Location: 47.6, -122.1"),
            Just("application/vnd.microsoft.card.adaptive"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("id".to_string()),
                        Just("body".to_string()),
                        Just("content".to_string()),
                        Just("contentType".to_string()),
                        Just("importance".to_string()),
                        Just("from".to_string()),
                        Just("user".to_string()),
                        Just("attachments".to_string()),
                        Just("messageType".to_string()),
                        Just("deletedDateTime".to_string()),
                        Just("createdDateTime".to_string()),
                        "[a-zA-Z]{1,8}",
                    ],
                    inner,
                ),
                0..6,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A well-formed message skeleton with arbitrary strings in the places a caller controls.
fn arb_message() -> impl Strategy<Value = Value> {
    (any::<String>(), any::<String>(), any::<String>(), any::<String>(), any::<bool>()).prop_map(
        |(body, name, card_text, fact, html)| {
            let card = json!({"type":"AdaptiveCard","body":[{"type":"TextBlock","text":card_text},
                {"type":"FactSet","facts":[{"title":fact,"value":body}]}]});
            json!({
                "id": "1", "chatId": "c", "messageType": "message", "importance": "high",
                "createdDateTime": "2025-03-01T10:15:23Z",
                "from": {"user": {"id": "u", "displayName": name}},
                // Arbitrary *visible* text around the phrase: in HTML it is escaped, so a random
                // "<a" cannot swallow the phrase into a tag (hidden text is another property).
                "body": {"contentType": if html { "html" } else { "text" },
                         "content": if html {
                             format!("{} has placed an Emergency Call to 911 {}", escape(&body), escape(&card_text))
                         } else {
                             format!("{body} has placed an Emergency Call to 911 {card_text}")
                         }},
                "attachments": [
                    {"contentType": "application/vnd.microsoft.card.adaptive", "content": card.to_string()},
                    {"contentType": "application/vnd.microsoft.card.adaptive", "content": fact},
                ]
            })
        },
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn exercise(message: &Value) {
    let rules = Rules::default();
    let ctx = Context {
        service_account_id: Some("svc".into()),
        ..Context::default()
    };
    let result = classify(message, &ctx, &rules);
    let _ = ParseReport::from_classification(&result).to_value();
    if let Some(call) = result.call() {
        assert_eq!(&call.raw, message, "raw must equal the input");
        let _ = rules.zones().decide(call);
        let merged = merge_update(call, message, &ctx, &rules);
        assert!(
            merged.is_ok_and(|m| !m.changed),
            "a message merged into itself changes nothing"
        );
    }
    if let Some(call) = extract(message, &ctx, &rules) {
        assert_eq!(&call.raw, message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_json(value in arb_json()) {
        exercise(&value);
    }

    #[test]
    fn arbitrary_strings_in_body_cards_and_sender(message in arb_message()) {
        exercise(&message);
        let result = classify(&message, &Context::default(), &Rules::default());
        // The phrase is always there in an important message: it must never be missed.
        prop_assert!(result.call().is_some(), "missed: {:?}", result.reason());
    }

    #[test]
    fn arbitrary_html_never_panics(html in "(<[a-z/!]{0,3}[^>]{0,10}>?|&#?[a-zA-Z0-9]{0,6};?|[^<&]{0,10}){0,30}") {
        let m = json!({"importance":"high","body":{"contentType":"html","content":html}});
        exercise(&m);
    }
}
