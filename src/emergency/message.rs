//! The text model of a chatMessage: everything readable in it (card attachments first — they
//! are structured — then `subject`, `summary` and the body, HTML or plain) as a list of
//! [`Line`]s, each with its normalised form and its label, plus the link targets (`href`s of
//! the body, card action URLs). Extraction and detection read only this model, never the JSON.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::card;
use super::html;
use super::labels::{parse_label, Field};
use super::rules::Rules;
use super::textnorm::{clean, normalize, normalize_with_offsets};

/// The readable text of a chatMessage on one line (its lines joined by " / "), cleaned of
/// control and bidi characters and cut to `max_chars` with a `…`: what a guard reads on the
/// display or console to decide about a possible emergency. `None` when it has no text.
pub fn excerpt(message: &Value, max_chars: usize) -> Option<String> {
    let object = message.as_object()?;
    let text = MessageText::read(object)
        .lines
        .iter()
        .filter(|l| !l.is_blank())
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    Some(clean(&text, false, max_chars)).filter(|t| !t.is_empty())
}

/// One line of message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// As written (trimmed).
    pub text: String,
    /// [`normalize`]d, for phrase and keyword matching.
    pub norm: String,
    /// A known label and the byte offset of its value in `text`.
    pub label: Option<(Field, usize)>,
    /// The line is nothing but the text of a link ("Open map").
    pub is_link_text: bool,
}

impl Line {
    fn new(text: &str) -> Line {
        let text = text.trim().to_string();
        let norm = normalize(&text);
        let label = parse_label(&text);
        Line {
            text,
            norm,
            label,
            is_link_text: false,
        }
    }

    /// The value after a known label, trimmed.
    pub fn value(&self) -> Option<&str> {
        self.label
            .and_then(|(_, at)| self.text.get(at..))
            .map(str::trim)
    }

    /// The field of the line's label.
    pub fn field(&self) -> Option<Field> {
        self.label.map(|(f, _)| f)
    }

    /// Whether a configured notification phrase is on this line.
    pub fn has_phrase(&self, rules: &Rules) -> bool {
        rules.phrases.iter().any(|p| self.norm.contains(p.as_str()))
    }

    /// Byte offset in `text` just after the first configured phrase on this line.
    pub fn after_phrase(&self, rules: &Rules) -> Option<usize> {
        let (norm, offsets) = normalize_with_offsets(&self.text);
        rules
            .phrases
            .iter()
            .filter_map(|p| norm.find(p.as_str()).map(|at| at + p.len()))
            .min()
            .and_then(|end| offsets.get(end).copied())
            .filter(|&end| self.text.is_char_boundary(end))
    }

    pub fn is_blank(&self) -> bool {
        self.text.is_empty()
    }
}

/// The readable text of a message: card lines first (they are structured), then the body.
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageText {
    pub lines: Vec<Line>,
    /// Link targets from the body HTML, card actions and URLs in the text.
    pub links: Vec<String>,
    pub has_card: bool,
}

impl MessageText {
    pub fn read(object: &Map<String, Value>) -> MessageText {
        let cards = card::read_attachments(object.get("attachments"));
        let body = object.get("body");
        let content = body
            .and_then(|b| b.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let content_type = body
            .and_then(|b| b.get("contentType"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let is_html = content_type.eq_ignore_ascii_case("html")
            || (!content_type.eq_ignore_ascii_case("text") && looks_like_html(content));
        let (body_text, body_links, link_texts) = if is_html {
            let h = html::html_to_text(content);
            (h.text, h.links, h.link_texts)
        } else {
            (html::tidy_plain(content), Vec::new(), Vec::new())
        };
        let mut lines: Vec<Line> = cards.lines.iter().map(|l| Line::new(l)).collect();
        if !lines.is_empty() {
            lines.push(Line::new(""));
        }
        for extra in ["subject", "summary"] {
            if let Some(s) = object.get(extra).and_then(Value::as_str) {
                lines.extend(html::tidy_plain(s).split('\n').map(Line::new));
                lines.push(Line::new(""));
            }
        }
        let link_texts: HashSet<String> = link_texts.into_iter().collect();
        lines.extend(body_text.split('\n').map(|text| {
            let mut line = Line::new(text);
            line.is_link_text = !line.is_blank() && link_texts.contains(&line.text);
            line
        }));
        let mut links = body_links;
        links.extend(cards.links);
        MessageText {
            lines,
            links,
            has_card: cards.found_card,
        }
    }

    /// Values of every line labelled `field`, in order.
    pub fn labelled(&self, field: Field) -> impl Iterator<Item = &str> + '_ {
        self.lines
            .iter()
            .filter(move |l| l.field() == Some(field))
            .filter_map(Line::value)
            .filter(|v| !v.is_empty())
    }

    /// Link targets starting with `scheme` (any casing), without the scheme.
    pub fn links_with_scheme<'a>(&'a self, scheme: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.links.iter().filter_map(move |l| {
            let head = l.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme)
                .then(|| l.get(scheme.len()..))
                .flatten()
        })
    }

    /// Link targets plus URLs written in the text.
    pub fn all_links<'a>(&'a self, rules: &'a Rules) -> impl Iterator<Item = &'a str> + 'a {
        self.links.iter().map(String::as_str).chain(
            self.lines
                .iter()
                .flat_map(|l| rules.patterns.url.find_iter(&l.text).map(|m| m.as_str())),
        )
    }
}

fn looks_like_html(content: &str) -> bool {
    let lower: String = content
        .chars()
        .take(512)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ["<p", "<div", "<br", "</", "<span", "<at"]
        .iter()
        .any(|t| lower.contains(t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpt_is_the_readable_text_on_one_line_and_cut() {
        let message = serde_json::json!({
            "body": {"contentType": "html",
                     "content": "<p>Fire in <b>Lab 2</b>?</p><script>x()</script><p>Call \u{202E}me</p>"}
        });
        assert_eq!(
            super::excerpt(&message, 100).as_deref(),
            Some("Fire in Lab 2? / Call me")
        );
        assert_eq!(super::excerpt(&message, 8).as_deref(), Some("Fire in…"));
        assert_eq!(super::excerpt(&serde_json::json!("text"), 100), None);
    }

    use super::*;
    use serde_json::json;

    fn read(message: Value) -> MessageText {
        MessageText::read(message.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn labels_are_found_in_any_language_and_casing() {
        let t = read(json!({"body":{"contentType":"html","content":
            "<p>STANDORT: Hauptstraße 1</p><p>**Dialed:** 911</p><p>Note: x</p><p>https://a.b/c</p>"}}));
        let labels: Vec<_> = t.lines.iter().map(Line::field).collect();
        assert_eq!(
            labels,
            [
                Some(Field::Location),
                None,
                Some(Field::Dial),
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(t.lines[2].value(), Some("911"));
    }

    #[test]
    fn card_lines_come_first_and_link_lines_are_marked() {
        let card =
            json!({"type":"AdaptiveCard","body":[{"type":"TextBlock","text":"from the card"}]});
        let t = read(json!({
            "attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":card.to_string()}],
            "body":{"contentType":"html","content":"<p>body<br><a href=\"geo:1.5,2.5\">Open map</a></p>"}}));
        let texts: Vec<&str> = t.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["from the card", "", "body", "Open map"]);
        assert!(t.lines[3].is_link_text && !t.lines[2].is_link_text);
        assert_eq!(t.links, ["geo:1.5,2.5"]);
    }

    #[test]
    fn plain_text_is_not_read_as_html_unless_it_looks_like_it() {
        let t = read(json!({"body":{"content":"a < b\r\nc"}}));
        let texts: Vec<&str> = t.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a < b", "c"]);
        let t = read(json!({"body":{"content":"<p>x</p><p>y</p>"}}));
        assert_eq!(t.lines.len(), 3);
    }
}
