//! `beacon replay FILE.jsonl`: Event Hub record bodies fed through the real ingest stage and
//! recognition, for drills and tests.

use std::path::Path;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;

use super::cloud_link::{graph_source, recogniser};
use super::{AppError, Core};
use crate::alarm_task;
use crate::calls::CallLog;
use crate::config::Config;
use crate::health::IngestSnapshot;
use crate::ingest::{self, Record, RecordOutcome};
use crate::recognise::MessageSource;
use crate::store::StoreError;

/// Result of `beacon replay`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub lines: usize,
    /// Calls recorded by this replay (and before it, in the same store).
    pub calls: Vec<CallBrief>,
    /// The alarm after the replay: idle, alerting or acknowledged.
    pub alarm: String,
    /// Notifications still waiting (a basic notification whose message could not be read).
    pub pending: usize,
    pub handed_off: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub ignored: usize,
    pub counters: IngestSnapshot,
}

/// One recorded call, as `beacon replay` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CallBrief {
    pub key: String,
    pub kind: crate::emergency::Kind,
    pub alarmed_locally: bool,
    pub updates: u32,
    pub location: Option<String>,
}

/// `beacon replay FILE.jsonl`: each non-empty line is one record body, through the same stage
/// and recognition. Basic notifications' messages come from `fixtures` (`<message-id>.json`)
/// or, when sign-in is configured, from Graph.
pub async fn replay(
    config: Config,
    file: &Path,
    fixtures: Option<&Path>,
) -> Result<ReplaySummary, AppError> {
    let text = tokio::fs::read(file).await.map_err(|e| AppError::Replay {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let core = Core::open(&config)?;
    let (alarm, alarm_task) =
        alarm_task::spawn(config.alarm.clone(), core.store.clone(), Utc::now());
    let source = match fixtures {
        Some(dir) => MessageSource::Fixtures(dir.to_path_buf()),
        None => graph_source(&config, &core.store)?.0,
    };
    let recogniser = recogniser(&config, &core, alarm.clone(), source)?;
    let (tx, rx) = mpsc::channel(config.ingest.queue);
    let stage = tokio::spawn(recogniser.run(rx));
    ingest::stage::resume(&core.store, &tx).await?;
    let ingest = core.ingest(tx);
    let name = file.display().to_string();
    let counters = core.counters.clone();
    let store = core.store.clone();
    let summary = tokio::task::spawn_blocking(move || -> Result<ReplaySummary, StoreError> {
        let mut summary = ReplaySummary::default();
        for (index, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            summary.lines += 1;
            let position = format!("replay:{name}:{}", index + 1);
            let outcome: RecordOutcome = ingest.process(Record {
                body: line,
                position: &position,
                received_at: Utc::now(),
            })?;
            summary.handed_off += outcome.handed_off;
            summary.duplicates += outcome.duplicates;
            summary.rejected += outcome.rejected;
            summary.ignored += outcome.ignored;
        }
        ingest.store().flush()?;
        Ok(summary)
    })
    .await
    .map_err(|e| AppError::Replay {
        path: file.display().to_string(),
        reason: e.to_string(),
    })??;
    let _ = stage.await;
    let view = alarm.view();
    drop(alarm);
    let _ = alarm_task.await;
    let state = view.borrow().state;
    store.flush()?;
    let calls = CallLog::of(&store)
        .all("replay")
        .into_iter()
        .rev()
        .map(|r| CallBrief {
            key: r.key,
            kind: r.kind,
            alarmed_locally: r.alarmed_locally,
            updates: r.updates,
            location: r.call.location.text,
        })
        .collect();
    Ok(ReplaySummary {
        counters: counters.snapshot(),
        calls,
        alarm: serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        pending: store.inbox.len(),
        ..summary
    })
}
