//! HTML → plain text for Teams message bodies.
//!
//! The markup is read by `html5gum`, a WHATWG-conformant tokenizer, so a body is split into
//! tags and text exactly as a browser would split it: quoted attributes may contain `>` or
//! `<`, every named entity (with or without `;` where the standard allows it) and every
//! numeric reference is decoded, comments and doctypes vanish, and `<script>`/`<style>` content
//! is raw text that never becomes tags. On top of the tokens, Beacon's own rules: block
//! elements and `<br>` become line breaks (a paragraph leaves a blank line), table cells are
//! separated by a space, content of hidden elements (script, style, head, title, template, …) is
//! dropped, and the `href` of each `<a>` — and only that attribute — is kept as a link so that
//! map links can be read for coordinates. It never panics; the output is *text*, still
//! untrusted, never markup.

use html5gum::{DefaultEmitter, Token, Tokenizer};

/// Text of an HTML fragment plus the link targets found in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HtmlText {
    /// Lines separated by `\n`; each line trimmed, no runs of blank lines.
    pub text: String,
    /// `href` values of `<a>` elements, entity-decoded, in document order.
    pub links: Vec<String>,
    /// The visible text of each `<a>` element with an `href` (whitespace collapsed), so that a
    /// line holding only a link ("Open map") is not read as part of an address.
    pub link_texts: Vec<String>,
}

/// Elements whose start or end tag begins a new line.
const BLOCK_TAGS: &[&str] = &[
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "address",
    "dl",
    "dt",
    "dd",
];

/// Elements whose content is never shown as text.
const HIDDEN_TAGS: &[&str] = &[
    "script", "style", "head", "title", "template", "noscript", "textarea", "iframe", "object",
    "svg", "math", "select",
];

/// Converts an HTML fragment to text with line breaks kept.
pub fn html_to_text(html: &str) -> HtmlText {
    let mut emitter = DefaultEmitter::default();
    // Enter raw text after <script>, <style>, <title>, … as the tree builder would.
    emitter.naively_switch_states(true);
    let mut raw = String::with_capacity(html.len());
    let mut links = Vec::new();
    let mut link_texts = Vec::new();
    // Text of the `<a href>` being read.
    let mut anchor: Option<String> = None;
    // The hidden element being skipped and how deeply it is nested in itself.
    let mut hidden: Option<(String, usize)> = None;
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = lossy(&tag.name).to_ascii_lowercase();
                if let Some((skipping, depth)) = &mut hidden {
                    if *skipping == name && !tag.self_closing {
                        *depth += 1;
                    }
                    continue;
                }
                if HIDDEN_TAGS.contains(&name.as_str()) {
                    if !tag.self_closing {
                        hidden = Some((name, 1));
                    }
                    continue;
                }
                boundary(&mut raw, &name);
                if name == "a" {
                    let href = tag
                        .attributes
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(b"href"))
                        .map(|(_, value)| lossy(&value.value).trim().to_string());
                    if let Some(href) = href.filter(|h| !h.is_empty()) {
                        links.push(href);
                        anchor = Some(String::new());
                    }
                }
            }
            Token::EndTag(tag) => {
                let name = lossy(&tag.name).to_ascii_lowercase();
                if let Some((skipping, depth)) = &mut hidden {
                    if *skipping == name {
                        *depth -= 1;
                        if *depth == 0 {
                            hidden = None;
                        }
                    }
                    continue;
                }
                if name == "a" {
                    if let Some(text) = anchor.take() {
                        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        if !text.is_empty() {
                            link_texts.push(text);
                        }
                    }
                }
                boundary(&mut raw, &name);
            }
            Token::String(text) if hidden.is_none() => {
                let text = lossy(&text.value);
                if let Some(anchor) = &mut anchor {
                    anchor.push_str(&text);
                }
                // Source line breaks are plain whitespace in HTML; only tags make lines.
                raw.extend(
                    text.chars()
                        .map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c }),
                );
            }
            // Comments, doctypes, parse errors and hidden content.
            _ => {}
        }
    }
    HtmlText {
        text: tidy_lines(&raw),
        links,
        link_texts,
    }
}

fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// What the start or end tag `name` does to the text: a line break, a paragraph break, a space.
fn boundary(raw: &mut String, name: &str) {
    match name {
        "br" => raw.push('\n'),
        "p" => break_to(raw, 2), // paragraphs are separated by a blank line
        "td" | "th" => raw.push(' '),
        _ if BLOCK_TAGS.contains(&name) => break_to(raw, 1),
        _ => {}
    }
}

/// Ends `raw` with at least `n` line breaks (block boundaries do not stack up).
fn break_to(raw: &mut String, n: usize) {
    let kept = raw.trim_end_matches([' ', '\t']).len();
    raw.truncate(kept);
    let have = kept - raw.trim_end_matches('\n').len();
    for _ in have..n {
        raw.push('\n');
    }
}

/// Collapses whitespace inside lines, trims them, and keeps at most one blank line in a row.
fn tidy_lines(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = true; // suppress leading blank lines
    for line in raw.split('\n') {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            if !blank_run {
                out.push('\n');
                blank_run = true;
            }
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
        out.push('\n');
        blank_run = false;
    }
    out.trim_end_matches('\n').to_string()
}

/// Normalises plain text the same way (CRLF, whitespace runs, blank lines).
pub fn tidy_plain(text: &str) -> String {
    tidy_lines(&text.replace("\r\n", "\n").replace('\r', "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_and_divs_become_lines() {
        let t = html_to_text("<p>Jordan placed a call.</p><p>Location: 725 Example St<br>Floor 4<br/>Redmond</p><div>47.6, -122.1</div>");
        assert_eq!(
            t.text,
            "Jordan placed a call.\n\nLocation: 725 Example St\nFloor 4\nRedmond\n\n47.6, -122.1"
        );
        let divs = html_to_text("<div>a</div><div>b</div>");
        assert_eq!(divs.text, "a\nb");
    }

    #[test]
    fn every_entity_is_decoded_once() {
        let t = html_to_text(
            "<p>A &amp; B &lt;script&gt; caf&eacute; &#233;&#xE9; &amp;lt; &bogus; &#0; &euro;&frac12;&ZeroWidthSpace;|&notin; &copy 2026</p>",
        );
        assert_eq!(
            t.text,
            "A & B <script> café éé &lt; &bogus; \u{FFFD} €½\u{200B}|∉ © 2026"
        );
    }

    #[test]
    fn scripts_styles_and_comments_are_dropped_and_tags_stripped() {
        let t = html_to_text(
            "<p>Hi<script>alert('<p>x</p>')</script> <img src=x onerror=alert(1)>there<!-- secret <p>no</p> --></p><STYLE>p{}</STYLE><span style=\"x\">!</span><template><p>t</p></template>",
        );
        assert_eq!(t.text, "Hi there\n\n!");
    }

    #[test]
    fn a_quoted_attribute_never_leaks_into_text() {
        let t = html_to_text(
            "<p>Location: <span title=\"a > b <i>x</i>\" data-x='1>2'>Floor 3</span>, Building 7</p>",
        );
        assert_eq!(t.text, "Location: Floor 3, Building 7");
    }

    #[test]
    fn only_the_real_href_is_a_link() {
        let t = html_to_text(
            "<a title=\"href=https://maps.google.com/?q=10.5,10.5\" href=\"https://www.bing.com/maps?cp=47.6~-122.1\">map</a> \
             <a data-href='https://evil.example/?q=1.5,1.5'>x</a>",
        );
        assert_eq!(t.links, ["https://www.bing.com/maps?cp=47.6~-122.1"]);
        assert_eq!(t.link_texts, ["map"]);
        assert_eq!(t.text, "map x");
    }

    #[test]
    fn whitespace_collapses_but_blank_runs_are_limited() {
        let t = html_to_text("\n  <p>  a \n  b </p>\n\n<br><br><br><p>c</p>  ");
        assert_eq!(t.text, "a b\n\nc");
    }

    #[test]
    fn links_are_collected_with_entities_decoded() {
        let t = html_to_text(
            "<a href=\"https://maps.google.com/?q=47.6,-122.1&amp;z=3\">map</a> <A HREF='mailto:a@b.c'>mail</A> <a class=x href=https://x.y/z>z</a>",
        );
        assert_eq!(t.text, "map mail z");
        assert_eq!(
            t.links,
            [
                "https://maps.google.com/?q=47.6,-122.1&z=3",
                "mailto:a@b.c",
                "https://x.y/z"
            ]
        );
    }

    #[test]
    fn lone_angle_brackets_are_text_and_unclosed_markup_is_dropped_like_a_browser() {
        assert_eq!(html_to_text("1 < 2 and 3 > 2").text, "1 < 2 and 3 > 2");
        assert_eq!(html_to_text("text <b unclosed").text, "text");
        assert_eq!(html_to_text("<script>never closed").text, "");
        assert_eq!(html_to_text("<!-- never closed").text, "");
    }

    #[test]
    fn hostile_shapes_stay_linear() {
        let started = std::time::Instant::now();
        let open_tags = "<a".repeat(100_000);
        assert_eq!(html_to_text(&open_tags).text, "");
        let scripts = "<script>x</script>y".repeat(20_000);
        assert_eq!(html_to_text(&scripts).text, "y".repeat(20_000));
        let comments = "<!--".repeat(50_000);
        assert_eq!(html_to_text(&comments).text, "");
        let nested = "<template>".repeat(50_000);
        assert_eq!(html_to_text(&nested).text, "");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn table_cells_are_separated() {
        let t = html_to_text("<table><tr><td>City:</td><td>Redmond</td></tr><tr><td>State:</td><td>WA</td></tr></table>");
        assert_eq!(t.text, "City: Redmond\nState: WA");
    }

    #[test]
    fn plain_text_is_tidied() {
        assert_eq!(tidy_plain("a\r\n\r\n\r\n b  c\rd"), "a\n\nb c\nd");
    }
}
