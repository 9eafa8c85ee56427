//! The fault campaign's helpers: a broker of its own that can be stopped, `beacon run` as a
//! child process, emergencies injected with their offsets, a small filesystem to fill, the
//! ground truth read from the store, the MQTT broker and SMTP server the appliance's outputs
//! talk to, and the summary table.
#![allow(dead_code)]

pub mod appliance;
pub mod broker;
pub mod disk;
pub mod inject;
pub mod ledger;
pub mod outputs;
pub mod summary;

/// A small deterministic generator for the random kill points (seed printed, so a run can be
/// repeated with `BEACON_TEST_CAMPAIGN_SEED`).
pub struct Dice(u64);

impl Dice {
    pub fn from_env() -> Dice {
        let seed = std::env::var("BEACON_TEST_CAMPAIGN_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("campaign seed: {seed} (BEACON_TEST_CAMPAIGN_SEED={seed} repeats it)");
        Dice(seed.max(1))
    }

    /// xorshift64*.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..high` (ms, counts).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }
}
