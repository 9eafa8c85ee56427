//! Reading the text of a message (body HTML/text plus card attachments) into labelled lines,
//! and building the [`EmergencyCall`]: caller, UPN, call-back number, ids, timestamps.
//! Every extracted string passes through `clean` (controls and bidi overrides removed,
//! length capped); nothing is escaped here — see the note on [`EmergencyCall`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::signals::{self, Detection};
use super::{card, html, rules::normalize, Caller, Context, EmergencyCall, Rules};

/// Display name used when the message names no caller at all.
pub const UNKNOWN_CALLER: &str = "Unknown caller";

/// Longest single-line value kept (characters).
pub(crate) const MAX_FIELD_CHARS: usize = 256;
/// Longest multi-line location text kept (characters).
pub(crate) const MAX_TEXT_CHARS: usize = 2048;

/// What a labelled line (`Label: value`, or a card fact) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Caller,
    Upn,
    Callback,
    Dial,
    Location,
    Site,
    Street,
    City,
    State,
    PostalCode,
    Country,
    Latitude,
    Longitude,
    Coordinates,
}

impl Field {
    /// Whether a bare configured number on a line with this label may be the dial string
    /// (not on address, phone or coordinate lines: "112 Main Street" is not a call to 112).
    pub fn may_hold_dial_string(self) -> bool {
        matches!(self, Field::Caller | Field::Dial)
    }
}

/// Known labels (normalised, without the colon), English and the default languages.
const LABELS: &[(&str, Field)] = &[
    ("caller", Field::Caller),
    ("caller name", Field::Caller),
    ("name", Field::Caller),
    ("llamante", Field::Caller),
    ("appelant", Field::Caller),
    ("anrufer", Field::Caller),
    ("chiamante", Field::Caller),
    ("chamador", Field::Caller),
    ("beller", Field::Caller),
    ("upn", Field::Upn),
    ("user principal name", Field::Upn),
    ("email", Field::Upn),
    ("e-mail", Field::Upn),
    ("sip", Field::Upn),
    ("sip address", Field::Upn),
    ("correo", Field::Upn),
    ("courriel", Field::Upn),
    ("callback number", Field::Callback),
    ("call-back number", Field::Callback),
    ("call back number", Field::Callback),
    ("callback", Field::Callback),
    ("caller number", Field::Callback),
    ("caller id", Field::Callback),
    ("phone", Field::Callback),
    ("phone number", Field::Callback),
    ("number", Field::Callback),
    ("telephone", Field::Callback),
    ("tel", Field::Callback),
    ("teléfono", Field::Callback),
    ("téléphone", Field::Callback),
    ("numéro", Field::Callback),
    ("numéro de rappel", Field::Callback),
    ("telefon", Field::Callback),
    ("telefonnummer", Field::Callback),
    ("rückrufnummer", Field::Callback),
    ("telefono", Field::Callback),
    ("telefone", Field::Callback),
    ("telefoonnummer", Field::Callback),
    ("terugbelnummer", Field::Callback),
    ("dialed", Field::Dial),
    ("dialled", Field::Dial),
    ("dialed number", Field::Dial),
    ("dialled number", Field::Dial),
    ("number dialed", Field::Dial),
    ("number dialled", Field::Dial),
    ("dial string", Field::Dial),
    ("emergency number", Field::Dial),
    ("called number", Field::Dial),
    ("número marcado", Field::Dial),
    ("numéro composé", Field::Dial),
    ("numéro d'urgence", Field::Dial),
    ("gewählte nummer", Field::Dial),
    ("notrufnummer", Field::Dial),
    ("numero composto", Field::Dial),
    ("numero di emergenza", Field::Dial),
    ("número discado", Field::Dial),
    ("número de emergência", Field::Dial),
    ("gekozen nummer", Field::Dial),
    ("alarmnummer", Field::Dial),
    ("location", Field::Location),
    ("emergency location", Field::Location),
    ("emergency address", Field::Location),
    ("address", Field::Location),
    ("ubicación", Field::Location),
    ("dirección", Field::Location),
    ("emplacement", Field::Location),
    ("adresse", Field::Location),
    ("localisation", Field::Location),
    ("standort", Field::Location),
    ("notfalladresse", Field::Location),
    ("posizione", Field::Location),
    ("indirizzo", Field::Location),
    ("localização", Field::Location),
    ("endereço", Field::Location),
    ("locatie", Field::Location),
    ("adres", Field::Location),
    ("site", Field::Site),
    ("network site", Field::Site),
    ("location name", Field::Site),
    ("location description", Field::Site),
    ("description", Field::Site),
    ("place", Field::Site),
    ("building", Field::Site),
    ("sitio", Field::Site),
    ("lugar", Field::Site),
    ("lieu", Field::Site),
    ("bâtiment", Field::Site),
    ("gebäude", Field::Site),
    ("sede", Field::Site),
    ("edificio", Field::Site),
    ("edifício", Field::Site),
    ("gebouw", Field::Site),
    ("street", Field::Street),
    ("street address", Field::Street),
    ("calle", Field::Street),
    ("rue", Field::Street),
    ("straße", Field::Street),
    ("strasse", Field::Street),
    ("via", Field::Street),
    ("rua", Field::Street),
    ("straat", Field::Street),
    ("city", Field::City),
    ("town", Field::City),
    ("ciudad", Field::City),
    ("ville", Field::City),
    ("stadt", Field::City),
    ("ort", Field::City),
    ("città", Field::City),
    ("cidade", Field::City),
    ("plaats", Field::City),
    ("state", Field::State),
    ("province", Field::State),
    ("state/province", Field::State),
    ("state or province", Field::State),
    ("region", Field::State),
    ("estado", Field::State),
    ("provincia", Field::State),
    ("bundesland", Field::State),
    ("regione", Field::State),
    ("provincie", Field::State),
    ("postal code", Field::PostalCode),
    ("postcode", Field::PostalCode),
    ("zip", Field::PostalCode),
    ("zip code", Field::PostalCode),
    ("código postal", Field::PostalCode),
    ("code postal", Field::PostalCode),
    ("plz", Field::PostalCode),
    ("postleitzahl", Field::PostalCode),
    ("cap", Field::PostalCode),
    ("cep", Field::PostalCode),
    ("country", Field::Country),
    ("country/region", Field::Country),
    ("country or region", Field::Country),
    ("país", Field::Country),
    ("pays", Field::Country),
    ("land", Field::Country),
    ("paese", Field::Country),
    ("latitude", Field::Latitude),
    ("lat", Field::Latitude),
    ("breitengrad", Field::Latitude),
    ("longitude", Field::Longitude),
    ("lon", Field::Longitude),
    ("lng", Field::Longitude),
    ("long", Field::Longitude),
    ("längengrad", Field::Longitude),
    ("coordinates", Field::Coordinates),
    ("coords", Field::Coordinates),
    ("gps", Field::Coordinates),
    ("geo", Field::Coordinates),
    ("coordenadas", Field::Coordinates),
    ("coordonnées", Field::Coordinates),
    ("koordinaten", Field::Coordinates),
    ("coordinate", Field::Coordinates),
    ("coördinaten", Field::Coordinates),
];

/// One line of message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// As written (trimmed).
    pub text: String,
    /// [`normalize`]d, for phrase and keyword matching.
    pub norm: String,
    /// A known label and the byte offset of its value in `text`.
    pub label: Option<(Field, usize)>,
}

impl Line {
    fn new(text: &str) -> Line {
        let text = text.trim().to_string();
        let norm = normalize(&text);
        let label = parse_label(&text);
        Line { text, norm, label }
    }

    /// The value after a known label, trimmed.
    pub fn value(&self) -> Option<&str> {
        self.label.map(|(_, at)| self.text[at..].trim())
    }

    /// Whether a configured notification phrase is on this line.
    pub fn has_phrase(&self, rules: &Rules) -> bool {
        rules.phrases.iter().any(|p| self.norm.contains(p.as_str()))
    }

    pub fn is_blank(&self) -> bool {
        self.text.is_empty()
    }
}

fn parse_label(text: &str) -> Option<(Field, usize)> {
    let colon = text.find([':', '：'])?;
    let label = &text[..colon];
    if label.len() > 40 {
        return None;
    }
    let label = normalize(
        label
            .trim_start_matches(['*', '-', '•', '#', ' '])
            .trim_end_matches('*'),
    );
    let field = LABELS.iter().find(|(l, _)| *l == label)?.1;
    let after = colon + text[colon..].chars().next().map_or(1, char::len_utf8);
    let value = &text[after..];
    // "**Location:** x" (markdown bold in cards)
    let skipped = value.len() - value.trim_start_matches('*').len();
    Some((field, after + skipped))
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
        let (body_text, body_links) = if is_html {
            let h = html::html_to_text(content);
            (h.text, h.links)
        } else {
            (html::tidy_plain(content), Vec::new())
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
        lines.extend(body_text.split('\n').map(Line::new));
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
            .filter(move |l| l.label.is_some_and(|(f, _)| f == field))
            .filter_map(Line::value)
            .filter(|v| !v.is_empty())
    }

    /// Link targets starting with `scheme` (any casing), without the scheme.
    pub fn links_with_scheme<'a>(&'a self, scheme: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.links.iter().filter_map(move |l| {
            let head = l.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme)
                .then(|| &l[scheme.len()..])
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
    let lower = content
        .get(..content.len().min(512))
        .unwrap_or(content)
        .to_ascii_lowercase();
    ["<p", "<div", "<br", "</", "<span", "<at"]
        .iter()
        .any(|t| lower.contains(t))
}

/// Removes control characters (except `\n` when `multiline`), bidi embedding/override/isolate
/// marks and zero-width no-break spaces; caps the length at `max_chars`, adding `…` when cut.
pub(crate) fn clean(text: &str, multiline: bool, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
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
        if count == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim().to_string()
}

/// [`clean`] for a single-line value; `None` when nothing is left.
pub(crate) fn clean_field(text: &str) -> Option<String> {
    Some(clean(text, false, MAX_FIELD_CHARS)).filter(|s| !s.is_empty())
}

fn timestamp(object: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    let s = object.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn string_at(object: &Map<String, Value>, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(|s| clean(s, false, MAX_FIELD_CHARS))
        .unwrap_or_default()
}

/// Extracts the call from a message whatever its classification (used by
/// [`super::merge_update`]); `None` if `message` is not a JSON object.
pub fn extract(message: &Value, context: &Context, rules: &Rules) -> Option<EmergencyCall> {
    let object = message.as_object()?;
    let text = MessageText::read(object);
    let found = signals::detect(object, &text, context, rules);
    Some(build_call(message, object, &text, &found, context, rules))
}

pub(crate) fn build_call(
    message: &Value,
    object: &Map<String, Value>,
    text: &MessageText,
    found: &Detection,
    context: &Context,
    rules: &Rules,
) -> EmergencyCall {
    let created = timestamp(object, "createdDateTime")
        .or_else(|| timestamp(object, "lastModifiedDateTime"))
        .or(context.received_at)
        .unwrap_or_default();
    EmergencyCall {
        caller: caller(object, text, found, rules),
        callback_number: callback_number(text, found, rules),
        dial_string: found.dial.as_ref().map(|d| d.digits.clone()),
        is_test: found.dial.as_ref().is_some_and(|d| d.is_test),
        location: found.location.clone(),
        message_id: string_at(object, "id"),
        chat_id: string_at(object, "chatId"),
        created,
        raw: message.clone(),
    }
}

fn caller(
    object: &Map<String, Value>,
    text: &MessageText,
    found: &Detection,
    rules: &Rules,
) -> Caller {
    let user = object
        .get("from")
        .and_then(|f| f.get("user"))
        .and_then(Value::as_object);
    let user_str = |key: &str| user.and_then(|u| u.get(key)).and_then(Value::as_str);
    let display_name = user_str("displayName")
        .and_then(clean_field)
        .or_else(|| text.labelled(Field::Caller).find_map(clean_field))
        .or_else(|| name_before_phrase(text, found.phrase_line, rules))
        .unwrap_or_else(|| UNKNOWN_CALLER.to_string());
    let upn = user_str("userPrincipalName")
        .or_else(|| user_str("email"))
        .and_then(|u| first_email(u, rules))
        .or_else(|| {
            text.labelled(Field::Upn)
                .find_map(|v| first_email(v, rules))
        })
        .or_else(|| {
            text.links_with_scheme("mailto:")
                .find_map(|l| first_email(l, rules))
        })
        .or_else(|| text.lines.iter().find_map(|l| first_email(&l.text, rules)));
    Caller {
        display_name,
        id: signals::sender_id(object).and_then(clean_field),
        upn,
    }
}

fn first_email(text: &str, rules: &Rules) -> Option<String> {
    rules
        .patterns
        .email
        .find(text)
        .and_then(|m| clean_field(m.as_str()))
}

/// "Jordan Rivera (+1 425 555 0123) has placed an emergency call" → "Jordan Rivera".
fn name_before_phrase(
    text: &MessageText,
    phrase_line: Option<usize>,
    rules: &Rules,
) -> Option<String> {
    let line = &text.lines.get(phrase_line?)?.text;
    let lower = line.to_lowercase();
    if lower.len() != line.len() {
        return None; // case folding changed byte offsets; do not guess
    }
    let at = rules
        .phrases
        .iter()
        .filter_map(|p| lower.find(p.as_str()))
        .min()?;
    let before = line[..at].trim();
    let before = match before.find('(') {
        Some(paren) => before[..paren].trim(),
        None => before,
    };
    clean_field(before)
}

/// A labelled number with at least 7 digits, a `tel:` link, or a phone-looking number on the
/// phrase line or anywhere in the text.
fn callback_number(text: &MessageText, found: &Detection, rules: &Rules) -> Option<String> {
    let phone_ok = |digits: &str| (7..=15).contains(&digits.len());
    let tidy = |raw: &str| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let plus = if raw.trim_start().starts_with('+') {
            "+"
        } else {
            ""
        };
        phone_ok(&digits).then(|| format!("{plus}{digits}"))
    };
    let from_pattern = |line: &str| {
        rules
            .patterns
            .phone
            .find(line)
            .and_then(|m| tidy(m.as_str()))
    };
    text.labelled(Field::Callback)
        .find_map(tidy)
        .or_else(|| text.links_with_scheme("tel:").find_map(tidy))
        .or_else(|| {
            found
                .phrase_line
                .and_then(|i| text.lines.get(i))
                .and_then(|l| from_pattern(&l.text))
        })
        .or_else(|| {
            text.lines
                .iter()
                .filter(|l| l.label.is_none_or(|(f, _)| f == Field::Caller))
                .find_map(|l| from_pattern(&l.text))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(message: Value) -> MessageText {
        MessageText::read(message.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn labels_are_found_in_any_language_and_casing() {
        let t = read(json!({"body":{"contentType":"html","content":
            "<p>STANDORT: Hauptstraße 1</p><p>**Dialed:** 911</p><p>Note: x</p><p>https://a.b/c</p>"}}));
        let labels: Vec<_> = t.lines.iter().map(|l| l.label.map(|(f, _)| f)).collect();
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
    fn clean_strips_bidi_and_controls_and_caps_length() {
        assert_eq!(clean("ab\u{202E}cd\u{0007}e\nf", false, 100), "abcde f");
        assert_eq!(clean("l1\nl2\u{2066}", true, 100), "l1\nl2");
        assert_eq!(clean(&"x".repeat(10), false, 4), "xxxx…");
        assert_eq!(clean_field("\u{202E} \u{200F}"), None);
    }

    #[test]
    fn caller_name_from_the_phrase_line_when_sender_is_unknown() {
        let rules = Rules::default();
        let m = json!({"body":{"contentType":"text","content":
            "Jordan Rivera (+1 425 555 0123) has placed an Emergency Call to 911"}});
        let call = extract(&m, &Context::default(), &rules).unwrap_or_default();
        assert_eq!(call.caller.display_name, "Jordan Rivera");
        assert_eq!(call.caller.id, None);
        assert_eq!(call.callback_number.as_deref(), Some("+14255550123"));
        assert_eq!(call.dial_string.as_deref(), Some("911"));
    }

    #[test]
    fn upn_from_fact_mailto_or_text() {
        let rules = Rules::default();
        let upn = |content: &str| {
            let m = json!({"body":{"contentType":"html","content":content}});
            extract(&m, &Context::default(), &rules).and_then(|c| c.caller.upn)
        };
        assert_eq!(
            upn("<p>UPN: jo@contoso.com</p>").as_deref(),
            Some("jo@contoso.com")
        );
        assert_eq!(
            upn("<a href=\"MAILTO:Jo.R@Contoso.com\">Jo</a>").as_deref(),
            Some("Jo.R@Contoso.com")
        );
        assert_eq!(
            upn("<p>reach me at a.b@c.org.</p>").as_deref(),
            Some("a.b@c.org")
        );
        assert_eq!(upn("<p>nothing here @ all</p>"), None);
    }

    #[test]
    fn ids_and_created_time_fall_back_sensibly() {
        let rules = Rules::default();
        let received = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let ctx = Context {
            received_at: received,
            ..Context::default()
        };
        let m = json!({"id": "1", "createdDateTime": "not a time"});
        let call = extract(&m, &ctx, &rules).unwrap_or_default();
        assert_eq!(Some(call.created), received);
        assert_eq!(call.chat_id, "");
        assert_eq!(call.message_id, "1");
        let m = json!({"createdDateTime": "2025-03-01T10:15:23.456+01:00"});
        let call = extract(&m, &ctx, &rules).unwrap_or_default();
        assert_eq!(call.created.to_rfc3339(), "2025-03-01T09:15:23.456+00:00");
        assert_eq!(call.raw, m);
    }
}
