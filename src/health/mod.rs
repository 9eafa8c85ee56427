//! Health: counters, the pure assessment of what is wrong, and the supervisor that turns
//! faults into troubles (display, trouble relay, MQTT, web page) within 60 seconds and clears
//! them when the fault clears.
//!
//! | file | concern |
//! |---|---|
//! | `counters.rs` | ingest counters (records, refusals, duplicates, last record) |
//! | `assess.rs` | pure: one [`Observation`] (+ memory of earlier ones) → the faults now |
//! | `paths.rs` | pure: per path (chat notifications, chat poll) the calls reported and missed |
//! | `report.rs` | the last assessment (what the page, API and MQTT show) |
//! | `supervisor.rs` | the loop: observe every 10 s, raise/clear troubles, publish a report |
//!
//! Parts that know their own faults best raise them directly on the alarm (MQTT, each
//! notification channel, the display, GPIO lines); the supervisor covers the feed (sign-in,
//! subscription, Event Hub, refused notifications, messages waiting for Graph), the store
//! and disk, and the clock.

pub mod assess;
pub mod counters;
pub mod paths;
pub mod report;
pub mod supervisor;

pub use assess::{Assessor, Fault, Limits, Observation};
pub use counters::{IngestCounters, IngestSnapshot};
pub use paths::PathHealth;
pub use report::HealthReport;
pub use supervisor::Supervisor;
