//! The ingest counters every other part (web, metrics, the trouble supervisor) reads.
//! Counters only go up; readers compute rates.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Counters of the ingest stage, shared by reference.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Kafka records (or replay lines) taken in.
    pub records: AtomicU64,
    /// Records refused whole (not JSON, not a collection).
    pub rejected_records: AtomicU64,
    /// Items refused (malformed, unknown resource, undecryptable).
    pub rejected_items: AtomicU64,
    /// Items naming a subscription of the fleet with a wrong or no clientState (possible
    /// forgery, or a Beacon outside the fleet on the same service account).
    pub client_state_rejects: AtomicU64,
    /// Items of subscriptions that are not the fleet's (another application or Beacon sharing
    /// the hub): let be, not a trouble.
    pub foreign: AtomicU64,
    /// Records that could not be told the fleet's or a stranger's (the fleet's secrets were
    /// lost with a damaged store): kept whole to be read again.
    pub unverifiable: AtomicU64,
    /// Rich notifications whose HMAC did not match (possible tampering).
    pub signature_rejects: AtomicU64,
    /// Rich notifications for a certificate we do not hold (handed on for a fetch).
    pub unknown_certificate: AtomicU64,
    /// Validation messages seen (Graph's reachability test).
    pub validations: AtomicU64,
    /// Items already seen (Kafka or Graph redelivery).
    pub duplicates: AtomicU64,
    /// Items handed to recognition.
    pub handed_off: AtomicU64,
    /// Unix milliseconds of the last record taken in (0 = never).
    pub last_record_ms: AtomicI64,
    /// Unix milliseconds at which the last notification was refused as a possible forgery
    /// (clientState or signature; 0 = never).
    pub last_refused_ms: AtomicI64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IngestSnapshot {
    pub records: u64,
    pub rejected_records: u64,
    pub rejected_items: u64,
    pub client_state_rejects: u64,
    pub foreign: u64,
    pub unverifiable: u64,
    pub signature_rejects: u64,
    pub unknown_certificate: u64,
    pub validations: u64,
    pub duplicates: u64,
    pub handed_off: u64,
    pub last_record_ms: i64,
    pub last_refused_ms: i64,
}

impl IngestCounters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> IngestSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestSnapshot {
            records: get(&self.records),
            rejected_records: get(&self.rejected_records),
            rejected_items: get(&self.rejected_items),
            client_state_rejects: get(&self.client_state_rejects),
            foreign: get(&self.foreign),
            unverifiable: get(&self.unverifiable),
            signature_rejects: get(&self.signature_rejects),
            unknown_certificate: get(&self.unknown_certificate),
            validations: get(&self.validations),
            duplicates: get(&self.duplicates),
            handed_off: get(&self.handed_off),
            last_record_ms: self.last_record_ms.load(Ordering::Relaxed),
            last_refused_ms: self.last_refused_ms.load(Ordering::Relaxed),
        }
    }
}
