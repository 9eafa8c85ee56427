//! Supervision of each path a call comes by (pure): from the call records, per path the calls
//! it reported, its last one, and the calls it missed — reported by another path (the poll)
//! and not by this one within the window. A path that missed a call is a trouble naming the
//! path and the call, held for an hour; the call itself alarmed as usual by the path that had it.
//!
//! Only paths that are expected to report every call are held to it: chat notifications while
//! a subscription is live, Graph's emergency call events while their subscription is. The poll
//! is a safety net (it finds only what push has not delivered yet), so it is counted, never
//! blamed. A test call is not held against the call events: Microsoft does not say whether a
//! call to a test number fires one (graph-teams.md B.10).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::calls::{CallRecord, Path};
use crate::local_time::Zone;

/// One path's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathHealth {
    pub path: Path,
    /// Calls this path reported (first or later).
    pub events: u64,
    pub last_event: Option<DateTime<Utc>>,
    /// Calls another path reported and this one did not within the window (expected paths only).
    pub missed: u64,
}

/// A call an expected path did not report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub path: Path,
    /// Who called, as the call says.
    pub caller: String,
    /// When the call was first reported (by another path).
    pub reported_at: DateTime<Utc>,
    /// When the miss became certain (the window ended).
    pub noticed_at: DateTime<Utc>,
}

/// The figures of every path and the misses, at `now`. `expected` are the paths that must
/// report every call; `window` is how long after the first report another path may still come.
pub fn assess(
    records: &[CallRecord],
    expected: &[Path],
    now: DateTime<Utc>,
    window: Duration,
) -> (Vec<PathHealth>, Vec<Miss>) {
    let mut misses = Vec::new();
    let figures = Path::ALL
        .iter()
        .map(|&path| {
            let mut health = PathHealth {
                path,
                events: 0,
                last_event: None,
                missed: 0,
            };
            for record in records {
                let Some(first) = record.sources.iter().map(|s| s.at).min() else {
                    continue; // written before paths were kept
                };
                let seen = record.seen_by(path);
                if let Some(at) = seen {
                    health.events += 1;
                    health.last_event = health.last_event.max(Some(at));
                }
                let window_over = first + window <= now;
                let in_time = seen.is_some_and(|at| at <= first + window);
                let held = expected.contains(&path)
                    && !(path == Path::CallEvent && record.kind == crate::emergency::Kind::Test);
                if held && window_over && !in_time {
                    health.missed += 1;
                    misses.push(Miss {
                        path,
                        caller: record.call.caller.display_name.clone(),
                        reported_at: first,
                        noticed_at: first + window,
                    });
                }
            }
            health
        })
        .collect();
    misses.sort_by_key(|m| m.reported_at);
    (figures, misses)
}

/// The trouble's words for the misses of `path` noticed within `hold` before `now`, newest
/// named: "chat notifications did not report the call of Jordan Rivera at 2026-11-29 14:05:09
/// UTC" (in the appliance's `zone`).
pub fn trouble(
    misses: &[Miss],
    path: Path,
    now: DateTime<Utc>,
    hold: Duration,
    zone: &Zone,
) -> Option<String> {
    let recent: Vec<&Miss> = misses
        .iter()
        .filter(|m| m.path == path && now - m.noticed_at < hold)
        .collect();
    let newest = recent.last()?;
    let mut words = format!(
        "{} did not report the call of {} at {} (another path had it; check the Graph subscription and the Event Hub)",
        path.words(),
        newest.caller,
        zone.format(newest.reported_at)
    );
    if recent.len() > 1 {
        words.push_str(&format!("; {} calls missed in the last hour", recent.len()));
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Sighting;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(secs)
    }

    fn record(caller: &str, sources: &[(Path, i64)]) -> CallRecord {
        let message = serde_json::json!({
            "id": "1", "createdDateTime": "2026-11-29T12:00:00Z", "importance": "high",
            "body": {"contentType": "text", "content": format!("{caller} has placed an Emergency Call to 911")},
        });
        let rules = crate::emergency::Rules::compile(&Default::default()).expect("rules");
        let classification = crate::emergency::classify(&message, &Default::default(), &rules);
        let call = classification.call().expect("an emergency").clone();
        CallRecord {
            key: format!("chat/{caller}"),
            kind: classification.kind(),
            reason: String::new(),
            call,
            zone: None,
            alarmed_locally: true,
            late: false,
            received_at: at(0),
            recognised_at: at(0),
            updates: 0,
            updated_at: None,
            deleted: false,
            notification: None,
            sources: sources
                .iter()
                .map(|&(path, secs)| Sighting { path, at: at(secs) })
                .collect(),
            ended_at: None,
            call_event: None,
        }
    }

    const WINDOW: Duration = Duration::minutes(3);

    #[test]
    fn a_call_only_the_poll_found_is_a_miss_of_push_once_the_window_is_over() {
        let records = [
            record("Sam Okafor", &[(Path::ChatNotification, 0)]),
            record("Jordan Rivera", &[(Path::ChatPoll, 100)]),
        ];
        let expected = [Path::ChatNotification];
        let (_, misses) = assess(&records, &expected, at(200), WINDOW);
        assert!(misses.is_empty(), "push may still come within the window");
        let (figures, misses) = assess(&records, &expected, at(100 + 180), WINDOW);
        assert_eq!(misses.len(), 1);
        assert_eq!(misses[0].caller, "Jordan Rivera");
        let push = &figures[0];
        assert_eq!(
            (push.path, push.events, push.missed),
            (Path::ChatNotification, 1, 1)
        );
        let poll = &figures[1];
        assert_eq!(
            (poll.events, poll.missed, poll.last_event),
            (1, 0, Some(at(100)))
        );
        let words = trouble(
            &misses,
            Path::ChatNotification,
            at(400),
            Duration::hours(1),
            &Zone::utc(),
        )
        .expect("a trouble");
        assert!(
            words.starts_with("chat notifications did not report the call of Jordan Rivera at "),
            "{words}"
        );
        assert!(
            trouble(
                &misses,
                Path::ChatNotification,
                at(280 + 3600),
                Duration::hours(1),
                &Zone::utc()
            )
            .is_none(),
            "held for an hour"
        );
    }

    #[test]
    fn a_late_push_within_the_window_is_no_miss_and_one_after_it_is() {
        let records = [
            record("A", &[(Path::ChatPoll, 0), (Path::ChatNotification, 170)]),
            record("B", &[(Path::ChatPoll, 0), (Path::ChatNotification, 200)]),
        ];
        let (figures, misses) = assess(&records, &[Path::ChatNotification], at(1000), WINDOW);
        assert_eq!(
            misses.iter().map(|m| m.caller.as_str()).collect::<Vec<_>>(),
            ["B"]
        );
        assert_eq!(figures[0].events, 2);
    }

    #[test]
    fn a_path_not_expected_is_never_blamed() {
        let records = [record("A", &[(Path::ChatNotification, 0)])];
        let (figures, misses) = assess(&records, &[Path::ChatNotification], at(1000), WINDOW);
        assert!(misses.is_empty());
        assert_eq!(
            figures[1].missed, 0,
            "the poll is a net, not a path held to every call"
        );
        let (_, misses) = assess(
            &[record("B", &[(Path::ChatPoll, 0)])],
            &[],
            at(1000),
            WINDOW,
        );
        assert!(misses.is_empty(), "no subscription: push is not expected");
    }
}
