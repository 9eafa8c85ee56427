//! The appliance's time zone as a guard meets it: chosen on the settings page, every time on
//! the console is in it with the zone named, the API keeps UTC; and counts read right
//! ("1 call"). The zone is process-wide: this is the only test of the binary that sets one,
//! and it puts the system's back at the end.

use beacon::local_time::Zone;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::console::{emergency_message, Client, Console, ADMIN};

const SEATTLE: &str = "America/Los_Angeles";

#[tokio::test]
async fn times_are_shown_in_the_chosen_zone_and_the_api_keeps_utc() {
    let console = Console::with_users().await;
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;

    // A name that is not a zone is refused, in words, and changes nothing.
    let csrf = admin.csrf("/settings").await;
    let refused = admin
        .post(
            "/settings/time-zone",
            &[("csrf", &csrf), ("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(refused.status().as_u16(), 400);
    let page = refused.text().await.unwrap_or_default();
    assert!(page.contains("no time zone named Mars/Olympus"), "{page}");

    let csrf = admin.csrf("/settings").await;
    let chosen = admin
        .post(
            "/settings/time-zone",
            &[("csrf", &csrf), ("time_zone", SEATTLE)],
        )
        .await;
    assert_eq!(chosen.status().as_u16(), 200);
    let page = chosen.text().await.unwrap_or_default();
    assert!(
        page.contains(&format!("Times are now shown in {SEATTLE}")),
        "{page}"
    );

    let key = console
        .post_message(
            "19:tz@thread.v2",
            "tz-1",
            emergency_message("Jordan Rivera"),
        )
        .await;

    // The API: UTC, RFC 3339.
    let calls: Value = admin.get("/api/calls").await.json().await.expect("json");
    let received = calls["calls"][0]["received_at"]
        .as_str()
        .expect("received_at")
        .to_string();
    let received: DateTime<Utc> = DateTime::parse_from_rfc3339(&received)
        .unwrap_or_else(|e| panic!("{received} is not RFC 3339: {e}"))
        .with_timezone(&Utc);
    assert!(calls["calls"][0]["received_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // The pages: the same moment in Seattle's time, the zone named (PST or PDT by season).
    let seattle = Zone::named(SEATTLE).expect("system zoneinfo");
    let shown = seattle.format(received);
    assert!(
        shown.ends_with(" PST") || shown.ends_with(" PDT"),
        "{shown}"
    );
    let list = admin.get("/calls").await.text().await.unwrap_or_default();
    assert!(list.contains(&shown), "{shown} not in the calls list");
    assert!(list.contains("1 call ·"), "one call, singular: {list}");
    assert!(!list.contains(" UTC<"), "{list}");
    let id = calls["calls"][0]["id"].as_str().expect("id").to_string();
    let detail = admin
        .get(&format!("/calls/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        detail.contains(&shown),
        "{shown} not on the call's page ({key})"
    );
    assert!(
        !detail.contains(" UTC<"),
        "a time left in UTC on the call's page"
    );

    // Cleared: the system's zone again (the test machine's, and the other tests').
    let csrf = admin.csrf("/settings").await;
    let cleared = admin
        .post("/settings/time-zone", &[("csrf", &csrf), ("time_zone", "")])
        .await;
    assert_eq!(cleared.status().as_u16(), 200);
    assert_eq!(
        beacon::local_time::current().name(),
        Zone::system().name(),
        "back to the system's zone"
    );
    console.stop().await;
}
