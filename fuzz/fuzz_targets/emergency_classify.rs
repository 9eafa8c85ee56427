//! Chat messages (anyone in a chat the service account is in writes them): classification,
//! extraction and the merge of an edit never panic, and an extracted call's text is clean
//! (extraction removes control and bidi characters, see `EmergencyCall`).
//!
//! The first byte picks the shape: a whole `chatMessage` JSON, or the input as the HTML body
//! of an otherwise genuine emergency-notification message (reaches the text paths directly).
#![no_main]

use std::sync::OnceLock;

use beacon::emergency::html::html_to_text;
use beacon::emergency::{classify, extract, merge_update, Context, Rules};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(Rules::default)
}

fn message(body: &str, content_type: &str, importance: &str) -> Value {
    json!({
        "id": "1741000200018",
        "messageType": "message",
        "createdDateTime": "2026-11-29T10:15:23.456Z",
        "chatId": "19:fuzz@thread.v2",
        "importance": importance,
        "from": {"user": {"id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "displayName": "Jordan Rivera", "userIdentityType": "aadUser"}},
        "body": {"contentType": content_type, "content": body},
        "attachments": []
    })
}

/// What `extract::clean` promises: no control characters (a line break only where lines are
/// kept), no bidi marks, overrides or isolates, no zero-width no-break space.
fn clean(field: &str, text: &str, multiline: bool) {
    for c in text.chars() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{FEFF}');
        let allowed = multiline && c == '\n';
        assert!(
            !c.is_control() || allowed,
            "{field}: control character {c:?} in {text:?}"
        );
        assert!(!bidi, "{field}: bidi control {c:?} in {text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((shape, rest)) = data.split_first() else {
        return;
    };
    let context = Context::default();
    let value = match shape % 4 {
        0 => match serde_json::from_slice::<Value>(rest) {
            Ok(value) => value,
            Err(_) => return,
        },
        n => {
            let text = String::from_utf8_lossy(rest);
            let _ = html_to_text(&text);
            let content_type = if n == 1 { "text" } else { "html" };
            let importance = if n == 3 { "normal" } else { "high" };
            message(&text, content_type, importance)
        }
    };
    let classification = classify(&value, &context, rules());
    let _ = classification.reason();
    if let Some(call) = classification.call() {
        clean("caller", &call.caller.display_name, false);
        for (field, text) in [
            ("site", &call.location.site),
            ("callback number", &call.callback_number),
            ("dial string", &call.dial_string),
        ] {
            if let Some(text) = text {
                clean(field, text, false);
            }
        }
        if let Some(location) = &call.location.text {
            clean("location", location, true);
        }
        // An edit carrying the same message merges without panicking and raises nothing new.
        let _ = merge_update(call, &value, &context, rules());
    }
    let _ = extract::extract(&value, &context, rules());
});
