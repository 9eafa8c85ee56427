//! The console in a real headless Chromium (Debian's chromium + chromedriver): first start
//! with the setup code; an emergency appears on the dashboard without a reload and the
//! Acknowledge button turns the simulated strobe off; the call's page shows the map and the raw
//! data, and without map tiles still says where the caller is; a caller name made of HTML and
//! script is shown as text and runs nothing.
//! With `BEACON_SCREENSHOTS=dir` each page is saved as a PNG (docs/screenshots/).

use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::console::{emergency_message, possible_message, Console, ADMIN, GUARD};
use beacon::hw::sim::SimOutput;

const WAIT: Duration = Duration::from_secs(15);

/// Whether `lamp` is on at some moment within `within` (a flashing strobe is off half the time).
async fn lights_within(lamp: &SimOutput, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if lamp.is_on() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn log_in(browser: &Browser, console: &Console, user: &str, password: &str) {
    browser.goto(&format!("{}/login", console.url())).await;
    browser.fill("#user", user).await;
    browser.fill("#password", password).await;
    browser.screenshot("login").await;
    browser.click_on("#submit").await;
    browser.wait_for("#live", WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_the_setup_code_sets_the_admin_password() {
    let console = Console::start().await;
    let code = console.server().setup_code().expect("setup code");
    let browser = Browser::start().await;
    browser.goto(&console.url()).await;
    browser.wait_for("#code", WAIT).await;
    assert!(browser.current_url().await.ends_with("/first-run"));
    browser.fill("#code", "WRON-GCOD").await;
    browser.fill("#password", "the chief's password").await;
    browser.fill("#confirm", "the chief's password").await;
    browser.click_on("#submit").await;
    browser
        .wait_for_text("#problem", "not the setup code", WAIT)
        .await;

    browser.fill("#code", &code).await;
    browser.fill("#user", "chief").await;
    browser.fill("#password", "the chief's password").await;
    browser.fill("#confirm", "the chief's password").await;
    browser.screenshot("first-run").await;
    browser.click_on("#submit").await;
    browser.wait_for("#live", WAIT).await;
    let text = browser.page_text().await;
    assert!(text.contains("chief (admin)"), "{text}");
    assert!(text.contains("No active call"), "{text}");
    browser.wait_for("img#display", WAIT).await;
    browser.screenshot("dashboard-idle").await;
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_appears_live_and_acknowledge_stops_the_strobe() {
    let console = Console::with_users().await;
    let browser = Browser::start().await;
    log_in(&browser, &console, GUARD.0, GUARD.1).await;
    let dashboard = browser.current_url().await;
    assert!(!lights_within(&console.lamps.strobe, Duration::from_millis(200)).await);

    console
        .post_message(
            "19:live@thread.v2",
            "live-1",
            emergency_message("Jordan Rivera"),
        )
        .await;
    // No navigation: the page follows the server-sent events.
    browser.wait_for_text("#live", "Jordan Rivera", WAIT).await;
    browser
        .wait_for("#alarm[data-state='alerting']", WAIT)
        .await;
    assert_eq!(
        browser.current_url().await,
        dashboard,
        "no reload, no navigation"
    );
    let live = browser
        .wait_for_text("#live", "725 Example Street", WAIT)
        .await;
    assert!(live.contains("Strobe ON"), "{live}");
    assert!(
        lights_within(&console.lamps.strobe, Duration::from_secs(2)).await,
        "strobe on the board"
    );
    // Let the mirror catch up for the screenshot.
    browser.wait_for("img#display", WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot("dashboard-alarm").await;

    browser.click_on("#acknowledge").await;
    browser
        .wait_for("#alarm[data-state='acknowledged']", WAIT)
        .await;
    let live = browser
        .wait_for_text("#live", "acknowledged by guard", WAIT)
        .await;
    assert!(live.contains("Strobe off"), "{live}");
    assert!(
        !lights_within(&console.lamps.strobe, Duration::from_millis(1200)).await,
        "the strobe on the simulated board is off after the acknowledgement"
    );
    browser.screenshot("dashboard-acknowledged").await;
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_possible_emergency_says_check_teams_and_a_guard_confirms_it_into_the_full_alarm() {
    let console = Console::with_users().await;
    let browser = Browser::start().await;
    log_in(&browser, &console, GUARD.0, GUARD.1).await;
    console
        .post_message(
            "19:possible@thread.v2",
            "possible-1",
            possible_message("Sam Okafor"),
        )
        .await;
    browser
        .wait_for("#alarm[data-state='alerting'][data-level='possible']", WAIT)
        .await;
    let live = browser
        .wait_for_text("#live", "POSSIBLE EMERGENCY — CHECK TEAMS", WAIT)
        .await;
    assert!(live.contains("Smoke coming out of rack 4"), "{live}");
    assert!(live.contains("Sam Okafor"), "{live}");
    assert!(
        lights_within(&console.lamps.strobe, Duration::from_secs(3)).await,
        "the strobe shows the possible alert"
    );
    // Only a burst of siren: after it, the siren stays off.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !lights_within(&console.lamps.siren, Duration::from_millis(500)).await,
        "no continuous siren for a possible emergency"
    );
    browser.wait_for("img#display", WAIT).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    browser.screenshot("dashboard-possible").await;

    browser.click_on("#confirm").await;
    browser
        .wait_for("#alarm[data-state='alerting']:not([data-level])", WAIT)
        .await;
    let live = browser.wait_for_text("#live", "EMERGENCY CALL", WAIT).await;
    assert!(live.contains("Siren ON"), "{live}");
    assert!(
        lights_within(&console.lamps.siren, Duration::from_secs(2)).await,
        "the full alarm sounds the siren"
    );
    // The call's page says what it was, with the message, and who confirmed it.
    browser.goto(&format!("{}/calls", console.url())).await;
    browser.wait_for_text("#calls", "Sam Okafor", WAIT).await;
    browser.click_on("#calls tbody a").await;
    browser
        .wait_for_text("#possible", "POSSIBLE EMERGENCY — CHECK TEAMS", WAIT)
        .await;
    let page = browser.wait_for_text("#timeline", "confirmed", WAIT).await;
    assert!(page.contains("guard"), "{page}");
    assert!(
        browser
            .page_text()
            .await
            .contains("Smoke coming out of rack 4"),
        "the message text on the call's page"
    );
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_call_page_shows_the_map_the_timeline_and_the_raw_data() {
    let console = Console::with_users().await;
    console
        .post_message(
            "19:detail@thread.v2",
            "detail-1",
            emergency_message("Jordan Rivera"),
        )
        .await;
    let browser = Browser::start().await;
    log_in(&browser, &console, ADMIN.0, ADMIN.1).await;
    browser.goto(&format!("{}/calls", console.url())).await;
    let table = browser.wait_for_text("#calls", "Jordan Rivera", WAIT).await;
    assert!(table.contains("911"), "{table}");
    browser.screenshot("calls").await;
    browser.click_on("#calls tbody a").await;
    browser.wait_for("#map[data-ready='true']", WAIT).await;
    browser.wait_for("#map .leaflet-marker-icon", WAIT).await;
    // Tiles are asked for with the console's origin as Referer (the tile server's usage
    // policy), while every page keeps `Referrer-Policy: no-referrer`.
    let tile = browser.wait_for("#map img.leaflet-tile", WAIT).await;
    assert_eq!(
        browser.attribute(&tile, "referrerpolicy").await.as_deref(),
        Some("strict-origin")
    );
    let caller = browser
        .wait_for_text("#caller-name", "Jordan Rivera", WAIT)
        .await;
    assert_eq!(caller, "Jordan Rivera");
    browser
        .wait_for_text("#caller-upn", "jordan.rivera@contoso.com", WAIT)
        .await;
    browser
        .wait_for_text("#raw-message", "\"displayName\": \"Jordan Rivera\"", WAIT)
        .await;
    browser
        .wait_for_text("#raw-record", "\"alarmed_locally\": true", WAIT)
        .await;
    browser
        .wait_for_text("#timeline", "call raised", WAIT)
        .await;
    browser.screenshot("call-detail").await;

    browser.goto(&format!("{}/chats", console.url())).await;
    browser
        .wait_for_text("#chat-activity", "Jordan Rivera", WAIT)
        .await;
    browser.screenshot("chat-activity").await;
    browser.goto(&format!("{}/settings", console.url())).await;
    browser.wait_for("#users", WAIT).await;
    browser.screenshot("settings").await;
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_caller_name_is_shown_as_text_and_runs_nothing() {
    let hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>Eve";
    let console = Console::with_users().await;
    let browser = Browser::start().await;
    log_in(&browser, &console, GUARD.0, GUARD.1).await;
    let key = console
        .post_message(
            "19:hostile@thread.v2",
            "hostile-1",
            emergency_message(hostile),
        )
        .await;
    let record = console.store.calls.get(&key).ok().flatten().expect("call");
    let stored_name = record["call"]["caller"]["display_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        stored_name.contains("<script>"),
        "the name reaches the page as it was sent: {stored_name}"
    );

    let live = browser
        .wait_for_text("#live", "<script>alert(2)</script>Eve", WAIT)
        .await;
    assert!(live.contains("<img src=x onerror=alert(1)>"), "{live}");
    assert_eq!(browser.alert_text().await, None, "no script ran");
    assert!(
        browser.find("#live img[src='x']").await.is_none(),
        "no element was made from it"
    );
    assert!(browser.find("#live script").await.is_none());
    browser.screenshot("hostile-caller").await;

    browser.goto(&format!("{}/calls", console.url())).await;
    browser.wait_for_text("#calls", "<script>", WAIT).await;
    browser.click_on("#calls tbody a").await;
    let caller = browser.wait_for_text("#caller-name", "Eve", WAIT).await;
    assert_eq!(caller, stored_name);
    assert_eq!(browser.alert_text().await, None);
    assert!(browser.find("img[src='x']").await.is_none());
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_map_tiles_the_call_page_still_says_where_and_links_to_a_map() {
    // Tiles from a port nothing listens on: what the box sees without internet.
    let console = Console::start_full(
        beacon::web::WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: false,
            tiles_url: "http://127.0.0.1:9/{z}/{x}/{y}.png".into(),
            ..beacon::web::WebConfig::default()
        },
        &beacon::config::Config::default(),
        crate::support::console::add_users,
    )
    .await;
    console
        .post_message(
            "19:offline@thread.v2",
            "offline-1",
            emergency_message("Jordan Rivera"),
        )
        .await;
    let browser = Browser::start().await;
    log_in(&browser, &console, GUARD.0, GUARD.1).await;
    browser.goto(&format!("{}/calls", console.url())).await;
    browser.wait_for_text("#calls", "Jordan Rivera", WAIT).await;
    browser.click_on("#calls tbody a").await;
    // The grey square gives way to a notice in words…
    browser
        .wait_for("#map[data-tiles-state='unavailable']", WAIT)
        .await;
    browser
        .wait_for_text("#map-offline", "tiles do not load", WAIT)
        .await;
    let map = browser.wait_for("#map", WAIT).await;
    assert_eq!(browser.text(&map).await, "", "the empty map is hidden");
    // …and where the caller is stays on the page: coordinates, address, links.
    browser
        .wait_for_text("#coordinates", "47.639600, -122.128300", WAIT)
        .await;
    browser
        .wait_for_text("#address", "725 Example Street, Floor 4, Redmond", WAIT)
        .await;
    let link = browser.wait_for("#map-link", WAIT).await;
    assert_eq!(
        browser.attribute(&link, "href").await.as_deref(),
        Some("https://www.openstreetmap.org/?mlat=47.639600&mlon=-122.128300#map=18/47.639600/-122.128300")
    );
    let geo = browser.wait_for("#geo-link", WAIT).await;
    assert_eq!(
        browser.attribute(&geo, "href").await.as_deref(),
        Some("geo:47.639600,-122.128300")
    );
    browser.screenshot("call-detail-offline").await;
    browser.quit().await;
    console.stop().await;
}
