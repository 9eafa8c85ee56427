//! The Event Hub connection string (configuration, environment, the setup page): the parser
//! never panics, and what it parses never shows the key (the Debug form goes to logs): its
//! Debug output is the same whatever the key.
#![no_main]

use beacon::eventhub::connection::EventHubTarget;
use beacon::secret::Secret;
use libfuzzer_sys::fuzz_target;

/// The `SharedAccessKey` value as the parser reads it (trimmed).
fn key_of(text: &str) -> Option<&str> {
    text.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("sharedaccesskey")
            .then(|| value.trim())
    })
}

fuzz_target!(|text: &str| {
    let Ok(target) = EventHubTarget::parse(&Secret::new(text)) else {
        return;
    };
    let shown = format!("{target:?}");
    let Some(key) = key_of(text) else {
        return;
    };
    // What Debug shows must not depend on the key: the same string with another key of the
    // same length shows exactly the same. (Asking "is the key in the output" is not enough: a
    // key can be made of text the output holds anyway, such as `EventHubTarget {`.)
    if key.is_empty() || text.matches(key).count() != 1 {
        return; // the key's text also stands elsewhere: replacing it changes more than the key
    }
    let other_key: String = key
        .chars()
        .map(|c| if c == 'x' { 'y' } else { 'x' })
        .collect();
    let Ok(other) = EventHubTarget::parse(&Secret::new(text.replacen(key, &other_key, 1))) else {
        return;
    };
    assert_eq!(shown, format!("{other:?}"), "Debug depends on the key");
});
