//! Untrusted text made safe and fitted to a fixed-width screen: cleaning, cutting, wrapping and
//! scrolling. All of it is measured in characters (the fonts are monospaced).

/// At most this many characters of any one string are looked at; the rest is dropped before
/// any work is done, so a 10 000-character caller name costs no more than a short one.
pub const MAX_INPUT_CHARS: usize = 256;

/// Marks a string that was cut to fit (a character every font has).
pub const CUT_MARK: char = '~';

/// Characters that reorder or hide text without being "control" characters: the bidi
/// embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069), the direction marks and
/// zero-width characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{061C}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// `text` with control and bidi/format characters removed, runs of whitespace collapsed to one
/// space, trimmed, and at most [`MAX_INPUT_CHARS`] characters long.
pub fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut pending_space = false;
    for c in text
        .chars()
        .filter(|c| !is_invisible_format(*c))
        .take(MAX_INPUT_CHARS)
    {
        if c.is_whitespace() || c.is_control() {
            // Line breaks and tabs become a space; other controls simply vanish.
            pending_space |= c.is_whitespace();
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// `text` cut to at most `width` characters; a cut string ends in [`CUT_MARK`].
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push(CUT_MARK);
    }
    out
}

/// `text` broken into lines of at most `width` characters, at spaces where possible; a word
/// longer than a line is split. Never returns an empty line except for empty input.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        if line_len > 0 && line_len + 1 + word.len() <= width {
            line.push(' ');
            line.extend(word.iter());
            line_len += 1 + word.len();
            continue;
        }
        if line_len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        line = word.iter().collect();
        line_len = word.len();
    }
    if line_len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Ticks a scrolled window rests on each position.
pub const TICKS_PER_STEP: u64 = 2;

/// The first line to show when `total` lines are scrolled through a window of `visible` lines
/// at `tick`: one line per [`TICKS_PER_STEP`] ticks, resting an extra step at the top and the
/// bottom, then starting over.
pub fn scroll_offset(total: usize, visible: usize, tick: u64) -> usize {
    let positions = total.saturating_sub(visible) as u64 + 1;
    if positions == 1 {
        return 0;
    }
    let cycle = positions + 2;
    let step = (tick / TICKS_PER_STEP) % cycle;
    // step 0 and 1 both show the top; the last two steps both show the bottom.
    step.saturating_sub(1).min(positions - 1) as usize
}

/// The `visible` lines of `lines` shown at `tick` (see [`scroll_offset`]).
pub fn scroll_window(lines: &[String], visible: usize, tick: u64) -> &[String] {
    let start = scroll_offset(lines.len(), visible, tick);
    let end = (start + visible).min(lines.len());
    &lines[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_controls_and_bidi_and_collapses_space() {
        assert_eq!(
            clean("  A\u{202E}li\u{7}ce\n\tB\u{2066}ob\u{0}  "),
            "Alice Bob"
        );
        assert_eq!(clean(&"x".repeat(10_000)).len(), MAX_INPUT_CHARS);
    }

    #[test]
    fn cut_marks_only_what_it_cut() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab~");
        assert_eq!(cut("abcd", 0), "");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert!(wrap(&"w ".repeat(500), 21).iter().all(|l| l.len() <= 21));
    }

    #[test]
    fn scroll_rests_at_both_ends_and_repeats() {
        // 4 lines through 2: positions 0,1,2, cycle of 5 steps.
        let offsets: Vec<usize> = (0..12).map(|t| scroll_offset(4, 2, t)).collect();
        assert_eq!(offsets, [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 0, 0]);
        assert_eq!(scroll_offset(2, 3, 99), 0);
        let lines: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(scroll_window(&lines, 2, 4), ["b", "c"]);
    }
}
