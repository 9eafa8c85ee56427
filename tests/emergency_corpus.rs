//! Runs every fixture in `tests/fixtures/emergency/` through the classifier and checks the
//! expectations in `expected.json` (one entry per fixture; a key present is a key asserted,
//! `null` included). Prints recall and false-alarm counts.

use std::path::{Path, PathBuf};

use beacon::emergency::{
    classify, merge_update, ChatType, Classification, Context, EmergencyCall, ParseReport, Rules,
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
        entries.len() >= 30,
        "corpus has only {} fixtures",
        entries.len()
    );

    let mut failures = Vec::new();
    let (mut positives, mut detected, mut negatives, mut false_alarms) = (0, 0, 0, 0);
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
                            _ => check(key, want, &report, Some(&out.call)),
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
        for (key, want) in &entry {
            if key != "file" && key != "context" {
                if let Err(e) = check(key, want, &report, result.call()) {
                    fail(e);
                }
            }
        }
        if let Some(call) = result.call() {
            if call.raw != message {
                fail("raw message not kept verbatim".into());
            }
        }
        let expected_alarm = entry["classification"] != "not_emergency";
        if expected_alarm {
            positives += 1;
            detected += usize::from(result.call().is_some());
        } else {
            negatives += 1;
            false_alarms += usize::from(result.call().is_some());
        }
    }
    println!(
        "emergency corpus: {} fixtures; recall {detected}/{positives} \
         (emergency, test, possible detected); false alarms {false_alarms}/{negatives} traps",
        entries.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((detected, false_alarms), (positives, 0));
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
