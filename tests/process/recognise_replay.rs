//! Recognition end to end through `beacon replay`: notifications → recognition → alarm →
//! `calls` tree; edits never alarm twice; zones decide the local alarm; a restart restores it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::notifications::basic;
use crate::support::CLIENT_STATE;

const CHAT: &str = "19:3f1d6c1e9a2b4c7d8e9f00112233aabb@thread.v2";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/emergency")
        .join(name)
}

/// A fixture directory holding `file` under its message id.
fn fixtures_with(dir: &Path, sub: &str, files: &[&str]) -> PathBuf {
    let out = dir.join(sub);
    std::fs::create_dir_all(&out).expect("dir");
    for file in files {
        let text = std::fs::read_to_string(fixture(file)).expect("fixture");
        let id = serde_json::from_str::<serde_json::Value>(&text).expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string();
        std::fs::write(out.join(format!("{id}.json")), text).expect("write");
    }
    out
}

struct Drill {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Drill {
    fn new(extra_config: &str) -> Drill {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        crate::support::seed_store(&data);
        let config = dir.path().join("beacon.toml");
        std::fs::write(
            &config,
            format!("data_dir = \"{}\"\n{extra_config}", data.display()),
        )
        .expect("config");
        Drill { dir, config }
    }

    fn replay(&self, lines: &[String], fixtures: &Path) -> serde_json::Value {
        let file = self.dir.path().join(format!("drill-{}.jsonl", lines.len()));
        std::fs::write(&file, lines.join("\n")).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_beacon"))
            .arg("replay")
            .arg(&file)
            .arg("--fixtures")
            .arg(fixtures)
            .arg("--config")
            .arg(&self.config)
            .env_remove("BEACON_LOG")
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("summary")
    }

    fn audit_actions(&self) -> Vec<String> {
        let store = beacon::store::Store::open(&self.dir.path().join("data")).expect("store");
        store
            .audit
            .iter()
            .filter_map(|(_, v)| v.ok())
            .filter_map(|v| v["action"].as_str().map(str::to_string))
            .collect()
    }
}

#[test]
fn an_emergency_alarms_once_and_an_edit_updates_it_without_a_second_alarm() {
    let drill = Drill::new("");
    let base = fixtures_with(
        drill.dir.path(),
        "v1",
        &["edit_base.json", "trap_chat_mentions_emergency.json"],
    );
    let first = drill.replay(
        &[
            basic(CLIENT_STATE, "1741000200018", "created"),
            basic(CLIENT_STATE, "1741000200023", "created"),
        ],
        &base,
    );
    assert_eq!(first["alarm"], "alerting");
    let calls = first["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1, "the trap is not a call: {calls:?}");
    assert_eq!(calls[0]["key"], format!("{CHAT}/1741000200018"));
    assert_eq!(calls[0]["location"], serde_json::Value::Null);

    // The location arrives in an edit: merged, not raised again.
    let edited = fixtures_with(drill.dir.path(), "v2", &["edit_updated.json"]);
    let second = drill.replay(&[basic(CLIENT_STATE, "1741000200018", "updated")], &edited);
    let calls = second["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["updates"], 1);
    assert!(
        calls[0]["location"]
            .as_str()
            .unwrap_or("")
            .contains("725 Example Street"),
        "{calls:?}"
    );
    assert_eq!(second["alarm"], "alerting", "restored after the restart");

    // Both messages are kept for the chat history, the trap too.
    let store = beacon::store::Store::open(&drill.dir.path().join("data")).expect("store");
    assert_eq!(store.messages.len(), 2);
    // After a restart the ready screen's "Last call" line comes from the store.
    let last = beacon::outputs::display::last_call::newest_recorded(&store).expect("a last call");
    assert_eq!(last.caller, "Jordan Rivera");
    drop(store);
    let actions = drill.audit_actions();
    let raised = actions.iter().filter(|a| *a == "call_raised").count();
    assert_eq!(raised, 1, "{actions:?}");
    assert!(actions.iter().any(|a| a == "call_updated"), "{actions:?}");
    assert!(actions.iter().any(|a| a == "restored"), "{actions:?}");
}

#[test]
fn a_call_outside_this_appliances_zone_is_recorded_but_does_not_alarm_here() {
    let drill = Drill::new("[[emergency.zones]]\nname = \"Lobby\"\npatterns = [\"Building 9\"]\n");
    let dir = fixtures_with(drill.dir.path(), "v1", &["en_h7_html_and_card.json"]);
    let summary = drill.replay(&[basic(CLIENT_STATE, "1741000123456", "created")], &dir);
    let calls = summary["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["alarmed_locally"], false);
    assert_eq!(summary["alarm"], "idle");
}

#[test]
fn a_message_that_cannot_be_read_stays_pending() {
    let drill = Drill::new("");
    let empty = drill.dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let summary = drill.replay(&[basic(CLIENT_STATE, "404404", "created")], &empty);
    assert_eq!(summary["handed_off"], 1);
    assert_eq!(summary["pending"], 1, "kept in the inbox for a retry");
    // Once the message can be read, the next start handles it.
    let dir = fixtures_with(drill.dir.path(), "later", &["test_933_html.json"]);
    let text = std::fs::read_to_string(dir.join("1741000200016.json")).expect("fixture");
    std::fs::write(
        dir.join("404404.json"),
        text.replace("1741000200016", "404404"),
    )
    .expect("write");
    let summary = drill.replay(&[], &dir);
    assert_eq!(summary["pending"], 0);
    let calls = summary["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["kind"], "test");
}
