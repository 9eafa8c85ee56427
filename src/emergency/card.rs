//! Reading card attachments of a chatMessage.
//!
//! Adaptive cards (`contentType: application/vnd.microsoft.card.adaptive`) arrive with
//! `content` as a JSON *string* of the card; some producers send an object instead, and both
//! are accepted. The walker collects `FactSet` facts as `Title: Value` lines, `TextBlock` /
//! `TextRun` texts, and URLs (`Action.OpenUrl`, `selectAction`), recursing through any
//! container, column set or unknown element up to a fixed depth. Other card types (hero,
//! thumbnail, …) contribute their `title`/`subtitle`/`text` strings.

use serde_json::Value;

/// Depth limit for walking card JSON (cards nest a handful of levels; hostile input may not).
const MAX_DEPTH: usize = 48;

const ADAPTIVE: &str = "application/vnd.microsoft.card.adaptive";

/// What the attachments of one message contribute.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CardContent {
    /// `Title: Value` lines from FactSets, then text lines, in card order.
    pub lines: Vec<String>,
    /// URLs found in actions / `url` fields.
    pub links: Vec<String>,
    /// At least one card could be read.
    pub found_card: bool,
}

/// Reads every card attachment in `attachments` (a JSON array; anything else yields nothing).
pub fn read_attachments(attachments: Option<&Value>) -> CardContent {
    let mut out = CardContent::default();
    let Some(list) = attachments.and_then(Value::as_array) else {
        return out;
    };
    for attachment in list {
        let content_type = attachment
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/vnd.microsoft.card.")
        {
            continue;
        }
        let parsed;
        let card = match attachment.get("content") {
            Some(Value::String(json)) => match serde_json::from_str::<Value>(json) {
                Ok(value) => {
                    parsed = value;
                    &parsed
                }
                Err(_) => continue,
            },
            Some(value @ Value::Object(_)) => value,
            _ => continue,
        };
        out.found_card = true;
        let adaptive = content_type.eq_ignore_ascii_case(ADAPTIVE);
        walk(card, adaptive, 0, &mut out);
    }
    out
}

fn walk(node: &Value, adaptive: bool, depth: usize, out: &mut CardContent) {
    if depth > MAX_DEPTH {
        return;
    }
    match node {
        Value::Array(items) => {
            for item in items {
                walk(item, adaptive, depth + 1, out);
            }
        }
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind.eq_ignore_ascii_case("FactSet") {
                for fact in map
                    .get("facts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let title = fact
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let value = fact
                        .get("value")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    push_fact(out, title, value);
                }
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("text", Value::String(text)) if !adaptive || is_text_element(kind) => {
                        push_text(out, text);
                    }
                    ("title" | "subtitle", Value::String(text)) if !adaptive => {
                        push_text(out, text);
                    }
                    ("url", Value::String(url)) => out.links.push(url.clone()),
                    ("facts", _) if kind.eq_ignore_ascii_case("FactSet") => {}
                    (_, child @ (Value::Array(_) | Value::Object(_))) => {
                        walk(child, adaptive, depth + 1, out);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn is_text_element(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("TextBlock") || kind.eq_ignore_ascii_case("TextRun")
}

fn push_fact(out: &mut CardContent, title: &str, value: &str) {
    let title = title.trim().trim_end_matches(':').trim();
    let mut values = value.lines().map(str::trim).filter(|v| !v.is_empty());
    let first = values.next().unwrap_or_default();
    out.lines.push(if title.is_empty() {
        first.to_string()
    } else {
        format!("{title}: {first}")
    });
    // Multi-line values continue on their own lines, as in a body.
    out.lines.extend(values.map(str::to_string));
}

fn push_text(out: &mut CardContent, text: &str) {
    out.lines.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn adaptive(card: &Value) -> Value {
        json!([{ "contentType": ADAPTIVE, "content": card.to_string() }])
    }

    #[test]
    fn facts_and_text_blocks_from_a_card_string() {
        let card = json!({"type":"AdaptiveCard","body":[
            {"type":"TextBlock","text":"Emergency call"},
            {"type":"FactSet","facts":[{"title":"Caller","value":"Jordan"},{"title":"Dialed:","value":"911"}]}]});
        let c = read_attachments(Some(&adaptive(&card)));
        assert!(c.found_card);
        assert_eq!(c.lines, ["Emergency call", "Caller: Jordan", "Dialed: 911"]);
    }

    #[test]
    fn nested_containers_and_columns_are_walked() {
        let card = json!({"type":"AdaptiveCard","body":[{"type":"Container","items":[
            {"type":"ColumnSet","columns":[{"type":"Column","items":[
                {"type":"FactSet","facts":[{"title":"Location","value":"Floor 4\nBuilding 7"}]}]},
                {"type":"Column","items":[{"type":"TextBlock","text":"Map"}]}]}]}],
            "actions":[{"type":"Action.OpenUrl","title":"Open map","url":"https://www.bing.com/maps?cp=47.6~-122.1"}]});
        let c = read_attachments(Some(&adaptive(&card)));
        assert_eq!(c.lines, ["Location: Floor 4", "Building 7", "Map"]);
        assert_eq!(c.links, ["https://www.bing.com/maps?cp=47.6~-122.1"]);
    }

    #[test]
    fn object_content_and_any_casing_of_content_type_are_accepted() {
        let att = json!([{ "contentType": "Application/VND.Microsoft.Card.Adaptive",
            "content": {"type":"AdaptiveCard","body":[{"type":"textblock","text":"hello"}]}}]);
        assert_eq!(read_attachments(Some(&att)).lines, ["hello"]);
    }

    #[test]
    fn hero_cards_contribute_title_and_text() {
        let att = json!([{ "contentType": "application/vnd.microsoft.card.hero",
            "content": {"title":"Alert","subtitle":"sub","text":"body"}}]);
        let c = read_attachments(Some(&att));
        assert_eq!(c.lines.len(), 3);
        assert!(c.lines.contains(&"body".to_string()));
    }

    #[test]
    fn unreadable_or_foreign_attachments_are_skipped() {
        let att = json!([
            { "contentType": ADAPTIVE, "content": "{not json" },
            { "contentType": "reference", "content": "{\"text\":\"file\"}" },
            { "contentType": ADAPTIVE, "content": 42 },
            "not an object"
        ]);
        assert_eq!(read_attachments(Some(&att)), CardContent::default());
        assert_eq!(
            read_attachments(Some(&json!({"a":1}))),
            CardContent::default()
        );
        assert_eq!(read_attachments(None), CardContent::default());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut card = json!({"type":"TextBlock","text":"deep"});
        for _ in 0..200 {
            card = json!({"type":"Container","items":[card]});
        }
        let c = read_attachments(Some(&json!([{ "contentType": ADAPTIVE, "content": card }])));
        assert!(c.found_card);
        assert!(c.lines.is_empty());
    }
}
