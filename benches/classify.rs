//! Classification latency over the fixture corpus: `cargo bench --bench classify`.
//! Plain `fn main()` (no harness): classifies every fixture round-robin N times (default
//! 100 000, or the first argument), timing each call, and prints p50/p99/max and messages/s.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use beacon::emergency::{classify, Context, Rules};
use serde_json::Value;

fn main() {
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emergency");
    let mut corpus: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| !p.ends_with("expected.json"))
                .filter_map(|p| {
                    let text = std::fs::read_to_string(&p).ok()?;
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    Some((name, serde_json::from_str(&text).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    corpus.sort_by(|a, b| a.0.cmp(&b.0));
    if corpus.is_empty() {
        eprintln!("no fixtures in {}", dir.display());
        std::process::exit(1);
    }
    let rules = Rules::default();
    let ctx = Context {
        service_account_id: Some("99999999-0000-4000-8000-00000000beac".into()),
        ..Context::default()
    };

    // Messages above 16 KiB (the hostile 150 KB fixture) are reported separately as well.
    let large: Vec<bool> = corpus
        .iter()
        .map(|(_, v)| v.to_string().len() > 16 * 1024)
        .collect();
    let mut times = Vec::with_capacity(iterations);
    let mut ordinary = Vec::with_capacity(iterations);
    let mut per_fixture = vec![Duration::ZERO; corpus.len()];
    let started = Instant::now();
    for i in 0..iterations {
        let index = i % corpus.len();
        let t = Instant::now();
        black_box(classify(black_box(&corpus[index].1), &ctx, &rules));
        let elapsed = t.elapsed();
        per_fixture[index] += elapsed;
        times.push(elapsed);
        if !large[index] {
            ordinary.push(elapsed);
        }
    }
    let total = started.elapsed();
    let at = |sorted: &[Duration], q: f64| {
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    times.sort_unstable();
    ordinary.sort_unstable();
    println!(
        "classify: {iterations} messages over {} fixtures: p50 {:?}, p99 {:?}, max {:?}, {:.0} messages/s",
        corpus.len(),
        at(&times, 0.50),
        at(&times, 0.99),
        at(&times, 1.0),
        iterations as f64 / total.as_secs_f64()
    );
    println!(
        "  messages up to 16 KiB ({} of {} fixtures): p50 {:?}, p99 {:?}",
        large.iter().filter(|l| !**l).count(),
        corpus.len(),
        at(&ordinary, 0.50),
        at(&ordinary, 0.99),
    );
    let runs = (iterations / corpus.len()).max(1) as u32;
    let mut slowest: Vec<(Duration, &str)> = per_fixture
        .iter()
        .zip(&corpus)
        .map(|(d, (name, _))| (*d / runs, name.as_str()))
        .collect();
    slowest.sort_unstable_by(|a, b| b.cmp(a));
    for (mean, name) in slowest.iter().take(3) {
        println!("  slowest: {name} mean {mean:?}");
    }
}
