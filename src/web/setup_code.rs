//! The one-time setup code of a new appliance: while no admin exists, a code is shown in the
//! log and on the display (and the console's first-run page asks for it); whoever enters it
//! sets the admin password. On the appliance image the first boot writes the code to
//! `<data_dir>/setup-code` and shows it on the local console too; that code is used, and the
//! file is removed once the admin is set. Elsewhere a new code is made at every start until then.

use std::path::{Path, PathBuf};

use super::session::random_token;

/// Where the image's first boot leaves the setup code.
pub fn provisioned_file(data_dir: &Path) -> PathBuf {
    data_dir.join("setup-code")
}

/// The first boot's code, when its file holds a usable one (6 to 32 letters, digits or '-').
pub fn provisioned(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(provisioned_file(data_dir)).ok()?;
    let code = text.trim();
    let usable = (6..=32).contains(&code.len())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    usable.then(|| code.to_string())
}

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
    fn the_first_boot_code_is_used_when_it_is_usable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(provisioned(dir.path()), None);
        std::fs::write(provisioned_file(dir.path()), "04718265\n").unwrap();
        assert_eq!(provisioned(dir.path()).as_deref(), Some("04718265"));
        std::fs::write(provisioned_file(dir.path()), "<script>\n").unwrap();
        assert_eq!(provisioned(dir.path()), None);
    }

    #[test]
    fn entry_is_forgiving_about_case_and_dashes_only() {
        assert!(matches("ABCD-EF23", "abcd ef23"));
        assert!(matches("ABCD-EF23", "ABCDEF23"));
        assert!(!matches("ABCD-EF23", "ABCD-EF24"));
        assert!(!matches("ABCD-EF23", ""));
    }
}
