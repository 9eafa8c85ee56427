//! A payload published to `beacon/<device>/command/<name>` by any MQTT client: the parser
//! never panics, and a `who` it accepts is what the audit log may record (trimmed, 1 to
//! MAX_WHO characters, no control characters).
#![no_main]

use beacon::outputs::mqtt::commands::{parse, Command, MAX_PAYLOAD, MAX_WHO};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["acknowledge", "test", "siren", "confirm"];

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    // Most inputs go to a known command; some use the first line as an unknown name.
    let (name, payload) = match NAMES.get(usize::from(*selector) % 5) {
        Some(name) => (name.to_string(), payload),
        None => {
            let cut = payload.iter().position(|b| *b == b'\n').unwrap_or(0);
            (
                String::from_utf8_lossy(&payload[..cut]).into_owned(),
                &payload[(cut + 1).min(payload.len())..],
            )
        }
    };
    match parse(&name, payload) {
        Ok(command) => {
            assert!(payload.len() <= MAX_PAYLOAD);
            let who = match &command {
                Command::Acknowledge { who }
                | Command::LampTest { who }
                | Command::Confirm { who } => who,
            };
            if let Some(who) = who {
                let n = who.chars().count();
                assert!((1..=MAX_WHO).contains(&n), "who of {n} characters");
                assert!(
                    !who.chars().any(char::is_control),
                    "control character in who"
                );
                assert_eq!(who.trim(), who);
            }
            let _ = command.name();
        }
        Err(rejection) => {
            let _ = rejection.to_string();
        }
    }
});
