//! How untrusted message text is prepared, in one place: [`normalize`] folds text for matching
//! (phrases, keywords, labels, cues, zones), [`normalize_with_offsets`] does the same while
//! remembering where each folded byte came from (so a match can be cut out of the original),
//! and [`clean`] / [`clean_field`] make a value safe to keep (control and bidi override
//! characters removed, length capped with a `…` mark). Nothing here escapes markup: see the
//! note on [`super::EmergencyCall`].

/// Longest single-line value kept (characters, the `…` mark included): caller, site, address
/// parts. The display takes at most 256 characters of a line.
pub(crate) const MAX_FIELD_CHARS: usize = 256;
/// Longest location text kept (characters, lines and the `…` mark included): what the display
/// shows of it; the record keeps the raw message beside it.
pub(crate) const MAX_LOCATION_CHARS: usize = 256;

/// Lower-case, typographic apostrophes → `'`, whitespace runs → one space, trimmed.
/// Applied to configured phrases and to message lines alike.
pub(crate) fn normalize(text: &str) -> String {
    normalize_with_offsets(text).0
}

/// [`normalize`], plus for every byte of the result the byte offset in `text` of the character
/// it came from, and one more entry: the end of the last character used (so a match
/// `start..end` of the result is `offsets[start]..offsets[end]` in `text`, on char boundaries).
pub(crate) fn normalize_with_offsets(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len() + 1);
    // Where the pending run of whitespace started.
    let mut space: Option<usize> = None;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            space.get_or_insert(at);
            continue;
        }
        if let Some(space_at) = space.take() {
            if !out.is_empty() {
                out.push(' ');
                offsets.push(space_at);
            }
        }
        let before = out.len();
        match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{00B4}' | '`' => out.push('\''),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
        offsets.extend(std::iter::repeat_n(at, out.len() - before));
        end = at + c.len_utf8();
    }
    offsets.push(end);
    (out, offsets)
}

/// Whether `needle` (normalised) occurs in `norm` starting at a word start (so "emergency"
/// matches "emergency," and "emergencyroom", not "nonemergency"); the byte offset of the first.
pub(crate) fn find_at_word_start(norm: &str, needle: &str) -> Option<usize> {
    norm.match_indices(needle).map(|(at, _)| at).find(|&at| {
        !norm[..at]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    })
}

/// Whether `norm[start..end]` has a word boundary on both sides.
fn whole_words(norm: &str, start: usize, end: usize) -> bool {
    let before = norm[..start].chars().next_back();
    let after = norm[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// A fixed list of phrases, looked for all at once: one Aho-Corasick pass over a line instead
/// of a substring search per phrase. With the ~130 announcement cues, building a searcher per
/// cue and line was a fifth of classifying an emergency.
#[derive(Debug, Clone)]
pub(crate) struct Phrases(aho_corasick::AhoCorasick);

impl Phrases {
    /// The automaton for `phrases` (a constant list of the code: too big a list is a bug).
    pub(crate) fn new(phrases: &[&str]) -> Phrases {
        Phrases(
            aho_corasick::AhoCorasick::new(phrases)
                .expect("a phrase list of the code fits an automaton"),
        )
    }

    /// Whether one of the phrases occurs in `norm` as whole words (word boundaries on both
    /// sides).
    pub(crate) fn in_words(&self, norm: &str) -> bool {
        // Overlapping: a phrase inside a longer word must not hide one at a word boundary.
        self.0
            .find_overlapping_iter(norm)
            .any(|m| whole_words(norm, m.start(), m.end()))
    }

    /// Whether one of the phrases occurs in `text` anywhere, word parts included.
    pub(crate) fn in_text(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// Removes control characters (except `\n` when `multiline`), bidi embedding/override/isolate
/// marks and zero-width no-break spaces; caps the length at `max_chars` characters, the last of
/// them a `…` when the text was cut. Never splits a character, never panics.
pub(crate) fn clean(text: &str, multiline: bool, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::with_capacity(text.len().min(max_chars + 1));
    for c in text.chars() {
        let c = match c {
            '\n' if multiline => '\n',
            '\n' | '\t' | '\r' => ' ',
            c => c,
        };
        let drop = matches!(c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
            || (c.is_control() && c != '\n');
        if drop {
            continue;
        }
        kept.push(c);
        if kept.len() > max_chars {
            break;
        }
    }
    if kept.len() > max_chars {
        kept.truncate(max_chars - 1);
        while kept.last().is_some_and(|c| c.is_whitespace()) {
            kept.pop();
        }
        kept.push('…');
    }
    let out: String = kept.into_iter().collect();
    out.trim().to_string()
}

/// [`clean`] for a single-line value; `None` when nothing is left.
pub(crate) fn clean_field(text: &str) -> Option<String> {
    Some(clean(text, false, MAX_FIELD_CHARS)).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_space_and_apostrophes() {
        assert_eq!(
            normalize("  A  Passé\u{00A0}un appel d\u{2019}URGENCE "),
            "a passé un appel d'urgence"
        );
    }

    #[test]
    fn offsets_map_folded_matches_back_to_the_original() {
        let text = "Camille a passé un appel d\u{2019}urgence  AU 112";
        let (norm, offsets) = normalize_with_offsets(text);
        let at = norm.find("appel d'urgence au").unwrap_or_default();
        let end = at + "appel d'urgence au".len();
        assert_eq!(
            &text[offsets[at]..offsets[end]],
            "appel d\u{2019}urgence  AU"
        );
        assert_eq!(offsets.len(), norm.len() + 1);
    }

    #[test]
    fn word_matching() {
        assert_eq!(find_at_word_start("a nonemergency", "emergency"), None);
        assert_eq!(find_at_word_start("(emergency)", "emergency"), Some(1));
        let test = Phrases::new(&["test"]);
        assert!(test.in_words("this is a test."));
        assert!(!test.in_words("the latest news"));
        assert!(!test.in_words("testament"));
        assert!(
            test.in_words("the latest test"),
            "a later whole word counts"
        );
        // A phrase that starts inside a longer one's match still counts on its own.
        assert!(Phrases::new(&["drill", "drills"]).in_words("fire drills today"));
        assert!(Phrases::new(&["fire drill", "drill"]).in_words("no fire drillings, a drill"));
        assert!(Phrases::new(&["übung"]).in_text("räumungsübung"));
    }

    proptest::proptest! {
        /// All at once finds what looking for each phrase at every position finds.
        #[test]
        fn phrases_match_what_a_search_per_phrase_matches(text in "[ab .]{0,12}") {
            let phrases = ["a", "ab", "b a", "a.a", "bb"];
            let one_by_one = phrases.iter().any(|p| {
                (0..text.len())
                    .filter(|&at| text[at..].starts_with(p))
                    .any(|at| whole_words(&text, at, at + p.len()))
            });
            proptest::prop_assert_eq!(Phrases::new(&phrases).in_words(&text), one_by_one);
        }
    }

    #[test]
    fn clean_strips_bidi_and_controls_and_caps_length_with_a_mark() {
        assert_eq!(clean("ab\u{202E}cd\u{0007}e\nf", false, 100), "abcde f");
        assert_eq!(clean("l1\nl2\u{2066}", true, 100), "l1\nl2");
        assert_eq!(clean(&"x".repeat(10), false, 4), "xxx…");
        assert_eq!(clean("xxxx", false, 4), "xxxx");
        assert_eq!(clean("xxxxx", false, 4), "xxx…");
        assert_eq!(clean(&"é".repeat(300), false, 256).chars().count(), 256);
        assert_eq!(clean_field("\u{202E} \u{200F}"), None);
    }
}
