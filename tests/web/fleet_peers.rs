//! Issue 17, the members of a fleet seeing each other: a second box joins the first's fleet
//! from its own settings page (wrong and reused codes refused in words on the page); each
//! box's settings page then lists the other as seen; an acknowledgement on the main desk is
//! shown on the backup desk's call page while the backup desk keeps alerting (the default),
//! and acknowledges there too once the office chose so; a message not signed with the fleet's
//! key is refused.

use std::time::Duration;

use crate::support::console::{add_users, emergency_message, Client, Console, ADMIN};
use beacon::alarm::{AlarmState, AuditRecord, Event, Source};
use beacon::config::Config;
use beacon::graph::fleet::FleetSecrets;
use beacon::web::WebConfig;

const CHAT: &str = "19:peers0c1e9a2b4c7d8e9f00112233aa@thread.v2";

async fn desk(name: &str) -> Console {
    Console::start_full(
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: true,
            ..WebConfig::default()
        },
        &Config {
            device_id: Some(name.into()),
            ..Config::default()
        },
        add_users,
    )
    .await
}

async fn admin_of(console: &Console) -> Client {
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    admin
}

async fn open_code(admin: &mut Client) -> String {
    let token = admin.csrf("/settings").await;
    let html = admin
        .post("/settings/fleet/code", &[("csrf", &token)])
        .await
        .text()
        .await
        .expect("page");
    let start = html.find("id=\"join-code\">").expect("the code is shown") + 15;
    html[start..].split('<').next().expect("code").to_string()
}

/// Joins from the settings page; returns the page and its status.
async fn join_from_page(admin: &mut Client, from: &str, code: &str) -> (u16, String) {
    let token = admin.csrf("/settings").await;
    let response = admin
        .post(
            "/settings/fleet/join",
            &[("csrf", &token), ("from", from), ("code", code)],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// Waits until `admin`'s settings page shows `text` in the members table.
async fn until_members_show(admin: &mut Client, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let html = admin.get("/settings").await.text().await.expect("page");
        let table = html
            .split("id=\"fleet-peers\"")
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or("")
            .to_string();
        if table.contains(text) {
            return table;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the members never showed {text:?}: {table}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn until_page_shows(client: &mut Client, path: &str, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let html = client.get(path).await.text().await.expect("page");
        if html.contains(text) {
            return html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn until_state(console: &Console, state: AlarmState) {
    let mut view = console.alarm.view();
    tokio::time::timeout(Duration::from_secs(20), async {
        while view.borrow_and_update().state != state {
            view.changed().await.expect("alarm runs");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the alarm never became {state:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_desks_see_each_other_and_share_acknowledgements() {
    let main = desk("main-desk").await;
    let backup = desk("backup-desk").await;
    let mut main_admin = admin_of(&main).await;
    let mut backup_admin = admin_of(&backup).await;

    // Joining from the running backup desk's settings page: a wrong code is refused in words.
    let code = open_code(&mut main_admin).await;
    let (_, pin) = code.split_once('.').expect("pin");
    let (status, html) = join_from_page(
        &mut backup_admin,
        &main.url(),
        &format!("AAAA-AAAA-AAAA.{pin}"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("join code is wrong"), "{html}");
    let (status, html) = join_from_page(&mut backup_admin, &main.url(), &code).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("joined fleet"), "{html}");
    let fleet = FleetSecrets::load(&main.store)
        .expect("read")
        .expect("fleet");
    let joined = FleetSecrets::load(&backup.store)
        .expect("read")
        .expect("fleet");
    assert_eq!(
        joined, fleet,
        "the running backup desk holds the fleet's secrets"
    );
    let (_, html) = join_from_page(&mut backup_admin, &main.url(), &code).await;
    assert!(html.contains("used already"), "reused: {html}");

    // Each lists the other, heard from (no heartbeat wait: a join tells everyone at once).
    let on_main = until_members_show(&mut main_admin, "seen at").await;
    assert!(on_main.contains("backup-desk"), "{on_main}");
    let on_backup = until_members_show(&mut backup_admin, "seen at").await;
    assert!(on_backup.contains("main-desk"), "{on_backup}");
    assert!(
        on_backup.contains("does not renew"),
        "no cloud link here: {on_backup}"
    );

    // One call on both desks; Sam acknowledges it on the main desk.
    let key = main
        .post_message(CHAT, "m-1", emergency_message("Jordan Rivera"))
        .await;
    backup
        .post_message(CHAT, "m-1", emergency_message("Jordan Rivera"))
        .await;
    until_state(&backup, AlarmState::Alerting).await;
    main.alarm
        .send(Event::Acknowledge {
            source: Source::Web,
            who: Some("sam".into()),
        })
        .await;
    let call_page = format!("/calls/{}", beacon::web::records::call_id(&key));
    let html = until_page_shows(&mut backup_admin, &call_page, "acknowledged on main-desk").await;
    assert!(
        html.contains("acknowledged on main-desk by sam at"),
        "{html}"
    );
    // Show only: the backup desk keeps alerting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backup.alarm.view().borrow().state, AlarmState::Alerting);

    // The office chooses that an acknowledgement elsewhere acknowledges here too.
    let token = backup_admin.csrf("/settings").await;
    let response = backup_admin
        .post(
            "/settings/fleet/acknowledgements",
            &[("csrf", &token), ("silence", "on")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    // (The first call, acknowledged and closed here by Lee.)
    for event in [
        Event::Acknowledge {
            source: Source::Web,
            who: Some("lee".into()),
        },
        Event::Clear {
            source: Source::Web,
            who: Some("lee".into()),
        },
    ] {
        backup.alarm.send(event).await;
    }
    until_state(&backup, AlarmState::Idle).await;
    let mut records = backup.alarm.notices();
    let second = main
        .post_message(CHAT, "m-2", emergency_message("Alex Kim"))
        .await;
    backup
        .post_message(CHAT, "m-2", emergency_message("Alex Kim"))
        .await;
    until_state(&backup, AlarmState::Alerting).await;
    main.alarm
        .send(Event::Acknowledge {
            source: Source::Web,
            who: Some("sam".into()),
        })
        .await;
    until_state(&backup, AlarmState::Acknowledged).await;
    let fleet_ack: AuditRecord = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let notice = records.recv().await.expect("notices");
            if notice.record.source == Source::Fleet {
                return notice.record;
            }
        }
    })
    .await
    .expect("the backup desk's acknowledgement came from the fleet");
    assert_eq!(fleet_ack.who.as_deref(), Some("sam on main-desk"));
    assert!(fleet_ack.keys.contains(&second), "{fleet_ack:?}");

    // A message not signed with the fleet's key is refused, in words.
    let forged = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
        .post(format!("{}/fleet/peer", backup.url()))
        .body(r#"{"payload":"{}","mac":"AAAA"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.text().await.expect("text").contains("signature"));

    main.stop().await;
    backup.stop().await;
}
