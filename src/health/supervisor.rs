//! The supervisor loop: every interval it observes the feed, the store and the clock,
//! assesses ([`super::assess`]), raises a trouble on the alarm for each new fault (or updates
//! its words), clears the troubles whose fault has gone, and publishes a [`HealthReport`] for
//! the web page, `/api/health` and MQTT.
//!
//! It holds an alarm handle: stop it (abort its task) before the alarm is dropped at shutdown.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::assess::{Assessor, Limits, Observation};
use super::report::HealthReport;
use super::IngestCounters;
use crate::alarm::Event;
use crate::alarm_task::AlarmHandle;
use crate::feeds::StatusFeeds;
use crate::store::Store;

/// How often the supervisor looks (well inside the 60 s promise with the grace periods).
pub const INTERVAL: Duration = Duration::from_secs(10);

const PROBE_KEY: &str = "health/probe";

/// See the module docs.
pub struct Supervisor {
    pub store: Store,
    pub alarm: AlarmHandle,
    pub status: StatusFeeds,
    pub counters: Arc<IngestCounters>,
    pub limits: Limits,
    pub interval: Duration,
}

impl Supervisor {
    /// Runs until aborted, publishing each assessment on `report`.
    pub async fn run(self, report: watch::Sender<HealthReport>) {
        let mut assessor = Assessor::default();
        // Troubles this supervisor raised, with the words last sent.
        let mut raised: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let observation = self.observe().await;
            let faults = assessor.assess(&observation, &self.limits);
            for fault in &faults {
                if raised.get(fault.component) != Some(&fault.detail) {
                    tracing::warn!(component = fault.component, detail = %fault.detail, "trouble");
                    self.alarm
                        .send(Event::TroubleRaised {
                            component: fault.component.to_string(),
                            detail: fault.detail.clone(),
                        })
                        .await;
                    raised.insert(fault.component, fault.detail.clone());
                }
            }
            let gone: Vec<&'static str> = raised
                .keys()
                .filter(|c| !faults.iter().any(|f| f.component == **c))
                .copied()
                .collect();
            for component in gone {
                tracing::info!(component, "trouble cleared");
                self.alarm
                    .send(Event::TroubleCleared {
                        component: component.to_string(),
                    })
                    .await;
                raised.remove(component);
            }
            report.send_replace(HealthReport {
                checked_at: Some(observation.now),
                faults,
                paths: assessor.paths().to_vec(),
            });
        }
    }

    /// Gathers one observation. The store probe and the disk query run on the blocking pool.
    async fn observe(&self) -> Observation {
        let store = self.store.clone();
        let (store_write, disk_free, waiting, oldest_waiting, calls, unverified) =
            tokio::task::spawn_blocking(move || {
                let write = store
                    .settings
                    .insert(PROBE_KEY, &serde_json::json!(Utc::now()))
                    .and_then(|_| store.flush())
                    .map_err(|e| e.to_string());
                let (waiting, oldest) = inbox_age(&store);
                let calls = crate::calls::CallLog::of(&store).all("health supervision");
                let unverified = unverified_kept(&store);
                (
                    write,
                    free_bytes(store.dir()),
                    waiting,
                    oldest,
                    calls,
                    unverified,
                )
            })
            .await
            .unwrap_or_else(|e| (Err(e.to_string()), None, 0, None, Vec::new(), None));
        let hub = &self.status.hub;
        Observation {
            now: Utc::now(),
            auth: self.status.auth.as_ref().map(|a| a.borrow().clone()),
            subscription: self
                .status
                .subscription
                .as_ref()
                .map(|s| s.borrow().clone()),
            hub_connected: hub.connected.load(std::sync::atomic::Ordering::Relaxed),
            hub_error: hub.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
            hub_unassigned_since: hub.unassigned_since.lock().map(|s| *s).unwrap_or_default(),
            hub_group: hub.group.lock().map(|g| g.clone()).unwrap_or_default(),
            ingest: self.counters.snapshot(),
            waiting,
            oldest_waiting,
            unverified,
            disk_free,
            store_write,
            poll: self.status.poll.as_ref().map(|p| p.borrow().clone()),
            call_events: self.status.call_events.as_ref().map(|c| c.borrow().clone()),
            calls,
            zone: crate::local_time::current(),
        }
    }
}

/// Records kept unverified, and the first one's arrival (keys increase); `None` when none.
fn unverified_kept(store: &crate::store::Store) -> Option<(usize, DateTime<Utc>)> {
    let count = store.unverified.len();
    let first = store.unverified.iter().find_map(|(_, kept)| kept.ok())?;
    Some((count, first.at))
}

/// Entries waiting in the inbox, and the oldest arrival among them.
fn inbox_age(store: &Store) -> (usize, Option<DateTime<Utc>>) {
    let mut count = 0;
    let mut oldest: Option<DateTime<Utc>> = None;
    for (_, entry) in crate::ingest::inbox(store).iter() {
        count += 1;
        if let Ok(entry) = entry {
            oldest = Some(oldest.map_or(entry.received_at, |o| o.min(entry.received_at)));
        }
    }
    (count, oldest)
}

/// Bytes available to this process on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    fs2::available_space(dir).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_bytes_reads_the_filesystem() {
        let here = std::env::temp_dir();
        assert!(super::free_bytes(&here).is_some_and(|b| b > 0));
        assert_eq!(
            super::free_bytes(std::path::Path::new("/no/such/dir")),
            None
        );
    }
}
