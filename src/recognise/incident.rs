//! One call, one incident (issue 16 item 2): a Graph emergency call event raises its call like
//! a chat message does, and a report of a call another source brought first enriches that
//! call's record instead of alarming again. The decision — which incident a report belongs to
//! — is pure (`correlate`); this file applies it to the call log and the alarm.
//!
//! * The incidents are locked from the decision until the alarm has taken a new call, so a
//!   chat message and its event arriving together cannot both raise.
//! * The second report's key is an alias of the first's record (`CallLog::alias`): a later
//!   edit, redelivery or poll of it finds the record, also after a restart.
//! * Enriching can still alarm: a possible message corroborated by the event is confirmed as a
//!   real call; a call the zones could not place until the event's address came, alarms then.
//! * `callEnded` notes the end on the caller's open call; nothing else of the event alarms.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tokio::sync::MutexGuard;

use super::correlate::{same_call, Incidents, Report, Source};
use super::{path_of, summary, Handled, NewCall, Recogniser};
use crate::alarm::{Event, Source as Actor};
use crate::calls::{CallLog, CallRecord, Path};
use crate::emergency::call_event::{call_from_event, combine};
use crate::emergency::{extract::UNKNOWN_CALLER, EmergencyCall, Kind};
use crate::graph::emergency_events::{self, CallEventType};
use crate::ingest::InboxEntry;
use crate::store::StoreError;

/// How long a second report waits for the first one's record to be written.
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long after its start a call's `callEnded` is still matched to it.
const LONGEST_CALL: Duration = Duration::hours(12);

/// Who called and when, as `call` says.
pub(super) fn report_of(call: &EmergencyCall) -> Report<'_> {
    Report {
        caller_id: call.caller.id.as_deref(),
        upn: call.caller.upn.as_deref(),
        name: Some(call.caller.display_name.as_str()).filter(|n| *n != UNKNOWN_CALLER),
        at: call.created,
    }
}

/// The incidents of the calls recorded in the last two windows before `now` (after a restart,
/// a call's second report still finds its first).
pub(super) fn recent(calls: &CallLog, window: Duration, now: DateTime<Utc>) -> Incidents {
    let mut incidents = Incidents::new(window);
    for record in calls.all("correlation") {
        if record.received_at < now - window * 2 {
            continue;
        }
        let report = report_of(&record.call);
        let chat = [Path::ChatNotification, Path::ChatPoll]
            .iter()
            .any(|p| record.seen_by(*p).is_some())
            || record.sources.is_empty();
        if chat {
            incidents.note(&record.key, &report, Source::Chat, now);
        }
        if record.seen_by(Path::CallEvent).is_some() {
            incidents.note(&record.key, &report, Source::Event, now);
        }
    }
    incidents
}

impl Recogniser {
    /// A Graph emergency call event (decrypted, as Graph sent it).
    pub(super) async fn call_event(
        &self,
        raw: &Value,
        entry: &InboxEntry,
    ) -> Result<Handled, StoreError> {
        let event = match emergency_events::decode(raw) {
            Ok(event) => event,
            Err(error) => {
                // Ingest decoded it before admitting it; only a changed decoder gets here.
                tracing::error!(%error, key = entry.key, "emergency call event not readable");
                return Ok(Handled::NotEmergency);
            }
        };
        let (kind, call) = call_from_event(&event, raw, &self.rules);
        match event.event_type {
            CallEventType::CallStarted => {}
            CallEventType::CallEnded => return self.call_ended(&call).await,
            other => {
                tracing::debug!(?other, id = event.id, "emergency call event noted");
                return Ok(Handled::NotEmergency);
            }
        }
        let key = format!("callevent/{}", event.id);
        if let Some(record) = self.known_call(&self.calls.resolve(&key)?) {
            return Ok(Handled::Updated { key: record.key });
        }
        let report = report_of(&call);
        let mut incidents = self.incidents.lock().await;
        if let Some(first) = incidents.find(&report, Source::Event).map(str::to_string) {
            incidents.note(&first, &report, Source::Event, entry.received_at);
            drop(incidents);
            let joined = self
                .enrich(&first, &key, Path::CallEvent, entry, |record| {
                    let (merged_kind, merged) = combine(&record.call, record.kind, &call, kind);
                    record.kind = merged_kind;
                    record.call = merged;
                    record.call_event = Some(raw.clone());
                })
                .await?;
            if let Some(handled) = joined {
                return Ok(handled);
            }
            incidents = self.incidents.lock().await;
        }
        incidents.note(&key, &report, Source::Event, entry.received_at);
        let reason = format!(
            "Graph emergency call event: {} dialled {}",
            call.caller.display_name,
            call.dial_string.as_deref().unwrap_or("an emergency number")
        );
        self.raise_and_release(
            incidents,
            NewCall {
                key: &key,
                kind,
                reason,
                call: &call,
                path: Path::CallEvent,
                entry,
                call_event: Some(raw),
            },
        )
        .await
    }

    /// A chat message (`call`, of `kind`, reported as `key`) of the call kept as `first`.
    pub(super) async fn join_chat(
        &self,
        first: &str,
        key: &str,
        call: &EmergencyCall,
        kind: Kind,
        entry: &InboxEntry,
    ) -> Result<Option<Handled>, StoreError> {
        self.enrich(first, key, path_of(entry), entry, |record| {
            let (merged_kind, merged) = combine(call, kind, &record.call, record.kind);
            record.kind = merged_kind;
            record.call = merged;
        })
        .await
    }

    /// Raises a new call and lets go of the incidents once the alarm has taken it.
    pub(super) async fn raise_and_release(
        &self,
        incidents: MutexGuard<'_, Incidents>,
        new: NewCall<'_>,
    ) -> Result<Handled, StoreError> {
        self.raise_new(new, Some(incidents)).await
    }

    /// Folds a second source's report (`merge`) into the record kept as `first`, notes that
    /// `path` reported it and that `alias` is that record. `None` when the record cannot be
    /// found: the caller then raises the report as a call of its own (an alarm raised twice
    /// beats a call lost).
    async fn enrich(
        &self,
        first: &str,
        alias: &str,
        path: Path,
        entry: &InboxEntry,
        merge: impl FnOnce(&mut CallRecord),
    ) -> Result<Option<Handled>, StoreError> {
        let written = self.calls.wait_for(first, RECORD_WAIT).await?.is_some();
        // Read again under the lock: another lane may have changed it since.
        let records = self.records.lock().await;
        let found = if written {
            self.calls.get(first)?
        } else {
            None
        };
        let Some(mut record) = found else {
            tracing::error!(
                first,
                alias,
                "the first report's record is not there: raising the second as its own call"
            );
            return Ok(None);
        };
        let was_possible = record.kind == Kind::Possible;
        merge(&mut record);
        record.add_sighting(path, entry.received_at);
        record.updates += 1;
        record.updated_at = Some(Utc::now());
        self.calls.alias(alias, first)?;
        let zone = self.rules.zones().decide(&record.call);
        let summary = summary(&record.call, record.kind, &self.rules);
        if !record.alarmed_locally {
            // Not alarmed here yet: only recorded as possible, or not placed in a zone of
            // this appliance until now.
            if self.alarms_for(record.kind) && zone.alarm_locally {
                self.alarm
                    .send(Event::CallRaised {
                        key: first.to_string(),
                        summary,
                    })
                    .await;
                record.alarmed_locally = true;
                record.zone = zone.zone;
            }
        } else {
            if was_possible && record.kind != Kind::Possible {
                self.alarm
                    .send(Event::Confirm {
                        key: Some(first.to_string()),
                        source: Actor::System,
                        who: None,
                        detail: Some(format!("{} reported the call too", path.words())),
                    })
                    .await;
            }
            self.alarm
                .send(Event::CallUpdated {
                    key: first.to_string(),
                    summary,
                })
                .await;
        }
        tracing::warn!(
            key = first,
            also = path.name(),
            "a second source reported the call: record enriched, no second alarm"
        );
        self.calls.put(&record)?;
        drop(records);
        self.flush().await?;
        Ok(Some(Handled::Updated {
            key: first.to_string(),
        }))
    }

    /// `callEnded`: the end on the caller's most recent open call that the events reported.
    async fn call_ended(&self, ended: &EmergencyCall) -> Result<Handled, StoreError> {
        let report = report_of(ended);
        let records = self.records.lock().await;
        let open = self
            .calls
            .all("call end")
            .into_iter()
            .filter(|r| r.seen_by(Path::CallEvent).is_some() && r.ended_at.is_none())
            .filter(|r| r.call.created <= ended.created)
            .filter(|r| same_call(&report_of(&r.call), &report, LONGEST_CALL))
            .max_by_key(|r| r.call.created);
        let Some(mut record) = open else {
            tracing::info!("callEnded for no open call of this caller");
            return Ok(Handled::NotEmergency);
        };
        record.ended_at = Some(ended.created);
        self.calls.put(&record)?;
        drop(records);
        self.flush().await?;
        Ok(Handled::Ended { key: record.key })
    }
}
