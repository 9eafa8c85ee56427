//! HTML → plain text for Teams message bodies.
//!
//! Teams sends chat bodies as a small subset of HTML (`<p>`, `<div>`, `<br>`, `<at>`, `<a>`,
//! `<span>`, `<img>`, tables). This hand-rolled converter keeps the line structure (block
//! elements and `<br>` become newlines), decodes entities, drops `<script>`/`<style>` content
//! and comments, and collects `href`s so map links can be read for coordinates. It never
//! panics and runs in one pass; the output is *text*, still untrusted, never markup.

/// Text of an HTML fragment plus the link targets found in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HtmlText {
    /// Lines separated by `\n`; each line trimmed, no runs of blank lines.
    pub text: String,
    /// `href` values of `<a>` elements, entity-decoded, in document order.
    pub links: Vec<String>,
}

/// Elements whose start or end tag begins a new line.
const BLOCK_TAGS: &[&str] = &[
    "div",
    "br",
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
];

/// Elements whose content is never text.
const HIDDEN_TAGS: &[&str] = &["script", "style", "head", "title", "template", "noscript"];

/// Converts an HTML fragment to text with line breaks kept.
pub fn html_to_text(html: &str) -> HtmlText {
    // Source line breaks are plain whitespace in HTML; only tags make lines.
    let html = html.replace(['\r', '\n'], " ");
    let mut raw = String::with_capacity(html.len());
    let mut links = Vec::new();
    let mut rest = html.as_str();
    while let Some(lt) = rest.find('<') {
        push_decoded(&mut raw, &rest[..lt]);
        let after = &rest[lt..];
        if let Some(body) = after.strip_prefix("<!--") {
            rest = body.find("-->").map_or("", |end| &body[end + 3..]);
            continue;
        }
        let is_tag = after[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
        if !is_tag {
            // A lone '<' (e.g. "a < b") is text.
            raw.push('<');
            rest = &after[1..];
            continue;
        }
        let Some(gt) = after.find('>') else {
            // No '>' anywhere after: the rest is text (and no later '<' can close either).
            push_decoded(&mut raw, after);
            rest = "";
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name = tag_name(tag);
        if !closing && HIDDEN_TAGS.contains(&name.as_str()) {
            rest = skip_past_close(rest, &name);
            continue;
        }
        if name == "br" {
            raw.push('\n');
        } else if name == "p" {
            break_to(&mut raw, 2); // paragraphs are separated by a blank line
        } else if BLOCK_TAGS.contains(&name.as_str()) {
            break_to(&mut raw, 1);
        } else if name == "td" || name == "th" {
            raw.push(' ');
        }
        if name == "a" && !closing {
            if let Some(href) = attribute(tag, "href") {
                let mut decoded = String::with_capacity(href.len());
                push_decoded(&mut decoded, href);
                links.push(decoded);
            }
        }
    }
    push_decoded(&mut raw, rest);
    HtmlText {
        text: tidy_lines(&raw),
        links,
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

/// Lower-case element name of a tag's inside (`p class=x` → `p`, `/div` → `div`, `br/` → `br`).
fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Skips to just after `</name ...>`; to the end if it never closes. Linear: no copy of `rest`.
fn skip_past_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(pos) = rest[from..].find("</") {
        let at = from + pos;
        let candidate = rest.as_bytes().get(at + 2..at + 2 + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
            return rest[at..].find('>').map_or("", |gt| &rest[at + gt + 1..]);
        }
        from = at + 2;
    }
    ""
}

/// Value of attribute `name` inside a tag (quoted with `"` or `'`, or unquoted).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let start = from + pos;
        from = start + name.len();
        let before_ok = lower[..start].ends_with(|c: char| c.is_ascii_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &value[1..];
                inner.find(q).map_or(inner, |end| &inner[..end])
            }
            _ => value
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .unwrap_or_default(),
        });
    }
    None
}

/// Named entities beyond the XML five that Teams and mail clients commonly emit.
const NAMED_ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", ' '),
    ("copy", '©'),
    ("reg", '®'),
    ("deg", '°'),
    ("hellip", '…'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("aacute", 'á'),
    ("agrave", 'à'),
    ("acirc", 'â'),
    ("atilde", 'ã'),
    ("auml", 'ä'),
    ("ccedil", 'ç'),
    ("eacute", 'é'),
    ("egrave", 'è'),
    ("ecirc", 'ê'),
    ("euml", 'ë'),
    ("iacute", 'í'),
    ("icirc", 'î'),
    ("iuml", 'ï'),
    ("ntilde", 'ñ'),
    ("oacute", 'ó'),
    ("ocirc", 'ô'),
    ("otilde", 'õ'),
    ("ouml", 'ö'),
    ("uacute", 'ú'),
    ("ugrave", 'ù'),
    ("uuml", 'ü'),
    ("szlig", 'ß'),
    ("Auml", 'Ä'),
    ("Ouml", 'Ö'),
    ("Uuml", 'Ü'),
    ("Eacute", 'É'),
];

/// Appends `text` with HTML entities decoded; unknown entities are kept literally.
pub fn push_decoded(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let entity = after
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| decode_entity(&after[..semi]).map(|c| (c, semi)));
        match entity {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return Some(match char::from_u32(code) {
            Some(c) if code != 0 => c,
            _ => char::REPLACEMENT_CHARACTER,
        });
    }
    NAMED_ENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, c)| c)
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
    fn entities_are_decoded_once() {
        let t = html_to_text(
            "<p>A &amp; B &lt;script&gt; caf&eacute; &#233;&#xE9; &amp;lt; &bogus; &#0;</p>",
        );
        assert_eq!(t.text, "A & B <script> café éé &lt; &bogus; \u{FFFD}");
    }

    #[test]
    fn scripts_styles_and_comments_are_dropped_and_tags_stripped() {
        let t = html_to_text(
            "<p>Hi<script>alert('x')</script> <img src=x onerror=alert(1)>there<!-- secret --></p><STYLE>p{}</STYLE><span style=\"x\">!</span>",
        );
        assert_eq!(t.text, "Hi there\n\n!");
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
    fn lone_angle_brackets_and_unclosed_tags_do_not_lose_text() {
        assert_eq!(html_to_text("1 < 2 and 3 > 2").text, "1 < 2 and 3 > 2");
        assert_eq!(html_to_text("text <b unclosed").text, "text <b unclosed");
        assert_eq!(html_to_text("<script>never closed").text, "");
        assert_eq!(html_to_text("<!-- never closed").text, "");
    }

    #[test]
    fn hostile_shapes_stay_linear() {
        let started = std::time::Instant::now();
        let open_tags = "<a".repeat(100_000);
        assert_eq!(html_to_text(&open_tags).text.len(), open_tags.len());
        let scripts = "<script>x</script>y".repeat(20_000);
        assert_eq!(html_to_text(&scripts).text, "y".repeat(20_000));
        let comments = "<!--".repeat(50_000);
        assert_eq!(html_to_text(&comments).text, "");
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
