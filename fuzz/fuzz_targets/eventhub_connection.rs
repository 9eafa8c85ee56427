//! The Event Hub connection string (configuration, environment, the setup page): the parser
//! never panics, and what it parses never shows the key (the Debug form goes to logs).
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
    if let Some(key) = key_of(text) {
        // A key long enough not to occur by chance in the other parts as Debug shows them
        // (escaped: a key like `ab\u` occurs in the escaped `ab\u{4}` of another part).
        let elsewhere = format!("{:?}", text.replacen(key, "", 1));
        if key.len() >= 8 && !elsewhere.contains(key) {
            assert!(!shown.contains(key), "the key is shown: {shown}");
        }
    }
});
