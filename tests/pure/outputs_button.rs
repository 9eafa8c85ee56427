//! The acknowledge button: debounce, short and long presses, on a fake clock.

use std::time::{Duration, Instant};

use beacon::alarm::{Event, Source};
use beacon::hw::sim::SimInput;
use beacon::outputs::button::{Button, ButtonAction, Debouncer};
use beacon::outputs::config::ButtonConfig;
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

use ButtonAction::{Acknowledge, Hold};

fn debouncer() -> Debouncer {
    Debouncer::from_config(&ButtonConfig::default()) // 30 ms debounce, 3 s long press
}

/// Feeds `script` (from each time in ms, the button is pressed or not) sampled every 5 ms
/// until `end_ms`; returns each action with the time it came.
fn run(script: &[(u64, bool)], end_ms: u64) -> Vec<(u64, ButtonAction)> {
    let mut d = debouncer();
    let t0 = Instant::now();
    let mut actions = Vec::new();
    for t in (0..=end_ms).step_by(5) {
        let pressed = script
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .is_some_and(|(_, p)| *p);
        if let Some(a) = d.update(pressed, t0 + Duration::from_millis(t)) {
            actions.push((t, a));
        }
    }
    actions
}

/// The one action `script` gives, and when.
fn only(script: &[(u64, bool)], end_ms: u64) -> (u64, ButtonAction) {
    let actions = run(script, end_ms);
    assert_eq!(actions.len(), 1, "{actions:?}");
    actions[0]
}

fn kinds(actions: &[(u64, ButtonAction)]) -> Vec<ButtonAction> {
    actions.iter().map(|(_, a)| *a).collect()
}

#[test]
fn a_short_press_acknowledges_once_on_release() {
    let (at, action) = only(&[(0, false), (100, true), (300, false)], 1000);
    assert_eq!(action, Acknowledge);
    assert!((300..=340).contains(&at), "acknowledged at {at} ms");
}

#[test]
fn bounces_shorter_than_the_debounce_time_are_ignored() {
    // 10 ms and 20 ms blips: no press at all.
    let actions = run(
        &[
            (0, false),
            (100, true),
            (110, false),
            (200, true),
            (220, false),
        ],
        1000,
    );
    assert_eq!(actions, []);
}

#[test]
fn contact_chatter_around_a_press_gives_one_acknowledgement() {
    let actions = run(
        &[
            (0, false),
            (100, true),
            (105, false),
            (110, true),
            (120, false),
            (125, true), // held from here
            (400, false),
            (405, true),
            (410, false), // released from here
        ],
        1000,
    );
    assert_eq!(kinds(&actions), [Acknowledge]);
}

#[test]
fn a_long_press_starts_a_lamp_test_while_held_and_the_release_does_nothing() {
    let (at, action) = only(&[(0, false), (100, true), (5000, false)], 6000);
    assert_eq!(action, Hold);
    assert!((3100..=3110).contains(&at), "lamp test at {at} ms");
}

#[test]
fn a_press_just_under_the_long_press_time_is_still_an_acknowledgement() {
    let actions = run(&[(0, false), (100, true), (3050, false)], 4000);
    assert_eq!(kinds(&actions), [Acknowledge]);
}

#[test]
fn a_glitch_inside_a_long_press_does_not_split_it() {
    let actions = run(
        &[
            (0, false),
            (100, true),
            (1500, false),
            (1510, true),
            (4000, false),
        ],
        5000,
    );
    assert_eq!(kinds(&actions), [Hold]);
}

#[test]
fn a_button_held_at_start_does_nothing_until_it_was_released() {
    // Stuck (or wired with the wrong polarity) from the start: no lamp test, no acknowledge.
    assert_eq!(run(&[(0, true)], 10_000), []);
    assert_eq!(run(&[(0, true), (5000, false)], 6000), []);
    // Released, then pressed: counts.
    let actions = run(
        &[(0, true), (500, false), (1000, true), (1200, false)],
        2000,
    );
    assert_eq!(kinds(&actions), [Acknowledge]);
}

#[test]
fn an_active_low_button_is_pressed_when_its_line_is_low() {
    let mut script = vec![T::get(State::High); 10]; // released
    script.extend(vec![T::get(State::Low); 10]); // pressed
    script.extend(vec![T::get(State::High); 10]); // released
    let mut pin = Mock::new(&script);
    let mut button = Button::new(pin.clone(), true, debouncer());
    let t0 = Instant::now();
    let actions: Vec<_> = (0..30)
        .filter_map(|i| button.poll(t0 + Duration::from_millis(i * 10)).unwrap())
        .collect();
    assert_eq!(actions, [Acknowledge]);
    pin.done();
}

#[test]
fn the_simulated_button_can_be_pressed_by_a_test_or_the_web_page() {
    let input = SimInput::new(true);
    let mut button = Button::new(input.clone(), true, debouncer());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert_eq!(button.poll(at(0)).unwrap(), None);
    assert_eq!(button.poll(at(50)).unwrap(), None);
    input.press();
    assert_eq!(button.poll(at(100)).unwrap(), None);
    assert_eq!(button.poll(at(140)).unwrap(), None);
    assert_eq!(button.poll(at(3100)).unwrap(), Some(Hold));
    input.release();
    assert_eq!(button.poll(at(3200)).unwrap(), None);
    assert_eq!(button.poll(at(3300)).unwrap(), None);
}

#[test]
fn button_actions_are_alarm_events_from_the_button() {
    assert_eq!(
        Acknowledge.event(false),
        Event::Acknowledge {
            source: Source::Button,
            who: None
        }
    );
    assert_eq!(
        Hold.event(false),
        Event::LampTest {
            on: true,
            source: Source::Button,
            who: None
        }
    );
    // While a possible emergency is active, holding the button makes it the full alarm.
    assert!(matches!(
        Hold.event(true),
        Event::Confirm {
            key: None,
            source: Source::Button,
            ..
        }
    ));
}

#[tokio::test]
async fn pressing_the_button_acknowledges_the_alarm() {
    use beacon::alarm::{AlarmConfig, AlarmState, CallSummary};
    let dir = tempfile::tempdir().unwrap();
    let store = beacon::store::Store::open(dir.path()).unwrap();
    let (alarm, _task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), store, chrono::Utc::now());
    alarm.raise("k1", CallSummary::default()).await;
    let input = SimInput::new(true);
    let button = Button::new(input.clone(), true, debouncer());
    tokio::spawn(beacon::outputs::button::run(
        button,
        alarm.clone(),
        Duration::from_millis(5),
    ));
    let mut view = alarm.view();
    let state = |view: &tokio::sync::watch::Receiver<_>| {
        let v: &beacon::alarm_task::AlarmView = &view.borrow();
        v.state
    };
    view.wait_for(|v| v.state == AlarmState::Alerting)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    input.press();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        state(&view),
        AlarmState::Alerting,
        "acknowledged on release"
    );
    input.release();
    tokio::time::timeout(
        Duration::from_secs(2),
        view.wait_for(|v| v.state == AlarmState::Acknowledged),
    )
    .await
    .expect("the press acknowledged the call")
    .unwrap();
}

#[tokio::test]
async fn holding_the_button_makes_a_possible_alert_the_full_alarm() {
    use beacon::alarm::{AlarmConfig, AuditAction, CallSummary, OutputPattern};
    let dir = tempfile::tempdir().unwrap();
    let store = beacon::store::Store::open(dir.path()).unwrap();
    let (alarm, _task) =
        beacon::alarm_task::spawn(AlarmConfig::default(), store, chrono::Utc::now());
    let mut notices = alarm.notices();
    let possible = CallSummary {
        is_possible: true,
        ..CallSummary::default()
    };
    alarm.raise("p1", possible).await;
    let mut view = alarm.view();
    view.wait_for(|v| v.outputs.pattern == OutputPattern::Possible)
        .await
        .unwrap();
    let input = SimInput::new(true);
    let button = Button::new(input.clone(), true, debouncer());
    tokio::spawn(beacon::outputs::button::run(
        button,
        alarm.clone(),
        Duration::from_millis(5),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    input.press();
    tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|v| v.outputs.pattern == OutputPattern::Alarm),
    )
    .await
    .expect("holding the button sounded the full alarm")
    .unwrap();
    input.release();
    let confirmed = loop {
        let notice = notices.recv().await.unwrap();
        if notice.record.action == AuditAction::Confirmed {
            break notice.record;
        }
    };
    assert_eq!(confirmed.source, beacon::alarm::Source::Button);
    assert_eq!(confirmed.keys, ["p1"]);
}
