//! Fault injection (429 + `Retry-After` per graph-teams.md D.3, 5xx, slow responses) and the
//! record of every request the fake received.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// `429 Too Many Requests` with `Retry-After: <secs>` (D.3).
    Throttle { retry_after_secs: u64 },
    /// A 5xx status (500, 502, 503, 504).
    ServerError { status: u16 },
    /// Wait this long before handling the request normally.
    Delay(Duration),
}

/// One injection rule: applies to requests whose path starts with `path_prefix` ("" = all)
/// and, when `method` is set, whose method matches; fires `times` times, then disappears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub kind: FaultKind,
    pub times: u32,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Decoded path, e.g. `/v1.0/chats/19:…@thread.v2/messages/1`.
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// Whether an `Authorization` header was present.
    pub authorized: bool,
    /// Request headers, lower-case names; the `authorization` value is replaced by `<redacted>`.
    pub headers: BTreeMap<String, String>,
    /// The request body as text (form bodies of the identity platform, JSON for Graph).
    pub body: String,
    pub at: Instant,
    pub at_utc: DateTime<Utc>,
    /// The status the fake answered (0 while the request is still being handled).
    pub status: u16,
}

#[derive(Default)]
pub struct Faults {
    rules: Vec<Fault>,
    pub log: Vec<RecordedRequest>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.rules.push(fault);
        }
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The delay and the failing fault (if any) for this request, each consuming one use.
    pub fn take(&mut self, method: &str, path: &str) -> (Option<Duration>, Option<FaultKind>) {
        let mut delay = None;
        let mut failure = None;
        for rule in &mut self.rules {
            let matches = path.starts_with(&rule.path_prefix)
                && rule
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !matches || rule.times == 0 {
                continue;
            }
            match &rule.kind {
                FaultKind::Delay(d) if delay.is_none() => {
                    delay = Some(*d);
                    rule.times -= 1;
                }
                FaultKind::Throttle { .. } | FaultKind::ServerError { .. } if failure.is_none() => {
                    failure = Some(rule.kind.clone());
                    rule.times -= 1;
                }
                _ => {}
            }
        }
        self.rules.retain(|r| r.times > 0);
        (delay, failure)
    }
}
