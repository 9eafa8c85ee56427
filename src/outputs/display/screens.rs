//! The screens: pure functions from the alarm's [`DisplayModel`] and a [`ScreenContext`] to a
//! [`Framebuffer`]. No clock, no IO: the time and the scroll tick are passed in.
//!
//! Layout (128×64): a 15-row headline in a bold 9×15 font, body lines in 6×10 (21 characters),
//! and a footer in 4×6 (32 characters). All text from calls and troubles goes through
//! [`text::clean`] and is cut or wrapped to fit.

use chrono::{DateTime, FixedOffset, Utc};
use embedded_graphics::mono_font::iso_8859_1::{
    FONT_10X20, FONT_4X6, FONT_5X8, FONT_6X10, FONT_9X15_BOLD,
};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, Polyline, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use super::framebuffer::{Framebuffer, HEIGHT, WIDTH};
use super::text;
use crate::alarm::{CallView, DisplayMode, DisplayModel, TroubleView};

/// How the rest of Beacon is doing, shown as ticks on the ready screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusTicks {
    /// The service account is signed in (a usable refresh token).
    pub signed_in: bool,
    /// The Graph change-notification subscription is live.
    pub subscribed: bool,
    /// The Event Hub consumer is connected.
    pub hub_connected: bool,
    /// The MQTT broker is connected.
    pub mqtt_connected: bool,
}

/// The most recent call, for the ready screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCall {
    pub at: DateTime<Utc>,
    /// Caller name as received (cleaned when drawn).
    pub caller: String,
}

/// A device-code sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInCode {
    /// The code the user types, e.g. `ABCD1234`.
    pub code: String,
    /// Where to type it, e.g. `https://microsoft.com/devicelogin`.
    pub url: String,
}

/// Beacon is not set up yet (or is signing in again): where to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupInfo {
    /// The setup page, e.g. `https://beacon.local`.
    pub address: String,
    pub sign_in: Option<SignInCode>,
    /// The one-time code that sets the console's admin password, while no admin exists.
    pub setup_code: Option<String>,
    /// The SHA-256 fingerprint of the console's certificate (`AB:CD:…`), when it has one.
    pub certificate: Option<String>,
}

/// Everything a screen shows that is not in the [`DisplayModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenContext {
    /// Now, in the local time zone of the desk (times are shown in this offset).
    pub now: DateTime<FixedOffset>,
    /// The zone's abbreviation now (`PST`, `CET`, `UTC`, `+0530`): the ready screen names it.
    pub zone: String,
    /// Advances steadily (e.g. once a second); drives scrolling of long text.
    pub tick: u64,
    pub status: StatusTicks,
    pub last_call: Option<LastCall>,
    /// Shown instead of the ready and trouble screens while set.
    pub setup: Option<SetupInfo>,
    /// A fleet join code open on the console: shown instead of the setup, trouble and ready
    /// screens until it expires (an alarm still wins).
    pub join_code: Option<JoinCodeInfo>,
}

/// A one-time fleet join code (`XXXX-XXXX-XXXX.PIN`) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCodeInfo {
    pub code: String,
    pub expires: DateTime<Utc>,
}

/// Which screen [`render`] drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Ready,
    Alarm,
    Possible,
    Test,
    LampTest,
    Trouble,
    Setup,
    JoinCode,
}

impl Screen {
    /// Alarm beats possible beats test beats lamp test beats an open join code beats setup
    /// beats trouble beats ready.
    pub fn choose(model: &DisplayModel, ctx: &ScreenContext) -> Screen {
        let join_open = ctx
            .join_code
            .as_ref()
            .is_some_and(|j| ctx.now.with_timezone(&Utc) < j.expires);
        match model.mode {
            DisplayMode::Alarm => Screen::Alarm,
            DisplayMode::Possible => Screen::Possible,
            DisplayMode::Test => Screen::Test,
            DisplayMode::LampTest => Screen::LampTest,
            _ if join_open => Screen::JoinCode,
            _ if ctx.setup.is_some() => Screen::Setup,
            DisplayMode::Trouble => Screen::Trouble,
            DisplayMode::Ready => Screen::Ready,
        }
    }
}

/// Clears `fb` and draws the screen [`Screen::choose`] picks; returns it.
pub fn render(model: &DisplayModel, ctx: &ScreenContext, fb: &mut Framebuffer) -> Screen {
    let Ok(()) = fb.clear(BinaryColor::Off);
    let screen = Screen::choose(model, ctx);
    let mut canvas = Canvas { fb };
    match (screen, model.calls.first(), &ctx.setup) {
        (Screen::Alarm, Some(call), _) => alarm(&mut canvas, model, call, ctx),
        (Screen::Possible, Some(call), _) => possible(&mut canvas, model, call, ctx),
        (Screen::Test, Some(call), _) => test(&mut canvas, model, call),
        (Screen::LampTest, _, _) => lamp_test(&mut canvas, model),
        (Screen::Setup, _, Some(setup)) => setup_screen(&mut canvas, setup, ctx),
        (Screen::JoinCode, _, _) => join_code_screen(&mut canvas, ctx),
        (Screen::Trouble, _, _) => trouble(&mut canvas, model, ctx),
        // Ready, and the impossible "alarm without a call": the headline still says it.
        _ => ready(&mut canvas, model, ctx),
    }
    screen
}

const HEADLINE: &MonoFont = &FONT_9X15_BOLD;
const BODY: &MonoFont = &FONT_6X10;
const SMALL: &MonoFont = &FONT_5X8;
const FOOTER: &MonoFont = &FONT_4X6;
const HUGE: &MonoFont = &FONT_10X20;

/// Top of the body lines under a headline.
const BODY_TOP: i32 = 16;
/// Top of the footer line.
const FOOTER_TOP: i32 = HEIGHT as i32 - 6;

#[derive(Clone, Copy)]
enum Align {
    Left,
    Centre,
    Right,
}

/// The framebuffer with the few drawing operations the screens use.
struct Canvas<'a> {
    fb: &'a mut Framebuffer,
}

impl Canvas<'_> {
    /// Characters of `font` that fit across the panel.
    fn columns(font: &MonoFont) -> usize {
        (WIDTH / font.character_size.width) as usize
    }

    /// Draws `s` (already clean) on one line at `top`, cut to fit from its starting column.
    fn text(&mut self, s: &str, font: &MonoFont, top: i32, align: Align, lit: bool) {
        let char_w = font.character_size.width as i32;
        let fit = text::cut(s, Self::columns(font));
        let w = fit.chars().count() as i32 * char_w;
        let x = match align {
            Align::Left => 0,
            Align::Centre => (WIDTH as i32 - w) / 2,
            Align::Right => WIDTH as i32 - w,
        };
        let style = MonoTextStyle::new(font, BinaryColor::from(lit));
        let Ok(_) =
            Text::with_baseline(&fit, Point::new(x, top), style, Baseline::Top).draw(self.fb);
    }

    /// One body line: `left` (clean) cut to leave room for `right`, which is right-aligned.
    fn split_line(&mut self, left: &str, right: &str, top: i32) {
        let room = Self::columns(BODY).saturating_sub(right.chars().count() + 1);
        self.text(&text::cut(left, room), BODY, top, Align::Left, true);
        self.text(right, BODY, top, Align::Right, true);
    }

    /// A body line of untrusted text.
    fn line(&mut self, untrusted: &str, top: i32, align: Align) {
        self.text(&text::clean(untrusted), BODY, top, align, true);
    }

    /// The headline, dark on a lit bar when `inverted`.
    fn headline(&mut self, s: &str, inverted: bool) {
        if inverted {
            self.fill(Rectangle::new(Point::zero(), Size::new(WIDTH, 15)), true);
        }
        self.text(s, HEADLINE, 0, Align::Centre, !inverted);
        if !inverted {
            self.hline(BODY_TOP - 1);
        }
    }

    fn footer(&mut self, s: &str) {
        self.text(s, FOOTER, FOOTER_TOP, Align::Centre, true);
    }

    /// Up to `visible` wrapped body lines of untrusted `s` from `top`, scrolled by `tick`.
    fn paragraph(&mut self, untrusted: &str, top: i32, visible: usize, tick: u64) {
        let lines = text::wrap(&text::clean(untrusted), Self::columns(BODY));
        let line_h = BODY.character_size.height as i32;
        for (i, l) in text::scroll_window(&lines, visible, tick)
            .iter()
            .enumerate()
        {
            self.text(l, BODY, top + i as i32 * line_h, Align::Left, true);
        }
    }

    fn fill(&mut self, area: Rectangle, lit: bool) {
        let Ok(()) = area
            .into_styled(PrimitiveStyle::with_fill(BinaryColor::from(lit)))
            .draw(self.fb);
    }

    fn hline(&mut self, y: i32) {
        let style = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
        let Ok(()) = Line::new(Point::new(0, y), Point::new(WIDTH as i32 - 1, y))
            .into_styled(style)
            .draw(self.fb);
    }

    /// A 7×7 tick (✓) when `ok`, a cross otherwise, top-left at `at`.
    fn tick_mark(&mut self, at: Point, ok: bool) {
        let style = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
        let Ok(()) = if ok {
            let points = [
                at + Point::new(0, 4),
                at + Point::new(2, 6),
                at + Point::new(6, 0),
            ];
            Polyline::new(&points).into_styled(style).draw(self.fb)
        } else {
            let Ok(()) = Line::new(at, at + Point::new(6, 6))
                .into_styled(style)
                .draw(self.fb);
            Line::new(at + Point::new(0, 6), at + Point::new(6, 0))
                .into_styled(style)
                .draw(self.fb)
        };
    }
}

/// `mm:ss` (minutes keep counting past 59).
fn mm_ss(secs: u64) -> String {
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// `14:02` today, `28 Nov 14:02` on another day, in `now`'s offset.
fn when(at: DateTime<Utc>, now: &DateTime<FixedOffset>) -> String {
    let local = at.with_timezone(now.offset());
    if local.date_naive() == now.date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%d %b %H:%M").to_string()
    }
}

fn caller_of(call: &CallView) -> &str {
    call.summary
        .caller_name
        .as_deref()
        .unwrap_or("Unknown caller")
}

/// Dial string, "+N" for further calls, and elapsed time, on one body line at `top`.
fn call_info_line(c: &mut Canvas<'_>, model: &DisplayModel, call: &CallView, top: i32) {
    let dial = text::clean(call.summary.dial_string.as_deref().unwrap_or(""));
    let more = model.calls.len().saturating_sub(1);
    let left = if more > 0 {
        format!("{} +{more} more", text::cut(&dial, 6))
    } else {
        text::cut(&dial, 12)
    };
    c.split_line(&left, &mm_ss(call.elapsed_secs), top);
}

fn acknowledge_footer(c: &mut Canvas<'_>, call: &CallView) {
    if call.acknowledged {
        let who = call.acknowledged_by.as_deref().map(text::clean);
        match who {
            Some(who) if !who.is_empty() => c.footer(&format!("Acknowledged by {who}")),
            _ => c.footer("Acknowledged"),
        }
    } else {
        c.footer("Press button to acknowledge");
    }
}

fn alarm(c: &mut Canvas<'_>, model: &DisplayModel, call: &CallView, ctx: &ScreenContext) {
    // Lit bar while someone still has to react; plain once acknowledged.
    c.headline(&model.headline, !call.acknowledged);
    c.line(caller_of(call), BODY_TOP, Align::Left);
    let location = call
        .summary
        .location
        .as_deref()
        .unwrap_or("Location unknown");
    c.paragraph(location, BODY_TOP + 10, 2, ctx.tick);
    call_info_line(c, model, call, BODY_TOP + 31);
    acknowledge_footer(c, call);
}

/// "POSSIBLE EMERGENCY" (on a lit bar until acknowledged), "CHECK TEAMS", the caller and
/// elapsed time, then the message text the guard must judge, scrolled two lines at a time.
/// The footer says how to acknowledge and how to make it the full alarm.
fn possible(c: &mut Canvas<'_>, model: &DisplayModel, call: &CallView, ctx: &ScreenContext) {
    let (first, second) = model
        .headline
        .split_once(" — ")
        .unwrap_or((model.headline.as_str(), ""));
    let line_h = BODY.character_size.height as i32;
    if !call.acknowledged {
        c.fill(
            Rectangle::new(Point::zero(), Size::new(WIDTH, line_h as u32 + 1)),
            true,
        );
    }
    c.text(first, BODY, 1, Align::Centre, call.acknowledged);
    c.text(second, BODY, line_h + 2, Align::Centre, true);
    c.split_line(
        &text::clean(caller_of(call)),
        &mm_ss(call.elapsed_secs),
        2 * line_h + 3,
    );
    let message = call
        .summary
        .message
        .as_deref()
        .unwrap_or("No message text: read the chat in Teams");
    c.paragraph(message, 3 * line_h + 3, 2, ctx.tick);
    if call.acknowledged {
        acknowledge_footer(c, call);
    } else {
        c.footer("Press: ack  Hold: full alarm");
    }
}

fn test(c: &mut Canvas<'_>, model: &DisplayModel, call: &CallView) {
    // "THIS IS A TEST" over two lines of the largest font.
    let words: Vec<&str> = model.headline.split(' ').collect();
    let (first, second) = words.split_at(words.len().div_ceil(2));
    c.text(&first.join(" "), HUGE, 0, Align::Centre, true);
    c.text(&second.join(" "), HUGE, 19, Align::Centre, true);
    c.split_line(&text::clean(caller_of(call)), &mm_ss(call.elapsed_secs), 40);
    acknowledge_footer(c, call);
}

fn lamp_test(c: &mut Canvas<'_>, model: &DisplayModel) {
    c.fill(
        Rectangle::new(Point::zero(), Size::new(WIDTH, HEIGHT)),
        true,
    );
    c.text(&model.headline, HEADLINE, 24, Align::Centre, false);
}

fn trouble(c: &mut Canvas<'_>, model: &DisplayModel, ctx: &ScreenContext) {
    c.headline(&model.headline, true);
    match model.troubles.as_slice() {
        [] => c.line("No details", BODY_TOP, Align::Left),
        [only] => {
            c.line(&only.component, BODY_TOP, Align::Left);
            c.line(
                &format!("since {}", when(only.since, &ctx.now)),
                BODY_TOP + 10,
                Align::Left,
            );
            c.paragraph(&only.detail, BODY_TOP + 21, 2, ctx.tick);
        }
        several => {
            let shown = 4;
            for (i, t) in several.iter().take(shown).enumerate() {
                trouble_row(c, t, ctx, BODY_TOP + 10 * i as i32);
            }
            if several.len() > shown {
                c.footer(&format!("+{} more", several.len() - shown));
            }
        }
    }
}

/// "component      14:02" on one line.
fn trouble_row(c: &mut Canvas<'_>, t: &TroubleView, ctx: &ScreenContext, top: i32) {
    c.split_line(&text::clean(&t.component), &when(t.since, &ctx.now), top);
}

fn ready(c: &mut Canvas<'_>, model: &DisplayModel, ctx: &ScreenContext) {
    c.text(&model.headline, HEADLINE, 0, Align::Left, true);
    c.text(
        &ctx.now.format("%H:%M").to_string(),
        HEADLINE,
        0,
        Align::Right,
        true,
    );
    c.hline(BODY_TOP - 1);
    let s = ctx.status;
    let ticks = [
        ("Sign-in", s.signed_in),
        ("Subscr.", s.subscribed),
        ("Hub", s.hub_connected),
        ("MQTT", s.mqtt_connected),
    ];
    for (i, (label, ok)) in ticks.into_iter().enumerate() {
        let x = if i % 2 == 0 { 0 } else { 64 };
        let top = BODY_TOP + 2 + 11 * (i / 2) as i32;
        c.tick_mark(Point::new(x + 1, top + 1), ok);
        let label_x = Point::new(x + 10, top);
        let style = MonoTextStyle::new(BODY, BinaryColor::On);
        let Ok(_) = Text::with_baseline(label, label_x, style, Baseline::Top).draw(c.fb);
    }
    // The times on this screen are the zone's: it is named beside the last call's.
    let zone = text::clean(&ctx.zone);
    match &ctx.last_call {
        Some(last) => {
            c.split_line(
                "Last call",
                &format!("{} {zone}", when(last.at, &ctx.now)),
                42,
            );
            c.line(&last.caller, 53, Align::Left);
        }
        None => c.split_line("No calls yet", &zone, 42),
    }
}

/// The open join code: its secret part large enough to read across a desk, the certificate
/// pin after the dot in small letters, and the minutes left.
fn join_code_screen(c: &mut Canvas<'_>, ctx: &ScreenContext) {
    let Some(join) = &ctx.join_code else {
        return;
    };
    c.headline("JOIN FLEET", true);
    let code = text::clean(&join.code);
    let (secret, pin) = code.split_once('.').unwrap_or((code.as_str(), ""));
    c.text(
        "Code for the new box:",
        SMALL,
        BODY_TOP + 2,
        Align::Left,
        true,
    );
    c.text(secret, BODY, BODY_TOP + 13, Align::Centre, true);
    if !pin.is_empty() {
        c.text(
            &format!(".{pin}"),
            FOOTER,
            BODY_TOP + 26,
            Align::Centre,
            true,
        );
    }
    let left = (join.expires - ctx.now.with_timezone(&Utc))
        .num_seconds()
        .max(0);
    let minutes = (left + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    c.text(
        &format!("{minutes} {unit} left, one box"),
        SMALL,
        BODY_TOP + 36,
        Align::Centre,
        true,
    );
}

/// `url` without its scheme when the whole would not fit in `columns`.
fn fit_url(url: &str, columns: usize) -> String {
    let url = text::clean(url);
    if url.chars().count() <= columns {
        return url;
    }
    let bare = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(&url);
    text::cut(bare, columns)
}

fn setup_screen(c: &mut Canvas<'_>, setup: &SetupInfo, ctx: &ScreenContext) {
    c.headline("SETUP", true);
    let address = fit_url(&setup.address, Canvas::columns(BODY));
    match &setup.sign_in {
        None => {
            c.text("Open in a browser:", BODY, BODY_TOP + 4, Align::Left, true);
            c.text(&address, BODY, BODY_TOP + 16, Align::Left, true);
            if let Some(code) = &setup.setup_code {
                let line = format!("Code: {}", text::clean(code));
                c.text(&line, BODY, BODY_TOP + 30, Align::Left, true);
            }
            match &setup.certificate {
                // The first 8 bytes, as the browser's certificate viewer starts them.
                Some(sha256) => c.footer(&format!("SHA256 {}", text::cut(sha256, 24))),
                None if setup.setup_code.is_none() => {
                    c.footer(&ctx.now.format("%H:%M").to_string())
                }
                None => {}
            }
        }
        Some(sign_in) => {
            c.text(&address, BODY, BODY_TOP + 1, Align::Left, true);
            c.text("Sign in at", SMALL, BODY_TOP + 12, Align::Left, true);
            let url = fit_url(&sign_in.url, Canvas::columns(SMALL));
            c.text(&url, SMALL, BODY_TOP + 20, Align::Left, true);
            c.text(
                &text::clean(&sign_in.code),
                HEADLINE,
                BODY_TOP + 30,
                Align::Centre,
                true,
            );
        }
    }
}
