//! The display loop: the web mirror (PNG) follows the alarm — ready, then the emergency, then
//! acknowledged — without a panel attached.

use std::time::Duration;

use beacon::alarm::{CallSummary, Event, Source};
use beacon::outputs::display::{ScreenContext, StatusTicks};
use chrono::Utc;

fn context(tick: u64) -> ScreenContext {
    ScreenContext {
        now: Utc::now().fixed_offset(),
        zone: "UTC".into(),
        tick,
        status: StatusTicks::default(),
        last_call: None,
        setup: None,
        join_code: None,
    }
}

async fn next_picture(mirror: &mut tokio::sync::watch::Receiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(3), mirror.changed())
        .await
        .expect("a new picture within 3 s")
        .expect("mirror open");
    mirror.borrow_and_update().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mirror_follows_the_alarm() {
    let dir = tempfile::tempdir().expect("dir");
    let store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = beacon::alarm_task::spawn(Default::default(), store, Utc::now());
    let (mirror_tx, mut mirror) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(beacon::outputs::display::task::run::<
        beacon::hw::sim::NoBus,
        _,
    >(alarm.view(), context, None, mirror_tx));
    let ready = next_picture(&mut mirror).await;
    assert!(ready.starts_with(b"\x89PNG"), "a PNG");

    alarm
        .raise(
            "chat/1",
            CallSummary {
                caller_name: Some("Jordan Rivera".into()),
                location: Some("725 Example Street".into()),
                dial_string: Some("911".into()),
                ..CallSummary::default()
            },
        )
        .await;
    let alerting = next_picture(&mut mirror).await;
    assert_ne!(alerting, ready, "the emergency is drawn");
    assert!(
        lit(&alerting, 1, 1),
        "the headline bar is lit while unacknowledged"
    );
    alarm
        .send(Event::Acknowledge {
            source: Source::Web,
            who: None,
        })
        .await;
    let acknowledged = next_picture(&mut mirror).await;
    assert!(
        !lit(&acknowledged, 1, 1),
        "the headline bar goes dark on acknowledgement"
    );
}

/// Whether pixel (x, y) of a mirror PNG is lit.
fn lit(png_bytes: &[u8], x: usize, y: usize) -> bool {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let width = info.width as usize;
    let bytes_per_pixel = info.line_size / width;
    buf[y * info.line_size + x * bytes_per_pixel] > 127
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_call_line_follows_raised_calls() {
    let dir = tempfile::tempdir().expect("dir");
    let store = beacon::store::Store::open(&dir.path().join("data")).expect("store");
    let (alarm, _task) = beacon::alarm_task::spawn(Default::default(), store.clone(), Utc::now());
    let mut last = beacon::outputs::display::last_call::follow(&store, &alarm);
    assert_eq!(*last.borrow(), None, "no call recorded yet");
    alarm
        .raise(
            "chat/7",
            CallSummary {
                caller_name: Some("Avery Chen".into()),
                ..CallSummary::default()
            },
        )
        .await;
    tokio::time::timeout(Duration::from_secs(3), last.changed())
        .await
        .expect("the raise is seen within 3 s")
        .expect("feed open");
    let shown = last.borrow().clone().expect("a last call");
    assert_eq!(shown.caller, "Avery Chen");
}
