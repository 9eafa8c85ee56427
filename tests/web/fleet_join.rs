//! Issue 17, joining a fleet: an admin opens a one-time join code on the first box's settings
//! page; a new box (`beacon fleet-join`) fetches the fleet's secrets from that console over
//! HTTPS pinned by the code and stores them (0600); a reused, wrong or wrongly pinned code is
//! refused in words (expiry is the unit tests' `web::join_code`, ten minutes being long).

use std::os::unix::fs::PermissionsExt;

use crate::support::console::{add_users, csrf_of, Client, Console, ADMIN};
use beacon::config::Config;
use beacon::graph::fleet::FleetSecrets;
use beacon::web::WebConfig;

async fn open_code(client: &mut Client) -> String {
    let token = client.csrf("/settings").await;
    let response = client
        .post("/settings/fleet/code", &[("csrf", &token)])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.expect("page");
    let start = html.find("id=\"join-code\">").expect("the code is shown") + 15;
    html[start..].split('<').next().expect("code").to_string()
}

fn new_box(dir: &std::path::Path) -> Config {
    Config {
        device_id: Some("backup-desk".into()),
        data_dir: dir.join("data"),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_box_joins_with_a_one_time_code_over_pinned_https() {
    let console = Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: true,
            ..WebConfig::default()
        },
        &Config::default(),
        add_users,
    )
    .await;
    let url = console.url();
    let mut admin = Client::new(&url);
    admin.login(ADMIN.0, ADMIN.1).await;
    let code = open_code(&mut admin).await;
    assert!(code.contains('.'), "{code}");

    // A code whose pin names another certificate: the new box does not even send the secret,
    // so the real code still works afterwards.
    let (secret, pin) = code.split_once('.').expect("pin");
    let other_pin: String = pin
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    let refused =
        beacon::app::fleet_join(new_box(dir.path()), &url, &format!("{secret}.{other_pin}"))
            .await
            .expect_err("wrong pin");
    assert!(
        refused
            .to_string()
            .contains("not the one the join code names"),
        "{refused}"
    );

    let fleet = beacon::app::fleet_join(new_box(dir.path()), &url, &code)
        .await
        .expect("joined");
    let first = FleetSecrets::load(&console.store)
        .expect("read")
        .expect("first box's fleet");
    assert_eq!(fleet, first.id);
    let joined_store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
    let joined = FleetSecrets::load(&joined_store)
        .expect("read")
        .expect("stored");
    assert_eq!(joined, first, "the same fleet secrets");
    let keys = |store: &beacon::store::Store| {
        beacon::app::load_keys(store)
            .expect("keys")
            .current()
            .map(|k| k.id.clone())
    };
    assert_eq!(
        keys(&joined_store),
        keys(&console.store),
        "the fleet's certificate"
    );
    drop(joined_store);
    for entry in walk(&dir.path().join("data")) {
        let mode = std::fs::metadata(&entry)
            .expect("meta")
            .permissions()
            .mode();
        if entry.is_file() {
            assert_eq!(mode & 0o077, 0, "{} is readable by others", entry.display());
        }
    }

    // The same code again: used.
    let dir2 = tempfile::tempdir().expect("dir");
    let reused = beacon::app::fleet_join(new_box(dir2.path()), &url, &code)
        .await
        .expect_err("reused");
    assert!(reused.to_string().contains("used already"), "{reused}");
    // A new code, presented wrong (right pin): wrong, in words.
    let code = open_code(&mut admin).await;
    let (_, pin) = code.split_once('.').expect("pin");
    let wrong =
        beacon::app::fleet_join(new_box(dir2.path()), &url, &format!("AAAA-AAAA-AAAA.{pin}"))
            .await
            .expect_err("wrong");
    assert!(wrong.to_string().contains("join code is wrong"), "{wrong}");
    // Incomplete (no pin): refused before anything is sent.
    let incomplete = beacon::app::fleet_join(new_box(dir2.path()), &url, "AAAA-AAAA-AAAA")
        .await
        .expect_err("incomplete");
    assert!(
        incomplete.to_string().contains("incomplete"),
        "{incomplete}"
    );

    // The settings page lists the box that joined, and never shows the fleet's clientState.
    let html = admin.get("/settings").await.text().await.expect("page");
    assert!(html.contains("backup-desk"), "member listed");
    assert!(html.contains(&first.id));
    assert!(!html.contains(first.client_state.expose()));
    let _ = csrf_of(&html);
    console.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
