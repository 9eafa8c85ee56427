//! CSRF tokens: every form carries one, compared in constant time with the session's (after
//! login) or with the `beacon_csrf` cookie (the login and first-run forms, before there is a
//! session). The cookies are `SameSite=Strict` as well; the token is the second lock.

/// Name of the form field.
pub const FIELD: &str = "csrf";
/// Cookie carrying the pre-login token.
pub const COOKIE: &str = "beacon_csrf";

/// Whether `submitted` matches `expected` (constant time; empty never matches).
pub fn matches(expected: &str, submitted: Option<&str>) -> bool {
    let Some(submitted) = submitted else {
        return false;
    };
    !expected.is_empty()
        && expected.len() == submitted.len()
        && openssl::memcmp::eq(expected.as_bytes(), submitted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        assert!(matches("abc", Some("abc")));
        assert!(!matches("abc", Some("abd")));
        assert!(!matches("abc", Some("ab")));
        assert!(!matches("abc", None));
        assert!(!matches("", Some("")));
    }
}
