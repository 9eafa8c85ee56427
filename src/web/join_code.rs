//! The one-time code that lets a new box join this box's fleet (issue 17). An admin asks for
//! it on the settings page; the console and the display show it. It is good for ten minutes,
//! for one join, and for five wrong tries; a new code replaces the old one.
//!
//! The code a person copies is `XXXX-XXXX-XXXX.PIN`: twelve characters of secret (60 bits,
//! what the joining box presents) and the pin, 26 characters naming the SHA-256 of this box's
//! console certificate (128 bits), which the joining box checks before it sends the secret,
//! so the code cannot be replayed by a box in the middle. Pure: time is passed in.

use chrono::{DateTime, Duration, Utc};

/// How long a code is good for.
pub const LIFETIME_MINUTES: i64 = 10;
/// Wrong tries before the live code is burnt.
pub const WRONG_TRIES: u32 = 5;
/// Letters that cannot be confused with each other on a small display.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Why a join was refused, in words for the joining box's admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefusal {
    #[error("no join code is open on this Beacon: ask for one on its settings page")]
    NoneOpen,
    #[error("the join code is wrong: check it on the other Beacon's console or display")]
    Wrong,
    #[error("the join code has expired (codes are good for {LIFETIME_MINUTES} minutes): ask for a new one")]
    Expired,
    #[error("the join code was used already (each code joins one box): ask for a new one")]
    Used,
    #[error("too many wrong join codes: this code is burnt, ask for a new one")]
    Burnt,
}

/// A code as issued.
#[derive(Debug, Clone)]
struct Issued {
    secret: String,
    shown: String,
    expires: DateTime<Utc>,
    used: bool,
    wrong: u32,
}

/// The live code, if any.
#[derive(Debug, Default)]
pub struct JoinCodes {
    live: Option<Issued>,
}

impl JoinCodes {
    /// A new code for the console whose certificate has SHA-256 `fingerprint`; replaces any
    /// earlier one. Returns the code to show.
    pub fn issue(&mut self, fingerprint: &[u8; 32], now: DateTime<Utc>) -> String {
        let secret = random_chars(12);
        let secret = format!("{}-{}-{}", &secret[..4], &secret[4..8], &secret[8..]);
        let shown = format!("{secret}.{}", pin(fingerprint));
        self.live = Some(Issued {
            secret,
            shown: shown.clone(),
            expires: now + Duration::minutes(LIFETIME_MINUTES),
            used: false,
            wrong: 0,
        });
        shown
    }

    /// The code to show while it is open (the console, the display).
    pub fn open(&self, now: DateTime<Utc>) -> Option<(String, DateTime<Utc>)> {
        self.live
            .as_ref()
            .filter(|c| !c.used && c.wrong < WRONG_TRIES && now < c.expires)
            .map(|c| (c.shown.clone(), c.expires))
    }

    /// Takes a presented secret (the part before the dot; the whole code is accepted too).
    /// A good one closes the code.
    pub fn redeem(&mut self, presented: &str, now: DateTime<Utc>) -> Result<(), JoinRefusal> {
        let Some(code) = self.live.as_mut() else {
            return Err(JoinRefusal::NoneOpen);
        };
        let presented = presented.split('.').next().unwrap_or("").trim();
        if code.wrong >= WRONG_TRIES {
            return Err(JoinRefusal::Burnt);
        }
        let normalized = presented.to_ascii_uppercase();
        let matches = normalized.len() == code.secret.len()
            && openssl::memcmp::eq(normalized.as_bytes(), code.secret.as_bytes());
        if !matches {
            code.wrong += 1;
            return Err(if code.wrong >= WRONG_TRIES {
                JoinRefusal::Burnt
            } else {
                JoinRefusal::Wrong
            });
        }
        if code.used {
            return Err(JoinRefusal::Used);
        }
        if now >= code.expires {
            return Err(JoinRefusal::Expired);
        }
        code.used = true;
        Ok(())
    }
}

/// The pin of a certificate fingerprint: its first 128 bits, five at a time, in the code alphabet
/// (26 characters).
pub fn pin(fingerprint: &[u8; 32]) -> String {
    let mut out = String::with_capacity(26);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in &fingerprint[..16] {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `text` has a pin's form (26 characters of the code alphabet).
pub fn is_pin(text: &str) -> bool {
    text.len() == 26 && text.bytes().all(|b| ALPHABET.contains(&b))
}

/// Splits a code as a person copied it into (secret, pin); `None` when it has no pin.
pub fn split(code: &str) -> Option<(String, String)> {
    let (secret, pin) = code.trim().split_once('.')?;
    let (secret, pin) = (
        secret.trim().to_ascii_uppercase(),
        pin.trim().to_ascii_uppercase(),
    );
    (!secret.is_empty() && pin.len() == 26).then_some((secret, pin))
}

fn random_chars(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // Never a guessable code: a session token comes from the same generator.
        return super::session::random_token()[..n].to_uppercase();
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    #[test]
    fn a_code_joins_one_box_within_ten_minutes() {
        let mut codes = JoinCodes::default();
        assert_eq!(codes.redeem("ABCD", at(0)), Err(JoinRefusal::NoneOpen));
        let shown = codes.issue(&[7; 32], at(0));
        let (secret, pin) = split(&shown).expect("secret and pin");
        assert_eq!(pin, super::pin(&[7; 32]));
        assert_eq!(secret.len(), 14);
        assert_eq!(codes.open(at(9)).map(|(c, _)| c), Some(shown.clone()));
        assert_eq!(codes.redeem(&secret.to_lowercase(), at(9)), Ok(()));
        assert_eq!(codes.redeem(&shown, at(9)), Err(JoinRefusal::Used));
        assert!(codes.open(at(9)).is_none(), "a used code is not shown");
    }

    #[test]
    fn expired_wrong_and_burnt_codes_are_refused_in_words() {
        let mut codes = JoinCodes::default();
        let shown = codes.issue(&[1; 32], at(0));
        assert_eq!(
            codes.redeem(&shown, at(LIFETIME_MINUTES)),
            Err(JoinRefusal::Expired)
        );
        assert!(JoinRefusal::Expired.to_string().contains("expired"));
        let shown = codes.issue(&[1; 32], at(20));
        for _ in 1..WRONG_TRIES {
            assert_eq!(
                codes.redeem("AAAA-AAAA-AAAA", at(21)),
                Err(JoinRefusal::Wrong)
            );
        }
        assert_eq!(
            codes.redeem("AAAA-AAAA-AAAA", at(21)),
            Err(JoinRefusal::Burnt)
        );
        assert_eq!(
            codes.redeem(&shown, at(21)),
            Err(JoinRefusal::Burnt),
            "even the right one"
        );
    }

    #[test]
    fn pins_differ_for_different_certificates() {
        let a = pin(&[0; 32]);
        let mut other = [0; 32];
        other[15] = 1;
        assert_eq!(a.len(), 26);
        assert_ne!(a, pin(&other));
        assert!(split("ABCD-EFGH-JKLM").is_none(), "no pin, no join");
    }
}
