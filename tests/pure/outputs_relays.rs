//! The relays: polarity, flash cadence on a fake clock, fail-safe, writes only on change,
//! pin errors, and the task following the alarm view.

use std::time::{Duration, Instant};

use beacon::alarm::{
    Alarm, AlarmConfig, CallSummary, Event, Output, OutputPattern, OutputState, Source,
};
use beacon::alarm_task::AlarmView;
use beacon::hw::sim;
use beacon::outputs::relays::{level, Line, Relay, Relays};
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

fn state(strobe: Output, siren: Output, trouble: Output) -> OutputState {
    OutputState {
        pattern: OutputPattern::Alarm,
        strobe,
        siren,
        trouble,
    }
}

fn off() -> OutputState {
    state(Output::Off, Output::Off, Output::Off)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three mock pins expecting these writes; the clones check them with `done()`.
fn mocks(writes: [&[State]; 3]) -> (Vec<Mock>, [Mock; 3]) {
    let pins = writes.map(|w| Mock::new(&w.iter().map(|s| T::set(*s)).collect::<Vec<_>>()));
    (pins.to_vec(), pins)
}

fn done(mut pins: Vec<Mock>) {
    for pin in &mut pins {
        pin.done();
    }
}

#[test]
fn active_low_lines_are_driven_low_to_energise_and_active_high_lines_high() {
    use State::{High, Low};
    // strobe and siren on an active-low relay board, trouble LED active high.
    let (check, [s, r, t]) = mocks([&[Low, High], &[High], &[High, Low]]);
    let mut relays = Relays::new(
        Some(Relay::new(s, true)),
        Some(Relay::new(r, true)),
        Some(Relay::new(t, false)),
    );
    let t0 = Instant::now();
    relays
        .apply(&state(Output::Steady, Output::Off, Output::Steady), t0)
        .unwrap();
    assert_eq!(relays.energised(), [Some(true), Some(false), Some(true)]);
    relays.apply(&off(), t0 + ms(10)).unwrap();
    drop(relays);
    done(check);
}

#[test]
fn pins_are_written_only_when_their_level_changes() {
    use State::{High, Low};
    let (check, [s, r, t]) = mocks([&[High, Low], &[Low], &[Low]]);
    let mut relays = Relays::new(
        Some(Relay::new(s, false)),
        Some(Relay::new(r, false)),
        Some(Relay::new(t, false)),
    );
    let t0 = Instant::now();
    let on = state(Output::Steady, Output::Off, Output::Off);
    for i in 0..5 {
        relays.apply(&on, t0 + ms(i * 50)).unwrap();
    }
    relays.apply(&off(), t0 + ms(300)).unwrap();
    relays.apply(&off(), t0 + ms(350)).unwrap();
    drop(relays);
    done(check);
}

#[test]
fn safe_state_at_boot_and_shutdown_de_energises_every_line_respecting_polarity() {
    use State::{High, Low};
    // boot: safe (inactive level); alarm: all on; shutdown: safe again.
    let (check, [s, r, t]) = mocks([&[High, Low, High], &[High, Low, High], &[Low, High, Low]]);
    let mut relays = Relays::new(
        Some(Relay::new(s, true)),
        Some(Relay::new(r, true)),
        Some(Relay::new(t, false)),
    );
    relays.safe().unwrap();
    assert_eq!(relays.energised(), [Some(false); 3]);
    let t0 = Instant::now();
    relays
        .apply(&state(Output::Steady, Output::Steady, Output::Steady), t0)
        .unwrap();
    relays.safe().unwrap();
    assert_eq!(relays.energised(), [Some(false); 3]);
    drop(relays);
    done(check);
}

#[test]
fn flashing_is_on_for_the_first_half_of_the_period_and_off_for_the_second() {
    let flash = Output::flashing(500);
    for (t, on) in [
        (0, true),
        (249, true),
        (250, false),
        (499, false),
        (500, true),
    ] {
        assert_eq!(level(flash, ms(t)), on, "at {t} ms");
    }
    assert!(level(Output::Steady, ms(12_345)));
    assert!(!level(Output::Off, ms(0)));
}

#[test]
fn a_flash_period_below_333_ms_is_slowed_down_to_333_ms() {
    // Built directly, bypassing Output::flashing's clamp.
    let fast = Output::Flashing { period_ms: 100 };
    assert!(level(fast, ms(0)));
    assert!(level(fast, ms(165)));
    assert!(!level(fast, ms(166)), "still on: flashing faster than 3 Hz");
    assert!(!level(fast, ms(332)));
    assert!(level(fast, ms(333)));
}

#[test]
fn a_flashing_strobe_toggles_at_the_flash_cadence_on_a_fake_clock() {
    let (mut relays, lamps) = sim::relays(true);
    let t0 = Instant::now();
    let alarm = state(Output::flashing(500), Output::Steady, Output::Off);
    let mut edges = Vec::new();
    let mut was_on = false;
    for t in (0..=3000).step_by(10) {
        relays.apply(&alarm, t0 + ms(t)).unwrap();
        if lamps.strobe.is_on() != was_on {
            was_on = !was_on;
            edges.push(t);
        }
        assert!(lamps.siren.is_on());
    }
    let expected: Vec<u64> = (0..=3000).step_by(250).collect();
    assert_eq!(edges, expected, "strobe on at 0, off at 250, on at 500 …");
    // One write per edge: nothing in between.
    assert_eq!(lamps.strobe.writes(), expected.len());
    assert_eq!(lamps.siren.writes(), 1);
}

#[test]
fn never_more_than_three_flashes_a_second_whatever_the_state_asks() {
    let (mut relays, lamps) = sim::relays(false);
    let t0 = Instant::now();
    let too_fast = state(Output::Flashing { period_ms: 50 }, Output::Off, Output::Off);
    let mut rising = 0;
    let mut was_on = false;
    for t in 0..10_000 {
        relays.apply(&too_fast, t0 + ms(t)).unwrap();
        if lamps.strobe.is_on() && !was_on {
            rising += 1;
        }
        was_on = lamps.strobe.is_on();
    }
    assert!(rising <= 31, "{rising} flashes in 10 s");
    assert!(rising >= 30, "{rising} flashes in 10 s");
}

#[test]
fn a_new_pattern_restarts_the_flash_and_the_next_edge_is_known() {
    let (mut relays, lamps) = sim::relays(true);
    let t0 = Instant::now();
    relays
        .apply(&state(Output::flashing(1000), Output::Off, Output::Off), t0)
        .unwrap();
    assert_eq!(relays.next_change(t0 + ms(100)), Some(t0 + ms(500)));
    assert_eq!(relays.next_change(t0 + ms(600)), Some(t0 + ms(1000)));
    // Alarm → test pattern at 600 ms (strobe was off): the new pattern starts on.
    let t1 = t0 + ms(600);
    relays.apply(&off(), t1).unwrap();
    relays
        .apply(&state(Output::flashing(500), Output::Off, Output::Off), t1)
        .unwrap();
    assert!(lamps.strobe.is_on());
    assert_eq!(relays.next_change(t1), Some(t1 + ms(250)));
    relays
        .apply(&state(Output::Steady, Output::Off, Output::Off), t1)
        .unwrap();
    assert_eq!(relays.next_change(t1), None, "nothing flashes");
}

#[test]
fn a_failing_pin_is_reported_not_panicked_and_the_other_lines_still_work() {
    let (mut relays, lamps) = sim::relays(true);
    lamps.strobe.fail(true);
    let t0 = Instant::now();
    let all_on = state(Output::Steady, Output::Steady, Output::Off);
    let error = relays.apply(&all_on, t0).unwrap_err();
    assert_eq!(error.line, Line::Strobe);
    assert!(error.to_string().starts_with("strobe relay"), "{error}");
    assert!(
        lamps.siren.is_on(),
        "the siren must not depend on the strobe"
    );
    assert!(!lamps.strobe.is_on());
    // Repaired: the same state is written again.
    lamps.strobe.fail(false);
    relays.apply(&all_on, t0 + ms(50)).unwrap();
    assert!(lamps.strobe.is_on());
}

#[test]
fn a_line_that_is_not_wired_is_skipped() {
    let strobe = sim::SimOutput::new(false);
    let mut relays = Relays::new(Some(Relay::new(strobe.clone(), false)), None, None);
    relays.safe().unwrap();
    relays
        .apply(
            &state(Output::Steady, Output::Steady, Output::Steady),
            Instant::now(),
        )
        .unwrap();
    assert!(strobe.is_on());
    assert_eq!(relays.energised(), [Some(true), None, None]);
}

fn view_of(alarm: &Alarm) -> AlarmView {
    let now = chrono::Utc::now();
    AlarmView {
        state: alarm.state(),
        outputs: alarm.outputs(now),
        display: alarm.display(now),
    }
}

/// Waits (real time, at most 2 s) until `lamp` is in the `on` state.
async fn until(lamp: &sim::SimOutput, on: bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while lamp.is_on() != on {
        assert!(Instant::now() < deadline, "lamp never turned {on}");
        tokio::time::sleep(ms(5)).await;
    }
}

#[tokio::test]
async fn the_run_task_follows_the_alarm_view_and_goes_safe_when_it_closes() {
    let mut alarm = Alarm::new(AlarmConfig::default());
    let (tx, rx) = tokio::sync::watch::channel(view_of(&alarm));
    let (relays, lamps) = sim::relays(true);
    let task = tokio::spawn(beacon::outputs::relays::run(rx, relays));

    let summary = CallSummary {
        dial_string: Some("911".into()),
        ..CallSummary::default()
    };
    alarm.handle(
        Event::CallRaised {
            key: "k1".into(),
            summary,
        },
        chrono::Utc::now(),
    );
    tx.send_replace(view_of(&alarm));
    until(&lamps.strobe, true).await;
    until(&lamps.siren, true).await;
    // The strobe flashes (500 ms by default): it goes off again by itself.
    until(&lamps.strobe, false).await;
    until(&lamps.strobe, true).await;

    for event in [
        Event::Acknowledge {
            source: Source::Web,
            who: None,
        },
        Event::Clear {
            source: Source::Web,
            who: None,
        },
    ] {
        alarm.handle(event, chrono::Utc::now());
    }
    tx.send_replace(view_of(&alarm));
    until(&lamps.strobe, false).await;
    until(&lamps.siren, false).await;

    tx.send_replace(AlarmView {
        outputs: state(Output::Steady, Output::Steady, Output::Steady),
        ..view_of(&alarm)
    });
    until(&lamps.trouble, true).await;
    drop(tx);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the task ends when the channel closes")
        .unwrap();
    for lamp in [&lamps.strobe, &lamps.siren, &lamps.trouble] {
        assert!(!lamp.is_on());
        assert!(lamp.is_high(), "active low: de-energised is high");
    }
}

#[tokio::test]
async fn a_stopped_output_task_leaves_every_relay_de_energised() {
    let all_on = AlarmView {
        outputs: state(Output::Steady, Output::Steady, Output::flashing(2000)),
        ..view_of(&Alarm::new(AlarmConfig::default()))
    };
    let (_tx, rx) = tokio::sync::watch::channel(all_on);
    let (relays, lamps) = sim::relays(false);
    let task = tokio::spawn(beacon::outputs::relays::run(rx, relays));
    until(&lamps.trouble, true).await;
    assert!(lamps.strobe.is_on() && lamps.siren.is_on());
    // Runtime shutdown or a panic unwinding through the task drops it the same way.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    for lamp in [&lamps.strobe, &lamps.siren, &lamps.trouble] {
        assert!(!lamp.is_on());
    }
}
