//! Runs every fixture in `tests/fixtures/emergency/` through the classifier and checks the
//! expectations in `expected.json` (one entry per fixture; a key present is a key asserted,
//! `null` included). Prints a table: recall (emergencies caught), full false alarms and
//! "possible" alerts on ordinary messages, and fields right / fields checked; asserts recall
//! 100 % and no full false alarm. `EMERGENCY_CORPUS_DUMP=1` also prints each fixture's
//! `beacon parse` report.

use std::path::{Path, PathBuf};

use beacon::emergency::{
    classify, merge_update, ChatType, Classification, Context, EmergencyCall, Kind, ParseReport,
    Rules,
};
use serde_json::{Map, Value};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emergency")
}

fn load(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn context(entry: &Map<String, Value>) -> Context {
    let ctx = entry.get("context");
    let get = |key| ctx.and_then(|c| c.get(key)).and_then(Value::as_str);
    Context {
        chat_type: get("chat_type").map(ChatType::parse),
        service_account_id: get("service_account_id").map(str::to_string),
        received_at: None,
    }
}

/// Checks one expectation key against the call (`None` when not an emergency).
fn check(
    key: &str,
    want: &Value,
    report: &Value,
    call: Option<&EmergencyCall>,
) -> Result<(), String> {
    let c = &report["call"];
    let got: Value = match key {
        "classification" => report["classification"].clone(),
        "dial_string" => c["dial_string"].clone(),
        "is_test" => c["is_test"].clone(),
        "caller" => c["caller"]["display_name"].clone(),
        "caller_id" => c["caller"]["id"].clone(),
        "upn" => c["caller"]["upn"].clone(),
        "callback" => call.map_or(Value::Null, |c| c.callback_number.clone().into()),
        "location_text" => c["location"]["text"].clone(),
        "site" => c["location"]["site"].clone(),
        "street" | "city" | "state" | "postal_code" | "country" => {
            c["location"]["address"][key].clone()
        }
        "latitude" | "longitude" => {
            let got = c["location"][key].as_f64();
            let close = match (got, want.as_f64()) {
                (Some(g), Some(w)) => (g - w).abs() < 1e-9,
                (g, w) => g.is_none() && w.is_none(),
            };
            return if close {
                Ok(())
            } else {
                Err(format!("{key}: got {got:?}, want {want}"))
            };
        }
        "caller_max_chars" | "location_max_chars" => {
            let field = if key == "caller_max_chars" {
                &c["caller"]["display_name"]
            } else {
                &c["location"]["text"]
            };
            let n = field.as_str().map_or(0, |s| s.chars().count());
            let max = want.as_u64().unwrap_or(0) as usize;
            return if n > 0 && n <= max {
                Ok(())
            } else {
                Err(format!("{key}: {n} chars, max {max}"))
            };
        }
        "location_cut_mark" => {
            let text = c["location"]["text"].as_str().unwrap_or_default();
            let cut = text.ends_with('…');
            return if Some(cut) == want.as_bool() {
                Ok(())
            } else {
                Err(format!("location_cut_mark: {text:?}"))
            };
        }
        "caller_not_contains" => {
            let name = c["caller"]["display_name"].as_str().unwrap_or_default();
            let bad = want.as_str().unwrap_or_default();
            return if name.contains(bad) {
                Err(format!("caller contains {bad:?}"))
            } else {
                Ok(())
            };
        }
        "signals_include" => {
            let signals = report["signals"].as_array().cloned().unwrap_or_default();
            let missing: Vec<&Value> = want
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| !signals.contains(s))
                .collect();
            return if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("signals {signals:?} lack {missing:?}"))
            };
        }
        other => return Err(format!("unknown expectation key {other:?}")),
    };
    if &got == want {
        Ok(())
    } else {
        Err(format!("{key}: got {got}, want {want}"))
    }
}

#[test]
fn corpus_matches_expectations() {
    let rules = Rules::default();
    let manifest = load("expected.json");
    let entries = manifest.as_array().cloned().unwrap_or_default();
    assert!(
        entries.len() >= 60,
        "corpus has only {} fixtures",
        entries.len()
    );

    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for entry in &entries {
        let entry = entry.as_object().cloned().unwrap_or_default();
        let file = entry["file"].as_str().unwrap_or_default().to_string();
        let message = load(&file);
        let ctx = context(&entry);
        let mut fail = |e: String| failures.push(format!("{file}: {e}"));

        if let Some(base) = entry.get("update_of").and_then(Value::as_str) {
            let first = classify(&load(base), &ctx, &rules);
            let Some(existing) = first.call() else {
                fail(format!("base {base} is not a call"));
                continue;
            };
            match merge_update(existing, &message, &ctx, &rules) {
                Ok(out) => {
                    let report = merged_report(&out.call);
                    for (key, want) in &entry {
                        let result = match key.as_str() {
                            "file" | "update_of" | "context" => Ok(()),
                            "changed" if Some(out.changed) == want.as_bool() => Ok(()),
                            "changed" => Err(format!("changed: got {}", out.changed)),
                            _ => tally.field(check(key, want, &report, Some(&out.call))),
                        };
                        if let Err(e) = result {
                            fail(e);
                        }
                    }
                    if out.call.raw != message {
                        fail("merged call does not keep the latest raw message".into());
                    }
                    if out.call.message_id != existing.message_id
                        || out.call.created != existing.created
                    {
                        fail("update changed the identity of the call".into());
                    }
                }
                Err(e) => fail(format!("merge failed: {e}")),
            }
            continue;
        }

        let result = classify(&message, &ctx, &rules);
        let report = ParseReport::from_classification(&result).to_value();
        if std::env::var_os("EMERGENCY_CORPUS_DUMP").is_some() {
            println!("{file}: {report}");
        }
        for (key, want) in &entry {
            let outcome = match key.as_str() {
                "file" | "context" | "ordinary" => continue,
                "classification" | "signals_include" => check(key, want, &report, result.call()),
                _ => tally.field(check(key, want, &report, result.call())),
            };
            if let Err(e) = outcome {
                fail(e);
            }
        }
        if let Some(call) = result.call() {
            if call.raw != message {
                fail("raw message not kept verbatim".into());
            }
        }
        let ordinary = entry["classification"] == "not_emergency"
            || entry.get("ordinary").and_then(Value::as_bool) == Some(true);
        tally.verdict(ordinary, result.kind());
    }
    println!("{}", tally.table(entries.len()));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(tally.caught, tally.emergencies, "recall must be 100 %");
    assert_eq!(
        tally.full_false_alarms, 0,
        "an ordinary message raised a full alarm"
    );
}

/// The figures of one corpus run.
#[derive(Debug, Default)]
struct Tally {
    /// Fixtures expected to be an emergency, a test or a possible emergency.
    emergencies: usize,
    /// Of those, the ones recognised (any classification but `not_emergency`).
    caught: usize,
    /// Fixtures expected `not_emergency` (ordinary messages and traps), and ordinary messages
    /// known to be classified `possible` (`"ordinary": true`).
    ordinary: usize,
    /// Ordinary messages classified `emergency` (the full siren).
    full_false_alarms: usize,
    /// Ordinary messages classified `possible`.
    possible_alerts: usize,
    /// Ordinary messages classified `test`.
    test_records: usize,
    fields_checked: usize,
    fields_right: usize,
}

impl Tally {
    fn verdict(&mut self, ordinary: bool, kind: Kind) {
        if ordinary {
            self.ordinary += 1;
            match kind {
                Kind::Emergency => self.full_false_alarms += 1,
                Kind::Possible => self.possible_alerts += 1,
                Kind::Test => self.test_records += 1,
                Kind::NotEmergency => {}
            }
        } else {
            self.emergencies += 1;
            self.caught += usize::from(kind != Kind::NotEmergency);
        }
    }

    fn field(&mut self, result: Result<(), String>) -> Result<(), String> {
        self.fields_checked += 1;
        self.fields_right += usize::from(result.is_ok());
        result
    }

    fn table(&self, fixtures: usize) -> String {
        let percent = |a: usize, b: usize| {
            if b == 0 {
                100.0
            } else {
                a as f64 * 100.0 / b as f64
            }
        };
        let rows = [
            (
                "recall (emergencies caught)",
                format!("{}/{}", self.caught, self.emergencies),
                percent(self.caught, self.emergencies),
            ),
            (
                "full false alarms (ordinary)",
                format!("{}/{}", self.full_false_alarms, self.ordinary),
                percent(self.full_false_alarms, self.ordinary),
            ),
            (
                "possible alerts (ordinary)",
                format!("{}/{}", self.possible_alerts, self.ordinary),
                percent(self.possible_alerts, self.ordinary),
            ),
            (
                "test records (ordinary)",
                format!("{}/{}", self.test_records, self.ordinary),
                percent(self.test_records, self.ordinary),
            ),
            (
                "fields right / checked",
                format!("{}/{}", self.fields_right, self.fields_checked),
                percent(self.fields_right, self.fields_checked),
            ),
        ];
        let mut out = format!("emergency corpus: {fixtures} fixtures\n");
        out.push_str(&format!(
            "| {:<30} | {:>9} | {:>7} |\n",
            "measure", "count", "%"
        ));
        out.push_str(&format!("|{:-<32}|{:-<11}|{:-<9}|\n", "", "", ""));
        for (name, count, pct) in rows {
            out.push_str(&format!("| {name:<30} | {count:>9} | {pct:>6.1}% |\n"));
        }
        out
    }
}

/// The report of a merged call, in the same JSON shape as a classification's.
fn merged_report(call: &EmergencyCall) -> Value {
    let wrapped = Classification::Emergency {
        call: Box::new(call.clone()),
        signals: Vec::new(),
    };
    ParseReport::from_classification(&wrapped).to_value()
}

#[test]
fn every_fixture_file_is_in_the_manifest() {
    let manifest = load("expected.json");
    let listed: Vec<&str> = manifest
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["file"].as_str())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    files.retain(|f| f.ends_with(".json") && f != "expected.json");
    files.sort();
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !listed.contains(&f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "fixtures without expectations: {unlisted:?}"
    );
}
