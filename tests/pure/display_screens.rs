//! Every screen against a checked-in golden PNG (`UPDATE_GOLDEN=1 cargo test --test
//! display_screens` rewrites them; look at them before committing), plus the behaviour the
//! pictures stand for: scrolling, acknowledgement, hostile text.

use std::path::PathBuf;

use beacon::alarm::{
    AlarmState, CallSummary, CallView, DisplayMode, DisplayModel, TroubleView, POSSIBLE_HEADLINE,
};
use beacon::outputs::display::{
    render, Framebuffer, JoinCodeInfo, LastCall, Screen, ScreenContext, SetupInfo, SignInCode,
    StatusTicks,
};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};

fn now() -> DateTime<FixedOffset> {
    FixedOffset::east_opt(3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 29, 14, 5, 0)
        .unwrap()
}

fn utc(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, h, m, 0).unwrap()
}

fn ctx() -> ScreenContext {
    ScreenContext {
        now: now(),
        zone: "CET".into(),
        tick: 0,
        status: StatusTicks {
            signed_in: true,
            subscribed: true,
            hub_connected: true,
            mqtt_connected: false,
        },
        last_call: Some(LastCall {
            at: utc(10, 12),
            caller: "Maria Gonzalez".into(),
        }),
        setup: None,
        join_code: None,
    }
}

fn model(mode: DisplayMode, headline: &str) -> DisplayModel {
    DisplayModel {
        mode,
        state: AlarmState::Idle,
        headline: headline.into(),
        acknowledged: false,
        siren_silenced: false,
        calls: vec![],
        troubles: vec![],
        elapsed_secs: None,
    }
}

const LONG_LOCATION: &str = "Building 4, Floor 2, Room 2.17 (north wing, next to the kitchen), \
                             1 Microsoft Way, Redmond WA 98052";

fn call(caller: &str, location: &str, is_test: bool, acknowledged: bool) -> CallView {
    CallView {
        key: "k1".into(),
        summary: CallSummary {
            caller_name: Some(caller.into()),
            location: Some(location.into()),
            dial_string: Some(if is_test { "933" } else { "911" }.into()),
            callback_number: Some("+1 425 555 0100".into()),
            is_test,
            ..CallSummary::default()
        },
        raised_at: utc(13, 1),
        elapsed_secs: 205,
        acknowledged,
        acknowledged_by: acknowledged.then(|| "Front desk".into()),
    }
}

fn alarm_model(calls: Vec<CallView>) -> DisplayModel {
    let acknowledged = calls.iter().all(|c| c.acknowledged);
    let mut m = model(DisplayMode::Alarm, "EMERGENCY CALL");
    m.state = if acknowledged {
        AlarmState::Acknowledged
    } else {
        AlarmState::Alerting
    };
    m.acknowledged = acknowledged;
    m.elapsed_secs = Some(205);
    m.calls = calls;
    m
}

fn draw(model: &DisplayModel, ctx: &ScreenContext) -> (Screen, Framebuffer) {
    let mut fb = Framebuffer::new();
    // Whatever was there before must not show through.
    fb.set_pixel(127, 40, true);
    let screen = render(model, ctx, &mut fb);
    (screen, fb)
}

fn golden(name: &str, fb: &Framebuffer) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/display");
    let path = dir.join(format!("{name}.png"));
    let png = fb.to_png();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, &png).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if want != png {
        let got = std::env::temp_dir().join(format!("beacon-display-{name}.png"));
        std::fs::write(&got, &png).unwrap();
        panic!(
            "{name} differs from {}; this run drew {}",
            path.display(),
            got.display()
        );
    }
}

/// Pixels the PNG decodes to, row by row.
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<bool>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let mut pixels = Vec::new();
    for row in buf.chunks(info.line_size).take(info.height as usize) {
        for x in 0..info.width as usize {
            pixels.push(row[x / 8] & (0x80 >> (x % 8)) != 0);
        }
    }
    (info.width, info.height, pixels)
}

fn lit(fb: &Framebuffer) -> usize {
    fb.pages().iter().map(|b| b.count_ones() as usize).sum()
}

#[test]
fn png_holds_exactly_the_framebuffer_at_scale_1_and_4() {
    let (_, fb) = draw(
        &alarm_model(vec![call("Ann", "Desk 1", false, false)]),
        &ctx(),
    );
    let (w, h, px) = decode(&fb.to_png());
    assert_eq!((w, h), (128, 64));
    for y in 0..64 {
        for x in 0..128 {
            assert_eq!(px[(y * 128 + x) as usize], fb.pixel(x, y), "({x},{y})");
        }
    }
    let (w, h, px) = decode(&fb.to_png_scaled(4));
    assert_eq!((w, h), (512, 256));
    for y in 0..256 {
        for x in 0..512 {
            assert_eq!(
                px[(y * 512 + x) as usize],
                fb.pixel(x / 4, y / 4),
                "({x},{y})"
            );
        }
    }
}

#[test]
fn ready_screen() {
    let (screen, fb) = draw(&model(DisplayMode::Ready, "READY"), &ctx());
    assert_eq!(screen, Screen::Ready);
    golden("ready", &fb);
    // A status change shows.
    let mut all_ok = ctx();
    all_ok.status.mqtt_connected = true;
    assert_ne!(draw(&model(DisplayMode::Ready, "READY"), &all_ok).1, fb);
    // The times are the desk's zone, and the screen names it — with no call yet too.
    let elsewhere = ScreenContext {
        zone: "PST".into(),
        ..ctx()
    };
    assert_ne!(draw(&model(DisplayMode::Ready, "READY"), &elsewhere).1, fb);
    let quiet = |zone: &str| ScreenContext {
        zone: zone.into(),
        last_call: None,
        ..ctx()
    };
    let ready = model(DisplayMode::Ready, "READY");
    assert_ne!(draw(&ready, &quiet("CET")).1, draw(&ready, &quiet("PST")).1);
}

#[test]
fn alarm_screen_wraps_and_scrolls_a_long_location() {
    let m = alarm_model(vec![
        call("Alice Johnson", LONG_LOCATION, false, false),
        call("Bob", "Lobby", false, false),
    ]);
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Alarm);
    golden("alarm", &fb);
    // The headline is a lit bar while unacknowledged.
    assert!(fb.pixel(0, 0) && fb.pixel(127, 14));

    // Later ticks show later lines of the location, then come back to the start.
    let frames: Vec<Framebuffer> = (0..40)
        .map(|tick| draw(&m, &ScreenContext { tick, ..ctx() }).1)
        .collect();
    let distinct: std::collections::HashSet<[u8; 1024]> =
        frames.iter().map(|f| f.pages()).collect();
    assert!(
        distinct.len() >= 3,
        "only {} scroll positions",
        distinct.len()
    );
    assert!(frames[1..].contains(&frames[0]));
    golden("alarm_scrolled", &frames[6]);

    // A short location does not move.
    let short = alarm_model(vec![call("Alice", "Lobby", false, false)]);
    let still = draw(&short, &ctx()).1;
    for tick in 0..20 {
        assert_eq!(draw(&short, &ScreenContext { tick, ..ctx() }).1, still);
    }
}

#[test]
fn alarm_acknowledged_screen() {
    let m = alarm_model(vec![call("Alice Johnson", LONG_LOCATION, false, true)]);
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Alarm);
    golden("alarm_acknowledged", &fb);
    // No lit bar once acknowledged, and the footer changed.
    assert!(!fb.pixel(0, 0) && !fb.pixel(127, 14));
    let unacked = alarm_model(vec![call("Alice Johnson", LONG_LOCATION, false, false)]);
    assert_ne!(draw(&unacked, &ctx()).1, fb);
}

#[test]
fn test_screen() {
    let mut m = model(DisplayMode::Test, "THIS IS A TEST");
    m.state = AlarmState::Alerting;
    m.calls = vec![call("Facilities drill", "Lab", true, false)];
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Test);
    golden("test", &fb);
    // Prominent: the top 40 rows carry a lot of ink.
    let top: usize = (0..40)
        .flat_map(|y| (0..128).map(move |x| (x, y)))
        .filter(|&(x, y)| fb.pixel(x, y))
        .count();
    assert!(top > 400, "{top} pixels");
}

const POSSIBLE_MESSAGE: &str = "Kim Lee: emergency in the server room, smoke from rack 4? \
                                Someone please check / Sent from Teams";

fn possible_model(acknowledged: bool, message: Option<&str>) -> DisplayModel {
    let mut m = model(DisplayMode::Possible, POSSIBLE_HEADLINE);
    m.state = if acknowledged {
        AlarmState::Acknowledged
    } else {
        AlarmState::Alerting
    };
    m.acknowledged = acknowledged;
    let mut c = call("Kim Lee", "Building 4", false, acknowledged);
    c.summary.dial_string = None;
    c.summary.is_possible = true;
    c.summary.message = message.map(String::from);
    m.calls = vec![c];
    m
}

/// Writes the ×4 picture for the docs when `BEACON_SCREENSHOTS` names a directory.
fn screenshot(name: &str, fb: &Framebuffer) {
    if let Some(dir) = std::env::var_os("BEACON_SCREENSHOTS") {
        let path = PathBuf::from(dir).join(format!("{name}.png"));
        std::fs::write(&path, fb.to_png_scaled(4)).unwrap();
    }
}

#[test]
fn possible_screen_says_check_teams_with_the_message() {
    let m = possible_model(false, Some(POSSIBLE_MESSAGE));
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Possible);
    golden("possible", &fb);
    screenshot("display-possible", &fb);
    // A lit bar (the first line) while unacknowledged, but not the alarm's 15-row headline.
    assert!(fb.pixel(0, 0) && fb.pixel(127, 10));
    assert!(!fb.pixel(0, 14) && !fb.pixel(127, 14));
    // Not the alarm screen for the same call.
    let mut as_alarm = m.clone();
    as_alarm.mode = DisplayMode::Alarm;
    as_alarm.headline = "EMERGENCY CALL".into();
    assert_ne!(draw(&as_alarm, &ctx()).1, fb);
    // The message text is shown: another message draws another picture, and it scrolls.
    assert_ne!(
        draw(&possible_model(false, Some("Fire drill at noon?")), &ctx()).1,
        fb
    );
    let frames: std::collections::HashSet<[u8; 1024]> = (0..20)
        .map(|tick| draw(&m, &ScreenContext { tick, ..ctx() }).1.pages())
        .collect();
    assert!(frames.len() >= 2, "the message does not scroll");
    // Without message text it still draws, and says so.
    assert_ne!(draw(&possible_model(false, None), &ctx()).1, fb);
}

#[test]
fn possible_acknowledged_screen_drops_the_bar() {
    let (screen, fb) = draw(&possible_model(true, Some(POSSIBLE_MESSAGE)), &ctx());
    assert_eq!(screen, Screen::Possible);
    assert!(!fb.pixel(0, 0) && !fb.pixel(127, 10));
    golden("possible_acknowledged", &fb);
}

#[test]
fn lamp_test_lights_almost_everything() {
    let (screen, fb) = draw(&model(DisplayMode::LampTest, "LAMP TEST"), &ctx());
    assert_eq!(screen, Screen::LampTest);
    golden("lamp_test", &fb);
    assert!(lit(&fb) > 128 * 64 * 9 / 10);
}

fn trouble(component: &str, detail: &str, since: DateTime<Utc>) -> TroubleView {
    TroubleView {
        component: component.into(),
        detail: detail.into(),
        since,
    }
}

#[test]
fn trouble_screens() {
    let mut m = model(DisplayMode::Trouble, "TROUBLE");
    m.troubles = vec![trouble(
        "eventhub",
        "Cannot reach the Event Hub: connection refused (retrying every 30 s)",
        utc(12, 47),
    )];
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Trouble);
    golden("trouble", &fb);

    // Since another day shows the date; several troubles are listed.
    m.troubles = vec![
        trouble("eventhub", "refused", utc(12, 47)),
        trouble(
            "mqtt",
            "down",
            Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap(),
        ),
        trouble("signin", "expired", utc(9, 0)),
    ];
    let (_, fb) = draw(&m, &ctx());
    golden("trouble_several", &fb);
}

#[test]
fn setup_screens() {
    let mut c = ctx();
    c.setup = Some(SetupInfo {
        address: "https://beacon.local".into(),
        sign_in: Some(SignInCode {
            code: "F7KQ2XWPL".into(),
            url: "https://microsoft.com/devicelogin".into(),
        }),
        setup_code: None,
        certificate: None,
    });
    // Setup is shown over trouble and ready, never over a call.
    let mut m = model(DisplayMode::Trouble, "TROUBLE");
    m.troubles = vec![trouble("signin", "not signed in", utc(9, 0))];
    let (screen, fb) = draw(&m, &c);
    assert_eq!(screen, Screen::Setup);
    golden("setup_sign_in", &fb);
    let without_code = {
        let mut c = c.clone();
        c.setup.as_mut().unwrap().sign_in = None;
        c
    };
    let (_, fb) = draw(&model(DisplayMode::Ready, "READY"), &without_code);
    golden("setup", &fb);
    // First start: the code that sets the console's admin password is on the panel.
    let first_start = {
        let mut c = without_code.clone();
        c.setup.as_mut().unwrap().setup_code = Some("K7QM-2XWP".into());
        c
    };
    let (_, fb) = draw(&model(DisplayMode::Ready, "READY"), &first_start);
    golden("setup_first_start", &fb);
    // With HTTPS, the start of the console certificate's SHA-256 fingerprint, to check the
    // browser's warning against.
    let with_certificate = {
        let mut c = first_start.clone();
        c.setup.as_mut().unwrap().certificate = Some(
            "3A:7F:09:C2:5E:D1:88:4B:6A:0C:F3:92:17:E5:B8:2D:C4:61:9F:03:7A:E8:55:1B:D6:42:8C:F0:3E:A9:27:B1"
                .into(),
        );
        c
    };
    let (_, fb) = draw(&model(DisplayMode::Ready, "READY"), &with_certificate);
    golden("setup_certificate", &fb);
    let alarm = alarm_model(vec![call("Ann", "Desk", false, false)]);
    assert_eq!(draw(&alarm, &c).0, Screen::Alarm);
}

#[test]
fn an_open_join_code_is_shown_with_the_minutes_left_until_it_expires() {
    let mut c = ctx();
    let expires = now().with_timezone(&Utc) + chrono::Duration::seconds(9 * 60 + 30);
    c.join_code = Some(JoinCodeInfo {
        code: "K7QM-2XWP-HD4N.3B7QXZ2MW9K4PJ6TR8HC5N2DAE".into(),
        expires,
    });
    // Over ready, trouble and setup …
    let (screen, fb) = draw(&model(DisplayMode::Ready, "READY"), &c);
    assert_eq!(screen, Screen::JoinCode);
    golden("join_code", &fb);
    let mut m = model(DisplayMode::Trouble, "TROUBLE");
    m.troubles = vec![trouble("signin", "not signed in", utc(9, 0))];
    assert_eq!(draw(&m, &c).0, Screen::JoinCode);
    // … with the minutes left counting down …
    let later = ScreenContext {
        now: now() + chrono::Duration::minutes(9),
        ..c.clone()
    };
    let (_, one_minute_left) = draw(&model(DisplayMode::Ready, "READY"), &later);
    assert_ne!(one_minute_left, fb);
    // … never over a call, and gone once it expired.
    let alarm = alarm_model(vec![call("Ann", "Desk", false, false)]);
    assert_eq!(draw(&alarm, &c).0, Screen::Alarm);
    let expired = ScreenContext {
        now: now() + chrono::Duration::minutes(10),
        ..c
    };
    assert_eq!(
        draw(&model(DisplayMode::Ready, "READY"), &expired).0,
        Screen::Ready
    );
}

#[test]
fn hostile_caller_text_is_cleaned_cut_and_never_panics() {
    let hostile = format!(
        "\u{202E}Mallory\u{202C}\u{7}\u{1b}[2J\u{2066}\u{2067}\u{2068}\u{2069}\r\n{}",
        "\u{202D}x".repeat(10_000)
    );
    let plain = format!("Mallory[2J {}", "x".repeat(10_000));
    for (is_test, mode) in [
        (false, DisplayMode::Alarm),
        (true, DisplayMode::Test),
        (false, DisplayMode::Possible),
    ] {
        let mut m = alarm_model(vec![call(&hostile, &hostile, is_test, true)]);
        m.mode = mode;
        m.calls[0].acknowledged_by = Some(hostile.clone());
        m.calls[0].summary.message = Some(hostile.clone());
        let mut clean = m.clone();
        clean.calls[0].summary.caller_name = Some(plain.clone());
        clean.calls[0].summary.location = Some(plain.clone());
        clean.calls[0].summary.message = Some(plain.clone());
        clean.calls[0].acknowledged_by = Some(plain.clone());
        for tick in [0, 1, 7, 1_000_000, u64::MAX] {
            let c = ScreenContext { tick, ..ctx() };
            // Without the override and control characters, the picture is the same.
            assert_eq!(draw(&m, &c).1, draw(&clean, &c).1, "tick {tick}");
        }
        if mode == DisplayMode::Alarm {
            golden("alarm_hostile", &draw(&m, &ctx()).1);
        }
    }
    // Everything past the cut is invisible: 10 000 characters draw like 30.
    let long = alarm_model(vec![call(&"W".repeat(10_000), "x", false, false)]);
    let short = alarm_model(vec![call(&"W".repeat(30), "x", false, false)]);
    assert_eq!(draw(&long, &ctx()).1, draw(&short, &ctx()).1);
    // A name of nothing but overrides draws like an empty one.
    let ghost = alarm_model(vec![call("\u{202E}\u{202E}\u{2067}", "x", false, false)]);
    let empty = alarm_model(vec![call("", "x", false, false)]);
    assert_eq!(draw(&ghost, &ctx()).1, draw(&empty, &ctx()).1);

    // Trouble and setup text is just as untrusted.
    let mut m = model(DisplayMode::Trouble, "TROUBLE");
    m.troubles = vec![trouble(&hostile, &hostile, utc(1, 0))];
    draw(&m, &ctx());
    let mut c = ctx();
    c.last_call = Some(LastCall {
        at: utc(1, 0),
        caller: hostile.clone(),
    });
    draw(&model(DisplayMode::Ready, "READY"), &c);
    c.setup = Some(SetupInfo {
        address: hostile.clone(),
        sign_in: Some(SignInCode {
            code: hostile.clone(),
            url: hostile.clone(),
        }),
        setup_code: Some(hostile),
        certificate: None,
    });
    draw(&model(DisplayMode::Ready, "READY"), &c);
}

#[test]
fn trouble_screens_say_what_a_damaged_store_or_a_bad_file_did() {
    use beacon::store::{Recovery, RecoveryAction};
    let recovery = Recovery {
        at: utc(9, 12),
        cause: "sled found corrupted data".into(),
        action: RecoveryAction::FreshStore {
            kept_at: "/var/lib/beacon/damaged-20261205T091200Z/db".into(),
            restored: vec![beacon::store::ALARM_STATE.into(), "device_id".into()],
        },
    };
    let mut m = model(DisplayMode::Trouble, "TROUBLE");
    m.troubles = vec![trouble("store", &recovery.describe(), utc(9, 12))];
    let (screen, fb) = draw(&m, &ctx());
    assert_eq!(screen, Screen::Trouble);
    golden("trouble_store", &fb);

    m.troubles = vec![trouble(
        "configuration",
        "the configuration does not load; running on the last good one (saved 2026-12-04 \
         16:40 UTC): /etc/beacon/beacon.toml: `alarm.siren_auto_silence_minutes`: invalid \
         type, expected u32 — fix it and restart",
        utc(9, 12),
    )];
    let (_, fb) = draw(&m, &ctx());
    golden("trouble_configuration", &fb);
}
