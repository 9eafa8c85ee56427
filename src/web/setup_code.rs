//! The one-time setup code of a new appliance: while no admin exists, a code is made at start
//! and shown in the log (and the console's first-run page asks for it); whoever enters it sets
//! the admin password. It is used once, and a new one is made at every start until then.

use super::session::random_token;

/// Letters that cannot be confused with each other on a small display.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A new code: `XXXX-XXXX` (40 bits).
pub fn generate() -> String {
    let mut bytes = [0u8; 8];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // Never fall back to a guessable code; a token is random from the same generator.
        return random_token()[..9].to_uppercase();
    }
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// Whether `entered` is `code`, ignoring case, spaces and dashes.
pub fn matches(code: &str, entered: &str) -> bool {
    let normal = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_uppercase)
            .collect()
    };
    super::csrf::matches(&normal(code), Some(&normal(entered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_groups_of_four_and_differ() {
        let a = generate();
        assert_eq!(a.len(), 9);
        assert_eq!(&a[4..5], "-");
        assert_ne!(a, generate());
    }

    #[test]
    fn entry_is_forgiving_about_case_and_dashes_only() {
        assert!(matches("ABCD-EF23", "abcd ef23"));
        assert!(matches("ABCD-EF23", "ABCDEF23"));
        assert!(!matches("ABCD-EF23", "ABCD-EF24"));
        assert!(!matches("ABCD-EF23", ""));
    }
}
