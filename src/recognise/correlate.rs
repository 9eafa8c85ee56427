//! One call, one incident, whichever source reports it first (pure; issue 16 item 2): the
//! chat notification of a call and its Graph emergency call event are one incident when they
//! name the same caller and are at most a window apart (default 3 minutes,
//! `ingest.path_window_secs`). The first raises the alarm; the second is matched to the
//! first's record through [`Incidents`], enriches it and never alarms again.
//!
//! The same caller: the Entra object id when both reports carry one, else the user principal
//! name (without case) when both do; a pair that differs means two people. Graph's event names
//! the caller by UPN and display name only, and a chat message often by object id and display
//! name only: when no id or UPN can be compared, the display names are (without case or extra
//! spaces; an unnamed caller matches nobody). Two people of one name calling within the window
//! stay two incidents as far as possible, because an incident takes at most one report of each
//! source.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, Duration, Utc};

/// The default window between the two reports of one call.
pub const DEFAULT_WINDOW: Duration = Duration::minutes(3);

/// Who called and when, as one source reports it.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Entra object id, when the source names it.
    pub caller_id: Option<&'a str>,
    /// User principal name, when the source names it.
    pub upn: Option<&'a str>,
    /// Display name, when the source names one (not a placeholder).
    pub name: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Whether two reports are of one call.
pub fn same_call(a: &Report<'_>, b: &Report<'_>, window: Duration) -> bool {
    // The time first: it is one comparison, and an emergency looks through every incident of
    // the last two windows before it alarms.
    (a.at - b.at).abs() <= window && same_caller(a, b)
}

/// A name as the comparisons read it: trimmed, and absent when empty.
fn present(x: Option<&str>) -> Option<&str> {
    x.map(str::trim).filter(|x| !x.is_empty())
}

fn same_caller(a: &Report<'_>, b: &Report<'_>) -> bool {
    let pairs = [
        (present(a.caller_id), present(b.caller_id), false),
        (present(a.upn), present(b.upn), true),
    ];
    let mut compared = false;
    for (x, y, fold) in pairs {
        if let (Some(x), Some(y)) = (x, y) {
            compared = true;
            let equal = if fold {
                x.eq_ignore_ascii_case(y)
            } else {
                x == y
            };
            if !equal {
                return false;
            }
        }
    }
    if compared {
        return true;
    }
    matches!((present(a.name), present(b.name)), (Some(x), Some(y)) if same_name(x, y))
}

/// Whether two display names are one, word by word without case, however they are spaced
/// (compared in place: no allocation per incident looked at).
fn same_name(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.split_whitespace(), b.split_whitespace());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if lowercase(p).eq(lowercase(q)) => {}
            _ => return false,
        }
    }
}

/// A caller's names as hashes, each of the form its comparison above reads (the id trimmed,
/// the UPN trimmed and without ASCII case, the display name word by word without case):
/// equal names have equal hashes, so different hashes are different callers without reading
/// the names. [`Incidents::find`] looks through every incident of the last two windows before
/// an emergency alarms; reading each incident's strings (cold in memory)
/// cost about 80 µs per call event with 400 incidents (perf of `cargo bench --bench alarm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    caller_id: Option<u64>,
    upn: Option<u64>,
    name: Option<u64>,
}

impl Fingerprint {
    fn of(report: &Report<'_>) -> Fingerprint {
        let hash = |feed: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            feed(&mut hasher);
            hasher.finish()
        };
        Fingerprint {
            caller_id: present(report.caller_id).map(|id| hash(&|h| id.hash(h))),
            upn: present(report.upn)
                .map(|upn| hash(&|h| upn.bytes().for_each(|b| h.write_u8(b.to_ascii_lowercase())))),
            name: present(report.name).map(|name| {
                hash(&|h| {
                    for word in name.split_whitespace() {
                        lowercase(word).for_each(|c| h.write_u32(u32::from(c)));
                        h.write_u32(u32::MAX); // not a char: the end of a word
                    }
                })
            }),
        }
    }

    /// False when [`same_caller`] is certainly false; true when it may be true.
    fn may_match(&self, other: &Fingerprint) -> bool {
        let mut compared = false;
        for (x, y) in [(self.caller_id, other.caller_id), (self.upn, other.upn)] {
            if let (Some(x), Some(y)) = (x, y) {
                if x != y {
                    return false;
                }
                compared = true;
            }
        }
        compared || matches!((self.name, other.name), (Some(x), Some(y)) if x == y)
    }
}

fn lowercase(word: &str) -> impl Iterator<Item = char> + '_ {
    word.chars().flat_map(char::to_lowercase)
}

/// A source of reports, as correlation tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The security-desk chat message (notified or found by the poll).
    Chat,
    /// The Graph emergency call event.
    Event,
}

/// One incident: the key its record is kept under, its caller, when, which sources reported it.
#[derive(Debug, Clone)]
struct Incident {
    key: String,
    caller_id: Option<String>,
    upn: Option<String>,
    name: Option<String>,
    at: DateTime<Utc>,
    chat: bool,
    event: bool,
    /// Of the names above.
    fingerprint: Fingerprint,
}

impl Incident {
    fn report(&self) -> Report<'_> {
        Report {
            caller_id: self.caller_id.as_deref(),
            upn: self.upn.as_deref(),
            name: self.name.as_deref(),
            at: self.at,
        }
    }

    fn has(&self, source: Source) -> bool {
        match source {
            Source::Chat => self.chat,
            Source::Event => self.event,
        }
    }
}

/// The incidents of the last two windows, to match a second source's report to the first's.
#[derive(Debug, Clone)]
pub struct Incidents {
    window: Duration,
    recent: Vec<Incident>,
}

impl Incidents {
    /// No incidents yet; reports at most `window` apart may be one call.
    pub fn new(window: Duration) -> Incidents {
        Incidents {
            window,
            recent: Vec::new(),
        }
    }

    /// The key of the incident `report` (from `source`) belongs to: the nearest in time of the
    /// same caller within the window that `source` has not reported yet.
    pub fn find(&self, report: &Report<'_>, source: Source) -> Option<&str> {
        let fingerprint = Fingerprint::of(report);
        self.recent
            .iter()
            .filter(|i| {
                // `same_call`, with the fingerprints before the names.
                !i.has(source)
                    && (i.at - report.at).abs() <= self.window
                    && i.fingerprint.may_match(&fingerprint)
                    && same_caller(&i.report(), report)
            })
            .min_by_key(|i| (i.at - report.at).abs())
            .map(|i| i.key.as_str())
    }

    /// Notes that `source` reported the incident kept as `key` (a new one, or the one
    /// [`Incidents::find`] gave), and forgets incidents older than two windows before `now`.
    pub fn note(&mut self, key: &str, report: &Report<'_>, source: Source, now: DateTime<Utc>) {
        let horizon = now - self.window * 2;
        self.recent.retain(|i| i.at >= horizon);
        let owned = |x: Option<&str>| x.map(str::to_string);
        let index = match self.recent.iter().position(|i| i.key == key) {
            Some(found) => found,
            None => {
                self.recent.push(Incident {
                    key: key.to_string(),
                    caller_id: None,
                    upn: None,
                    name: None,
                    at: report.at,
                    chat: false,
                    event: false,
                    fingerprint: Fingerprint::of(report),
                });
                self.recent.len() - 1
            }
        };
        let incident = &mut self.recent[index];
        incident.caller_id = incident
            .caller_id
            .take()
            .or_else(|| owned(report.caller_id));
        incident.upn = incident.upn.take().or_else(|| owned(report.upn));
        incident.name = incident.name.take().or_else(|| owned(report.name));
        incident.fingerprint = Fingerprint::of(&incident.report());
        incident.at = incident.at.min(report.at);
        match source {
            Source::Chat => incident.chat = true,
            Source::Event => incident.event = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(secs)
    }

    fn report(id: Option<&'static str>, upn: Option<&'static str>, secs: i64) -> Report<'static> {
        Report {
            caller_id: id,
            upn,
            name: None,
            at: at(secs),
        }
    }

    fn named(name: &'static str, secs: i64) -> Report<'static> {
        Report {
            name: Some(name),
            ..report(None, None, secs)
        }
    }

    #[test]
    fn the_same_caller_within_the_window_is_one_call_in_either_order() {
        let chat = report(Some("oid-1"), None, 0);
        let event = report(Some("oid-1"), Some("j@contoso.com"), 180);
        assert!(same_call(&chat, &event, DEFAULT_WINDOW));
        assert!(same_call(&event, &chat, DEFAULT_WINDOW));
        assert!(!same_call(
            &chat,
            &report(Some("oid-1"), None, 181),
            DEFAULT_WINDOW
        ));
    }

    #[test]
    fn upns_match_without_case_object_ids_exactly_and_nothing_matches_nothing() {
        let a = report(None, Some("Jordan.Rivera@Contoso.com"), 0);
        assert!(same_call(
            &a,
            &report(None, Some("jordan.rivera@contoso.com"), 5),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(Some("OID"), None, 0),
            &report(Some("oid"), None, 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(None, None, 0),
            &report(None, None, 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &report(None, Some(" "), 0),
            &report(None, Some(" "), 0),
            DEFAULT_WINDOW
        ));
        assert!(!same_call(
            &a,
            &report(None, Some("sam@contoso.com"), 0),
            DEFAULT_WINDOW
        ));
    }

    #[test]
    fn names_decide_only_when_no_id_or_upn_can_be_compared() {
        // The chat message names the object id, the event the UPN: only the names compare.
        let chat = Report {
            name: Some("Jordan  Rivera"),
            ..report(Some("oid-1"), None, 0)
        };
        let event = Report {
            name: Some("jordan rivera"),
            ..report(None, Some("jordan.rivera@contoso.com"), 30)
        };
        assert!(same_call(&chat, &event, DEFAULT_WINDOW));
        assert!(!same_call(&chat, &named("Sam Okafor", 30), DEFAULT_WINDOW));
        // Comparable ids that differ are two people, whatever their names.
        let other = Report {
            name: Some("Jordan Rivera"),
            ..report(Some("oid-2"), None, 30)
        };
        assert!(!same_call(&chat, &other, DEFAULT_WINDOW));
        assert!(!same_call(&named(" ", 0), &named(" ", 0), DEFAULT_WINDOW));
        // Word by word: not a prefix, not the words run together; case folded beyond ASCII.
        for (a, b, same) in [
            ("Jordan", "Jordan Rivera", false),
            ("JordanRivera", "Jordan Rivera", false),
            ("ÉMILE Zoë", " émile  ZOË ", true),
            ("Émile Zoë", "Emile Zoe", false),
        ] {
            assert_eq!(
                same_call(&named(a, 0), &named(b, 0), DEFAULT_WINDOW),
                same,
                "{a:?} and {b:?}"
            );
        }
    }

    proptest::proptest! {
        /// The fingerprints never tell two reports of one caller apart.
        #[test]
        fn fingerprints_never_part_one_caller(
            ids in proptest::array::uniform4(proptest::option::of("[aA ]{0,3}")),
            names in proptest::array::uniform2(proptest::option::of("[eEÉé ]{0,4}")),
        ) {
            let [id_a, id_b, upn_a, upn_b] = &ids;
            let a = Report {
                caller_id: id_a.as_deref(),
                upn: upn_a.as_deref(),
                name: names[0].as_deref(),
                at: at(0),
            };
            let b = Report {
                caller_id: id_b.as_deref(),
                upn: upn_b.as_deref(),
                name: names[1].as_deref(),
                at: at(0),
            };
            if same_caller(&a, &b) {
                proptest::prop_assert!(Fingerprint::of(&a).may_match(&Fingerprint::of(&b)));
            }
        }
    }

    #[test]
    fn an_incident_takes_one_report_of_each_source_and_is_forgotten_after_two_windows() {
        let mut incidents = Incidents::new(DEFAULT_WINDOW);
        let first = named("Jordan Rivera", 0);
        assert_eq!(incidents.find(&first, Source::Event), None);
        incidents.note("chat/1", &first, Source::Chat, at(0));
        let event = named("Jordan Rivera", 60);
        assert_eq!(incidents.find(&event, Source::Event), Some("chat/1"));
        assert_eq!(
            incidents.find(&named("Jordan Rivera", 10), Source::Chat),
            None,
            "a second chat message of the same name is another call"
        );
        incidents.note("chat/1", &event, Source::Event, at(60));
        assert_eq!(
            incidents.find(&named("Jordan Rivera", 70), Source::Event),
            None,
            "the incident has its event"
        );
        // A second person of the same name: a new incident, matched to its own event.
        incidents.note("chat/2", &named("Jordan Rivera", 90), Source::Chat, at(90));
        assert_eq!(
            incidents.find(&named("Jordan Rivera", 100), Source::Event),
            Some("chat/2")
        );
        incidents.note("x", &named("Sam", 1000), Source::Chat, at(1000));
        assert_eq!(
            incidents.find(&named("Jordan Rivera", 100), Source::Event),
            None,
            "forgotten after two windows"
        );
    }
}
