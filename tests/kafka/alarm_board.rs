//! The alarm on the simulated board, end to end: an emergency notification through the real
//! broker lights the strobe and closes the siren relay; after a restart the unacknowledged
//! call is still alarming; an acknowledgement turns the siren and the strobe off.

use std::sync::Arc;
use std::time::Duration;

use crate::support::kafka::{create_topic, Sender};
use crate::support::notifications::{chat_message, rich};
use crate::support::{unique, Appliance, CLIENT_STATE};
use beacon::alarm::{AcknowledgedStrobe, AlarmConfig, Event, Source};
use beacon::emergency::Rules;
use beacon::hw::sim::{relays, SimOutput};
use beacon::recognise::{MessageSource, Recogniser};
use chrono::Utc;

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

/// Whether `lamp` stays off for all of `during`.
async fn stays_off(lamp: &SimOutput, during: Duration) -> bool {
    !lights_within(lamp, during).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_lights_the_strobe_a_restart_keeps_it_and_an_ack_ends_it() {
    let topic = unique("board");
    create_topic(&topic, 1).await;
    let appliance = Appliance::new();
    // The default: strobe and siren latch until acknowledged, and the acknowledgement ends both.
    let config = AlarmConfig::default();
    assert_eq!(config.acknowledged_strobe, AcknowledgedStrobe::Off);
    let (alarm, alarm_task) =
        beacon::alarm_task::spawn(config.clone(), appliance.store.clone(), Utc::now());
    let (board, lamps) = relays(true);
    let outputs = tokio::spawn(beacon::outputs::relays::run(alarm.view(), board));
    assert!(
        stays_off(&lamps.strobe, Duration::from_millis(300)).await,
        "dark at start"
    );

    let key = appliance.keys.current().expect("key").clone();
    let message = chat_message(
        "board-1",
        "Jordan Rivera has placed an Emergency Call to 911",
    );
    Sender::new(&topic).send(
        None,
        rich(
            CLIENT_STATE,
            "board-1",
            &message,
            key.certificate_der(),
            &key.id,
        )
        .as_bytes(),
    );
    let mut running = appliance.consume(&topic, &unique("g"), true);
    let entry = running
        .until_message("board-1", Duration::from_secs(30))
        .await
        .pop()
        .expect("handed on");
    let recogniser = Recogniser::new(
        appliance.store.clone(),
        Arc::new(Rules::default()),
        alarm.clone(),
        MessageSource::Unavailable,
    );
    recogniser.handle(&entry).await.expect("recognised");
    assert!(
        lights_within(&lamps.strobe, Duration::from_secs(2)).await,
        "the strobe lights"
    );
    assert!(lamps.siren.is_on(), "the siren relay closes");
    running.stop().await;

    // Power cut: everything stops; the relays of the new process start dark …
    drop(recogniser);
    drop(alarm);
    outputs.abort();
    let _ = outputs.await;
    let _ = alarm_task.await;
    assert!(
        !lamps.strobe.is_on() && !lamps.siren.is_on(),
        "de-energised when the task ends"
    );
    // … and the restored alarm lights them again.
    let (alarm, _alarm_task) =
        beacon::alarm_task::spawn(config, appliance.store.clone(), Utc::now());
    let (board, lamps) = relays(true);
    let outputs = tokio::spawn(beacon::outputs::relays::run(alarm.view(), board));
    assert!(
        lights_within(&lamps.strobe, Duration::from_secs(2)).await,
        "still alarming after a restart"
    );
    assert!(lamps.siren.is_on());

    alarm
        .send(Event::Acknowledge {
            source: Source::Button,
            who: Some("front desk".into()),
        })
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!lamps.siren.is_on(), "the siren stops on acknowledgement");
    assert!(
        stays_off(&lamps.strobe, Duration::from_millis(800)).await,
        "and the strobe goes dark"
    );
    outputs.abort();
}
