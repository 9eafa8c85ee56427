//! `/metrics` read the way Prometheus reads it: fetched with a logged-in client, parsed with
//! an exposition-format parser (`prometheus-parse`), no line left unparsed.

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value};

use super::console::Client;

/// One scrape of `/metrics`, parsed.
pub struct Metrics {
    pub text: String,
    pub scrape: Scrape,
}

impl Metrics {
    pub async fn read(guard: &mut Client) -> Metrics {
        let answer = guard.get("/metrics").await;
        assert_eq!(answer.status().as_u16(), 200);
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = answer.text().await.expect("body");
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
        // The parser skips what it cannot read: every sample line must have come through.
        let sample_lines = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(
            scrape.samples.len(),
            sample_lines,
            "unparsed lines in:\n{text}"
        );
        Metrics { text, scrape }
    }

    /// The value of `name` with exactly `labels`; `None` when there is no such series.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .find(|s| {
                let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
                let have: HashMap<&str, &str> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                wanted == have
            })
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    pub fn counter(&self, name: &str) -> f64 {
        self.value(name, &[])
            .unwrap_or_else(|| panic!("{name} missing:\n{}", self.text))
    }

    /// Reads `/metrics` until `done` holds (`seconds` at most); the last reading.
    pub async fn wait_for(
        guard: &mut Client,
        seconds: u64,
        done: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let metrics = Metrics::read(guard).await;
            if done(&metrics) || tokio::time::Instant::now() > deadline {
                return metrics;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
