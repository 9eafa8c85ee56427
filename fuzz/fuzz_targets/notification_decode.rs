//! An Event Hub record body, as anyone who can publish into the hub may write it:
//! `graph::notification::decode`, the redaction of refused records and the resource parser
//! never panic, and a redacted body no longer carries a `clientState` that decoding would read
//! (refused records are kept and may be shown on a page).
#![no_main]

use beacon::graph::notification::{decode, parse_resource, redact_client_state, Item};
use libfuzzer_sys::fuzz_target;

fn client_state(item: &Item) -> Option<&str> {
    match item {
        Item::Change(change) => change.client_state.as_deref(),
        Item::Lifecycle(lifecycle) => lifecycle.client_state.as_deref(),
        Item::CallEvent(event) => event.client_state.as_deref(),
        Item::Validation => None,
    }
}

fuzz_target!(|body: &[u8]| {
    if let Ok(items) = decode(body) {
        for item in items.into_iter().flatten() {
            // Every item that decoded must survive being printed (logs, rejected tree).
            let _ = format!("{item:?}");
        }
    }
    let redacted = redact_client_state(body);
    if let Ok(items) = decode(&redacted) {
        for item in items.iter().flatten() {
            if let Some(state) = client_state(item) {
                assert_eq!(state, "(redacted)", "a clientState survived redaction");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_resource(text);
    }
});
