//! Floor plans as an admin and a guard meet them: an admin uploads a site's plan (PNG or
//! JPEG, at most 2 MB, recognised by its bytes) and outlines the configured zones on it; a
//! wrong type, a file too large, a zone that is not configured or a corner outside the image
//! is refused in words on the page, with what was typed kept and the kept plan untouched;
//! guards, logged-out users and forms without the CSRF token cannot upload; the call page
//! (in a real headless Chromium) shows the plan with the caller's zone marked where it was
//! outlined, and no plan for a call outside every zone.

use std::time::Duration;

use beacon::config::Config;
use beacon::emergency::{RulesConfig, ZoneConfig};
use beacon::web::floor_plan::image::ImageKind;
use beacon::web::floor_plan::outline::ZoneOutline;
use beacon::web::floor_plan::{FloorPlan, FloorPlans};
use beacon::web::records::call_id;
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::console::{emergency_message, Client, Console, ADMIN, GUARD};

const WAIT: Duration = Duration::from_secs(15);
const EAST: &str = "East wing, floor 4";
/// The plan is 1000×500; the east wing is its right part, the top four fifths.
const EAST_OUTLINE: &str = "East wing, floor 4: 600,0 1000,400";

/// A console whose configuration has two zones: the test message's address is in the first.
async fn console_with_zones() -> Console {
    let config = Config {
        emergency: RulesConfig {
            zones: vec![
                ZoneConfig {
                    name: EAST.into(),
                    patterns: vec!["Floor 4".into()],
                },
                ZoneConfig {
                    name: "Lab".into(),
                    patterns: vec!["1 Lab Road".into()],
                },
            ],
            ..RulesConfig::default()
        },
        ..Config::default()
    };
    Console::with_users_and(&config).await
}

/// A real PNG of `width`×`height`: a plan drawn in grey — outer walls, and the walls around
/// the east wing (right of x 600, above y 400 on a 1000×500 plan).
fn png(width: u32, height: u32) -> Vec<u8> {
    let wall = |x: u32, y: u32| {
        let near = |a: u32, b: u32| a.abs_diff(b) < 5;
        near(x, 0)
            || near(y, 0)
            || near(x + 1, width)
            || near(y + 1, height)
            || (near(x, width * 3 / 5) && y < height * 4 / 5)
            || (near(y, height * 4 / 5) && x > width * 3 / 5)
    };
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| if wall(x, y) { 60 } else { 245 })
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().expect("png header");
        writer.write_image_data(&pixels).expect("png data");
    }
    out
}

async fn admin(console: &Console) -> Client {
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    admin
}

/// Uploads a plan from the floor-plans page's form; returns the status and the page.
async fn upload(
    client: &mut Client,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
) -> (u16, String) {
    let csrf = client.csrf("/settings/floor-plans").await;
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let response = client
        .post_multipart(
            "/settings/floor-plans",
            &all,
            file.map(|(name, kind, bytes)| ("image", name, kind, bytes)),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The page's text with HTML's escapes for quotes undone (what a reader sees).
fn unescaped(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
}

#[tokio::test]
async fn an_admin_uploads_a_plan_a_guard_sees_it_and_it_outlasts_a_restart() {
    let console = console_with_zones().await;
    let mut admin = admin(&console).await;
    let image = png(1000, 500);
    let (status, page) = upload(
        &mut admin,
        &[("site", "HQ, building 7"), ("zones", EAST_OUTLINE)],
        Some(("plan.png", "image/png", &image)),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("The floor plan of HQ, building 7 is saved with 1 zone outlined."),
        "{page}"
    );
    let plans = FloorPlans::of(&console.store).all();
    assert_eq!(plans.len(), 1);
    let plan = plans[0].clone();
    assert_eq!((plan.width, plan.height), (1000, 500));
    assert_eq!(plan.zones[0].name, EAST);

    // Any logged-in user gets the image, with the type its bytes are.
    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    let served = guard.get(&format!("/floor-plans/{}", plan.id)).await;
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(
        served
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(
        served
            .headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert_eq!(
        served.bytes().await.expect("image").as_ref(),
        image.as_slice()
    );

    // Changing only the zones keeps the image.
    let (status, page) = upload(
        &mut admin,
        &[
            ("plan", &plan.id),
            ("site", "HQ, building 7"),
            ("zones", &format!("{EAST_OUTLINE}\nlab: 0,0 100,50 0,50")),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("2 zones outlined"), "{page}");
    let store_dir = console.store.dir().to_path_buf();
    let _files = console.stop_keeping_files().await;

    // The plan outlasts a restart (it is in the store, flushed).
    let store = beacon::store::Store::open(&store_dir).expect("store reopens");
    let kept = FloorPlans::of(&store).all();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].zones.len(), 2);
    assert_eq!(kept[0].zones[1].name, "Lab");
    let (_, bytes) = FloorPlans::of(&store)
        .image(&kept[0].id)
        .expect("readable")
        .expect("image kept");
    assert_eq!(bytes, image);
}

#[tokio::test]
async fn refused_uploads_say_why_keep_what_was_typed_and_change_nothing() {
    let console = console_with_zones().await;
    let mut admin = admin(&console).await;
    let image = png(1000, 500);
    let (status, _) = upload(
        &mut admin,
        &[("site", "HQ"), ("zones", EAST_OUTLINE)],
        Some(("plan.png", "image/png", &image)),
    )
    .await;
    assert_eq!(status, 200);
    let kept = FloorPlans::of(&console.store).all();
    let id = kept[0].id.clone();

    // Refused files, whatever their names and declared types say: (name, type, bytes,
    // status, what the page says).
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let mut large = png(100, 100);
    large.resize(3 * 1024 * 1024, 0);
    // Far over the body's limit: refused before the form is read, still said on the page.
    let mut huge = png(100, 100);
    huge.resize(9 * 1024 * 1024, 0);
    let refused: [(&str, &str, &[u8], u16, &str); 4] = [
        (
            "plan.png",
            "image/png",
            svg,
            400,
            "it is SVG, which is refused because it can carry scripts",
        ),
        (
            "plan.jpg",
            "image/jpeg",
            b"GIF89a\x01\x00\x01\x00",
            400,
            "not a PNG or JPEG image (it is GIF)",
        ),
        (
            "plan.png",
            "image/png",
            &large,
            400,
            "The image is 3.0 MB — at most 2.0 MB is accepted.",
        ),
        (
            "plan.png",
            "image/png",
            &huge,
            413,
            "The upload is too large: a floor plan image may be at most 2 MB.",
        ),
    ];
    for (name, kind, bytes, status, says) in refused {
        let (answered, page) = upload(
            &mut admin,
            &[("site", "Depot"), ("zones", "")],
            Some((name, kind, bytes)),
        )
        .await;
        assert_eq!(answered, status, "{says}");
        assert!(page.contains(says), "{says}: {page}");
        if status == 400 {
            assert!(page.contains("The chosen image was not saved either: choose it again."));
            assert!(page.contains("value=\"Depot\""), "the site typed is kept");
        }
    }

    // Zones that are not configured, corners outside the image: each said by its line, and
    // what was typed is in the form again.
    let typed = "West wing: 1,1 50,50\nEast wing, floor 4: 600,0 1200,400";
    let (status, page) = upload(
        &mut admin,
        &[("plan", &id), ("site", "HQ"), ("zones", typed)],
        None,
    )
    .await;
    assert_eq!(status, 400);
    let text = unescaped(&page);
    assert!(
        text.contains(
            "Line 1: \"West wing\" is not a configured zone (configured: East wing, floor 4; Lab)."
        ),
        "{text}"
    );
    assert!(
        text.contains("Line 2: corner 1200,400 is outside the image (1000×500 pixels)."),
        "{text}"
    );
    assert!(
        text.contains(&format!(">{typed}</textarea>")),
        "what was typed is kept: {text}"
    );

    // Nothing of it changed the kept plan.
    assert_eq!(FloorPlans::of(&console.store).all(), kept);
    let (_, bytes) = FloorPlans::of(&console.store)
        .image(&id)
        .expect("readable")
        .expect("image");
    assert_eq!(bytes, image);
    console.stop().await;
}

#[tokio::test]
async fn guards_logged_out_users_and_forms_without_the_token_cannot_upload() {
    let console = console_with_zones().await;
    let image = png(200, 100);
    let file = Some(("image", "plan.png", "image/png", image.as_slice()));
    let fields = [("site", "HQ"), ("zones", "")];

    let mut nobody = Client::new(&console.url());
    let refused = nobody
        .post_multipart("/settings/floor-plans", &fields, file)
        .await;
    assert_eq!(refused.status().as_u16(), 303);
    assert_eq!(
        refused
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    assert_eq!(
        nobody.get("/settings/floor-plans").await.status().as_u16(),
        303
    );

    let mut guard = Client::new(&console.url());
    guard.login(GUARD.0, GUARD.1).await;
    let csrf = guard.csrf("/").await;
    let refused = guard
        .post_multipart(
            "/settings/floor-plans",
            &[("csrf", &csrf), ("site", "HQ"), ("zones", "")],
            file,
        )
        .await;
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(
        guard.get("/settings/floor-plans").await.status().as_u16(),
        403
    );

    let mut admin = admin(&console).await;
    let refused = admin
        .post_multipart("/settings/floor-plans", &fields, file)
        .await;
    assert_eq!(refused.status().as_u16(), 403);
    let page = refused.text().await.unwrap_or_default();
    assert!(page.contains("security token"), "{page}");
    assert!(FloorPlans::of(&console.store).all().is_empty());

    // One plan in the store: logged out, its image is not served either.
    let (status, _) = upload(
        &mut admin,
        &[("site", "HQ"), ("zones", "")],
        Some(("plan.png", "image/png", &image)),
    )
    .await;
    assert_eq!(status, 200);
    let id = FloorPlans::of(&console.store).all()[0].id.clone();
    let image_path = format!("/floor-plans/{id}");
    assert_eq!(nobody.get(&image_path).await.status().as_u16(), 303);
    assert_eq!(guard.get(&image_path).await.status().as_u16(), 200);
    // Removing needs an admin and the token too.
    let csrf = guard.csrf("/").await;
    let refused = guard
        .post(
            "/settings/floor-plans/remove",
            &[("csrf", &csrf), ("plan", &id)],
        )
        .await;
    assert_eq!(refused.status().as_u16(), 403);
    let csrf = admin.csrf("/settings/floor-plans").await;
    let removed = admin
        .post(
            "/settings/floor-plans/remove",
            &[("csrf", &csrf), ("plan", &id)],
        )
        .await;
    assert_eq!(removed.status().as_u16(), 200);
    assert!(removed
        .text()
        .await
        .unwrap_or_default()
        .contains("The floor plan of HQ is removed."));
    assert_eq!(admin.get(&image_path).await.status().as_u16(), 404);
    console.stop().await;
}

/// The emergency message of `emergency_message`, from another address (no zone's pattern).
fn message_from_elsewhere(caller: &str) -> Value {
    let mut message = emergency_message(caller);
    let content = message["body"]["content"]
        .as_str()
        .unwrap_or_default()
        .replace("725 Example Street, Floor 4", "10 Downing Street");
    message["body"]["content"] = Value::String(content);
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn the_call_page_marks_the_callers_zone_on_the_plan_and_shows_none_outside_every_zone() {
    let console = console_with_zones().await;
    let inside = console
        .post_message(
            "19:plan@thread.v2",
            "plan-1",
            emergency_message("Jordan Rivera"),
        )
        .await;
    let outside = console
        .post_message(
            "19:plan@thread.v2",
            "plan-2",
            message_from_elsewhere("Sam Lee"),
        )
        .await;
    let plan_file = console.dir.path().join("hq-plan.png");
    std::fs::write(&plan_file, png(1000, 500)).expect("plan file");

    // The admin uploads the plan through the page, as a person would.
    let browser = Browser::start().await;
    browser.goto(&format!("{}/login", console.url())).await;
    browser.fill("#user", ADMIN.0).await;
    browser.fill("#password", ADMIN.1).await;
    browser.click_on("#submit").await;
    browser.wait_for("#live", WAIT).await;
    browser.goto(&format!("{}/settings", console.url())).await;
    browser.click_on("#floor-plans-link").await;
    browser.fill("#new-site", "HQ, building 7").await;
    browser.choose_file("#new-image", &plan_file).await;
    browser.fill("#new-zones", EAST_OUTLINE).await;
    browser.click_on("#new-plan-submit").await;
    browser
        .wait_for_text("#notice", "The floor plan of HQ, building 7 is saved", WAIT)
        .await;
    browser
        .wait_for("svg.floor-plan.editor polygon.zone-outline", WAIT)
        .await;
    browser.screenshot("floor-plans").await;
    // A click on the plan adds the corner under the pointer (its middle: 500,250 of the
    // image's pixels) to the zone line. (Scrolled whole into view first: a click lands in the
    // middle of the part that is in view.)
    browser
        .execute(
            "document.querySelector('svg.floor-plan.editor').scrollIntoView({block: 'center'});",
        )
        .await;
    browser.click_on("svg.floor-plan.editor").await;
    let field = browser.wait_for(".floor-plan-edit textarea", WAIT).await;
    let zones = browser.property(&field, "value").await.unwrap_or_default();
    let clicked = zones
        .strip_prefix("East wing, floor 4: 600,0 1000,0 1000,400 600,400 ")
        .and_then(|corner| corner.split_once(','))
        .and_then(|(x, y)| Some((x.parse::<i32>().ok()?, y.parse::<i32>().ok()?)));
    assert!(
        clicked.is_some_and(|(x, y)| (x - 500).abs() <= 2 && (y - 250).abs() <= 2),
        "the clicked corner is not the plan's middle: {zones:?}"
    );

    // The call from the east wing: the plan with the east wing marked, named in words.
    browser
        .goto(&format!("{}/calls/{}", console.url(), call_id(&inside)))
        .await;
    let said = browser
        .wait_for_text("#caller-zone-text", "Caller's zone", WAIT)
        .await;
    assert_eq!(said, format!("Caller's zone: {EAST}"));
    let zone = browser.wait_for("#floor-plan #caller-zone", WAIT).await;
    assert_eq!(
        browser.attribute(&zone, "data-zone").await.as_deref(),
        Some(EAST)
    );
    let plan = browser.wait_for("#floor-plan-image", WAIT).await;
    let (px, py, pw, ph) = browser.rect(&plan).await;
    let (zx, zy, zw, zh) = browser.rect(&zone).await;
    // Where the outline is on the drawn plan, as fractions of it: x 0.6–1.0, y 0–0.8.
    let near = |a: f64, b: f64| (a - b).abs() < 0.02;
    let (left, top) = ((zx - px) / pw, (zy - py) / ph);
    let (width, height) = (zw / pw, zh / ph);
    assert!(
        near(left, 0.6) && near(top, 0.0) && near(width, 0.4) && near(height, 0.8),
        "the marked zone is at x {left:.3}, y {top:.3}, {width:.3} × {height:.3} of the plan"
    );
    assert!(
        pw > 300.0,
        "the plan is drawn large enough to read ({pw} px)"
    );
    let label = browser
        .wait_for("#floor-plan text.caller-zone-label", WAIT)
        .await;
    assert_eq!(browser.text(&label).await, EAST);
    browser
        .execute("document.getElementById('floor-plan').scrollIntoView();")
        .await;
    browser.screenshot("call-floor-plan").await;

    // The call from elsewhere: no plan at all.
    browser
        .goto(&format!("{}/calls/{}", console.url(), call_id(&outside)))
        .await;
    browser.wait_for_text("#caller-name", "Sam Lee", WAIT).await;
    assert!(browser.find("#floor-plan").await.is_none());
    assert!(browser.find("#caller-zone").await.is_none());
    browser.quit().await;
    console.stop().await;
}

#[tokio::test]
async fn a_zone_outlined_but_no_longer_configured_is_pointed_out() {
    // A plan kept from when the configuration had a zone "Old wing".
    let plan = FloorPlan {
        id: "1".into(),
        site: "HQ".into(),
        image: ImageKind::Png,
        width: 1000,
        height: 500,
        zones: vec![ZoneOutline {
            name: "Old wing".into(),
            corners: vec![(0, 0), (10, 0), (10, 10)],
        }],
        updated_at: chrono::Utc::now(),
        updated_by: "admin".into(),
    };
    let image = png(1000, 500);
    let config = Config {
        emergency: RulesConfig {
            zones: vec![ZoneConfig {
                name: EAST.into(),
                patterns: vec!["Floor 4".into()],
            }],
            ..RulesConfig::default()
        },
        ..Config::default()
    };
    let console = Console::start_full(
        beacon::web::WebConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            https: false,
            ..beacon::web::WebConfig::default()
        },
        &config,
        |store| {
            crate::support::console::add_users(store);
            FloorPlans::of(store)
                .save(&plan, Some(&image))
                .expect("plan kept");
        },
    )
    .await;
    let mut admin = admin(&console).await;
    let page = admin
        .get("/settings/floor-plans")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        page.contains("Outlined here but no longer configured:\n    <strong>Old wing</strong>."),
        "{page}"
    );
    console.stop().await;
}
