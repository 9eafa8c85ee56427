//! A damaged store never darkens the box: the store files are damaged the ways the upstream
//! reports describe (spacejam/sled #1533, #1527, #1509, #1166: a torn log after a power cut,
//! a torn or stray snapshot, a damaged configuration page), and the appliance still comes up —
//! its trouble says what happened and what to do, and the unacknowledged call that was
//! alarming before is alarming again.

use std::path::Path;
use std::time::Duration;

use beacon::alarm::{AlarmState, CallSummary, Event};
use beacon::app::{Appliance, Core, Options};
use beacon::config::Config;
use beacon::secret::Secret;
use beacon::store::keepsake::Keepsake;
use beacon::store::{RecoveryAction, StateFile, Store, ALARM_STATE};

/// An appliance on the simulated board with its store in `data`.
fn config(data: &Path) -> Config {
    Config {
        device_id: None,
        data_dir: data.to_path_buf(),
        ..Config::default()
    }
}

/// Starts an appliance, raises one call nobody acknowledges, waits until the keepsake holds
/// the device id, and stops the appliance the way a power cut would not: this is the good state before
/// the damage. Returns the generated device id.
async fn latch_a_call(data: &Path) -> String {
    let core = Core::open(&config(data)).expect("store");
    let device = core.device_id.clone();
    let appliance = Appliance::start(config(data), core, Options::simulated())
        .await
        .expect("starts");
    appliance
        .alarm()
        .send(Event::CallRaised {
            key: "19:chat@thread.v2/1700000000001".into(),
            summary: CallSummary {
                caller_name: Some("Jordan Rivera".into()),
                location: Some("Building 2, floor 3".into()),
                dial_string: Some("911".into()),
                ..CallSummary::default()
            },
        })
        .await;
    // The alarm step wrote its state file before it answered.
    let latched = StateFile::new(data, ALARM_STATE)
        .read::<serde_json::Value>()
        .expect("readable")
        .expect("the alarm state is kept beside the store");
    assert!(latched.to_string().contains("Jordan Rivera"), "{latched}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kept = Keepsake::read(data).expect("readable").unwrap_or_default();
        if kept.settings.contains_key("device_id") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the keepsake never held the device id: {kept:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    appliance.stop().await.expect("stops");
    device
}

/// Starts the appliance over the damaged store and checks what a guard would see.
async fn comes_up_alarming_with_a_trouble(data: &Path, device: &str, expect: &str) {
    let core = Core::open(&config(data)).expect("a damaged store must not stop the start");
    assert_eq!(core.device_id, device, "the device keeps its name");
    let appliance = Appliance::start(config(data), core, Options::simulated())
        .await
        .expect("starts");
    let view = appliance.alarm().view().borrow().clone();
    assert_eq!(
        view.state,
        AlarmState::Alerting,
        "the unacknowledged call alarms again"
    );
    assert!(
        view.display
            .calls
            .iter()
            .any(|c| c.summary.caller_name.as_deref() == Some("Jordan Rivera")),
        "the call is on the display: {:?}",
        view.display.calls
    );
    assert!(view.outputs.strobe.is_on() && view.outputs.siren.is_on());
    let trouble = view
        .display
        .troubles
        .iter()
        .find(|t| t.component == "store")
        .unwrap_or_else(|| panic!("no store trouble: {:?}", view.display.troubles));
    eprintln!("trouble: {}", trouble.detail);
    assert!(trouble.detail.contains(expect), "{}", trouble.detail);
    assert!(view.outputs.trouble.is_on(), "the trouble output says so");
    appliance.stop().await.expect("stops");
}

/// A second start after the recovery still shows the trouble (it is held, not lost on restart).
async fn the_trouble_survives_a_restart(data: &Path) {
    let core = Core::open(&config(data)).expect("store");
    assert!(
        core.start_troubles.iter().any(|(c, _)| c == "store"),
        "{:?}",
        core.start_troubles
    );
}

fn db_file(data: &Path) -> std::path::PathBuf {
    data.join("db").join("db")
}

fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(bytes).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_log_is_set_aside_and_the_latched_call_alarms_again() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let device = latch_a_call(&data).await;
    // A torn page where the log starts (a power cut in the middle of a page write).
    overwrite(&db_file(&data), 0, &[0xA5; 4096]);
    comes_up_alarming_with_a_trouble(&data, &device, "sign the service account in again").await;
    let (_, recovery) = Store::open_or_recover(&data, chrono::Utc::now()).expect("opens");
    assert!(recovery.is_none(), "the fresh store opens cleanly now");
    let kept: Vec<_> = std::fs::read_dir(&data)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged store is kept for diagnosis");
    assert!(kept[0].path().join("db").join("db").exists());
    the_trouble_survives_a_restart(&data).await;
}

/// The power-cut campaign's loss: a fresh store without the fleet's clientState took every
/// later notification of the fleet's own subscription for a stranger's. The clientState, the
/// rich-notification keys and the sign-in are kept beside the store and come back.
#[tokio::test(flavor = "multi_thread")]
async fn the_subscription_secrets_and_the_sign_in_survive_a_damaged_store() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let device = latch_a_call(&data).await;
    let (fleet, key_names) = {
        let store = Store::open(&data).expect("store");
        store
            .set_secret("graph/refresh-token", &Secret::new("refresh-token-before"))
            .expect("secret");
        store.flush().expect("flush");
        let fleet = store
            .secret("fleet/secrets")
            .expect("read")
            .map(|s| s.expose().to_string());
        let keys: Vec<String> = store
            .secrets_with_prefix("rich-key/")
            .expect("keys")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        (fleet, keys)
    };
    assert!(fleet.is_some(), "the appliance made the fleet's secrets");
    assert!(!key_names.is_empty(), "and a rich-notification key");
    overwrite(&db_file(&data), 0, &[0xA5; 4096]);
    comes_up_alarming_with_a_trouble(
        &data,
        &device,
        "the sign-in and the subscription's secrets were kept",
    )
    .await;
    let store = Store::open(&data).expect("the fresh store");
    assert_eq!(
        store
            .secret("fleet/secrets")
            .expect("read")
            .map(|s| s.expose().to_string()),
        fleet,
        "the fleet's clientState is the same: its subscription's notifications are still accepted"
    );
    assert_eq!(
        store
            .secret("graph/refresh-token")
            .expect("read")
            .map(|s| s.expose().to_string())
            .as_deref(),
        Some("refresh-token-before")
    );
    for name in key_names {
        assert!(store.secret(&name).expect("read").is_some(), "{name} kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_configuration_page_is_recovered_the_same_way() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let device = latch_a_call(&data).await;
    std::fs::write(data.join("db").join("conf"), b"\x00\x00garbage\xff").expect("write");
    comes_up_alarming_with_a_trouble(&data, &device, "is kept in").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_snapshot_is_moved_aside_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    latch_a_call(&data).await;
    // An interrupted snapshot's leftover (the reports' stray `snap.*.generating`).
    let db = data.join("db");
    std::fs::write(db.join("snap.00000000FFFFFFFF.generating"), [0x5A; 512]).expect("write");
    let (store, recovery) = Store::open_or_recover(&data, chrono::Utc::now()).expect("opens");
    // sled 0.34 does not open with it (without the recovery this start fails).
    let recovery = recovery.expect("recovered");
    eprintln!("{}", recovery.describe());
    match recovery.action {
        RecoveryAction::MovedAside { files, .. } => assert_eq!(files.len(), 1),
        other => panic!("a stray snapshot must not cost the store: {other:?}"),
    }
    assert!(beacon::alarm_task::stored_state(&store).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_held_by_another_process_is_an_error_and_is_never_set_aside() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let held = Store::open(&data).expect("first opens");
    let second = Store::open_or_recover(&data, chrono::Utc::now());
    assert!(second.is_err(), "the lock is not damage");
    let aside = std::fs::read_dir(&data)
        .expect("list")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("damaged-"));
    assert!(!aside, "a good store was moved aside");
    drop(held);
}

/// A basic chat-message notification of `subscription` carrying `state`, as Graph puts it in
/// the hub.
fn chat_notification(subscription: &str, state: &str, message: &str) -> String {
    serde_json::json!({"value": [{
        "subscriptionId": subscription, "changeType": "created", "clientState": state,
        "resource": format!("chats('19:desk@thread.v2')/messages('{message}')"),
        "resourceData": {"id": message}, "tenantId": "tenant"
    }]})
    .to_string()
}

/// The power-cut campaign's other half: when the secrets beside the store are lost too, the
/// fresh store cannot tell the fleet's notifications from strangers'. They must not be let be
/// (committed and gone, as the campaign's 212 emergencies were): they are kept whole, a
/// trouble says so, and once the box has the fleet's secrets again (a join) they are read
/// again — the fleet's handed on, a stranger's let be.
#[tokio::test(flavor = "multi_thread")]
async fn a_box_that_lost_the_fleets_secrets_keeps_their_notifications_until_it_can_read_them() {
    use beacon::graph::client_state::ClientStates;
    use beacon::graph::fleet::FleetSecrets;
    use beacon::health::IngestCounters;
    use beacon::ingest::{Ingest, Record};
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let fleet = FleetSecrets::with_client_state("fleet-desk", Secret::new("fleet-state"));
    {
        let store = Store::open(&data).expect("store");
        let states = ClientStates::load(&store).expect("states");
        states.replace(&store, fleet.clone()).expect("fleet");
        states.adopt(&store, "sub-fleet").expect("adopt");
        store
            .settings
            .insert("device_id", &serde_json::json!("beacon-desk"))
            .expect("device");
        store.flush().expect("flush");
    }
    overwrite(&db_file(&data), 0, &[0xA5; 4096]);
    std::fs::remove_file(data.join(beacon::store::keepsake::SECRETS_FILE_NAME))
        .expect("the secrets' keepsake existed");
    let (store, recovery) = Store::open_or_recover(&data, chrono::Utc::now()).expect("opens");
    assert!(matches!(
        recovery.map(|r| r.action),
        Some(RecoveryAction::FreshStore { .. })
    ));
    let states = ClientStates::load(&store).expect("states");
    assert!(states.unverifiable(), "new secrets, no known subscription");

    let (tx, mut handed) = tokio::sync::mpsc::channel(16);
    let counters = std::sync::Arc::new(IngestCounters::default());
    let keys = beacon::app::load_keys(&store).expect("keys");
    let ingest = Ingest::new(store.clone(), keys, states.clone(), tx, counters.clone());
    let ours = chat_notification("sub-fleet", "fleet-state", "1700000000001");
    let theirs = chat_notification("sub-other-app", "their-state", "1700000000002");
    for (offset, body) in [ours.as_str(), theirs.as_str()].into_iter().enumerate() {
        let position = format!("teams/0@{offset}");
        let outcome = tokio::task::block_in_place(|| {
            ingest.process(Record {
                body: body.as_bytes(),
                position: &position,
                received_at: chrono::Utc::now(),
            })
        })
        .expect("processed");
        assert_eq!((outcome.handed_off, outcome.rejected), (0, 1), "{position}");
    }
    assert_eq!(store.unverified.len(), 2, "both kept whole");
    assert_eq!(counters.unverifiable.load(Ordering::Relaxed), 2);
    assert_eq!(counters.foreign.load(Ordering::Relaxed), 0, "none let be");
    assert!(handed.try_recv().is_err());
    // Nothing to gain from reading them again while the box still cannot tell.
    assert_eq!(
        tokio::task::block_in_place(|| ingest.reread_unverified()).expect("reread"),
        0
    );
    assert_eq!(store.unverified.len(), 2);

    // A join brings the fleet's secrets back.
    states.replace(&store, fleet).expect("joined");
    let read = tokio::task::block_in_place(|| ingest.reread_unverified()).expect("reread");
    assert_eq!(read, 2);
    let entry = handed
        .try_recv()
        .expect("the fleet's notification is handed on");
    assert!(entry.key.contains("1700000000001"), "{}", entry.key);
    assert_eq!(entry.position, "teams/0@0", "where it first arrived");
    assert!(handed.try_recv().is_err(), "the stranger's is not");
    assert_eq!(counters.foreign.load(Ordering::Relaxed), 1);
    assert!(store.unverified.is_empty(), "nothing left kept");
    // A box whose store was never renewed lets a stranger's notification be, as before.
    let fresh = tempfile::tempdir().expect("dir");
    let other = Store::open(&fresh.path().join("data")).expect("store");
    let states = ClientStates::load(&other).expect("states");
    assert!(!states.unverifiable());
    assert_eq!(
        states.verify("sub-other-app", Some("their-state")),
        beacon::graph::client_state::Verdict::Foreign
    );
}

/// The power-cut campaign's duplicate (seed 20261, cut 63): a cut a tenth of a second after a
/// raise, and sled came back with the raise's audit record but without the alarm state that
/// remembers its key, so the next boot raised the same call again. Here sled loses everything
/// the raise wrote (its whole database): the next start still alarms for the call, and the
/// same call handed in again (the notification still in the inbox) is not raised a second time.
#[tokio::test(flavor = "multi_thread")]
async fn a_raise_sled_lost_is_still_latched_and_never_raised_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let key = "19:chat@thread.v2/1700000000002";
    let raise = || Event::CallRaised {
        key: key.into(),
        summary: CallSummary {
            caller_name: Some("Kim Park".into()),
            ..CallSummary::default()
        },
    };
    let raised = |effects: &[beacon::alarm::Effect]| {
        effects.iter().any(|effect| {
            matches!(effect, beacon::alarm::Effect::Audit(record)
                if record.action == beacon::alarm::AuditAction::CallRaised)
        })
    };
    {
        let store = Store::open(&data).expect("store");
        let (alarm, task) =
            beacon::alarm_task::spawn(Default::default(), store, chrono::Utc::now());
        assert!(
            raised(&alarm.send(raise()).await),
            "the first report raises"
        );
        drop(alarm);
        task.await.expect("the alarm task ends with its handles");
    }
    // The power cut took every write sled made since the store was created.
    std::fs::remove_dir_all(data.join("db")).expect("sled's files");
    let store = Store::open(&data).expect("a fresh store");
    let (alarm, _task) =
        beacon::alarm_task::spawn(Default::default(), store.clone(), chrono::Utc::now());
    assert_eq!(
        alarm.view().borrow().state,
        AlarmState::Alerting,
        "the unacknowledged call alarms again after the start"
    );
    let again = alarm.send(raise()).await;
    assert!(!raised(&again), "raised twice: {again:?}");
    let raises = store
        .audit
        .iter()
        .filter(|(_, record)| {
            record
                .as_ref()
                .is_ok_and(|record| record["action"] == "call_raised")
        })
        .count();
    assert_eq!(raises, 0, "a second call_raised in the fresh store's audit");
}

/// A stored encryption key whose material reads but cannot decrypt (its private exponents
/// damaged) is found when the keys are loaded at start, not at the first emergency: it is
/// skipped, and the key that works stays the one new subscriptions use, though the damaged one
/// is newer.
#[test]
fn a_stored_key_that_cannot_decrypt_is_skipped_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("data")).expect("store");
    let good = beacon::app::load_keys(&store)
        .expect("keys")
        .current()
        .expect("the first key is made");
    let mut stored = good.to_stored().expect("stored form");
    let rsa = openssl::pkey::PKey::private_key_from_pem(stored.private_key_pem.as_bytes())
        .and_then(|key| key.rsa())
        .expect("rsa");
    let plus_two = |n: &openssl::bn::BigNumRef| {
        let mut n = n.to_owned().expect("copy");
        n.add_word(2).expect("add");
        n
    };
    let copy = |n: &openssl::bn::BigNumRef| n.to_owned().expect("copy");
    let (p, q, dmp1, dmq1, iqmp) = (
        rsa.p().expect("p"),
        rsa.q().expect("q"),
        rsa.dmp1().expect("dmp1"),
        rsa.dmq1().expect("dmq1"),
        rsa.iqmp().expect("iqmp"),
    );
    let damaged = openssl::rsa::Rsa::from_private_components(
        copy(rsa.n()),
        copy(rsa.e()),
        plus_two(rsa.d()),
        copy(p),
        copy(q),
        plus_two(dmp1),
        plus_two(dmq1),
        copy(iqmp),
    )
    .and_then(openssl::pkey::PKey::from_rsa)
    .and_then(|key| key.private_key_to_pem_pkcs8())
    .expect("damaged key");
    stored.id = "beacon-damaged".into();
    stored.private_key_pem = String::from_utf8(damaged).expect("pem");
    stored.not_after = good.not_after + chrono::Duration::days(1);
    store
        .set_secret(
            &format!("{}{}", beacon::graph::crypto::KEY_PREFIX, stored.id),
            &Secret::new(serde_json::to_string(&stored).expect("json")),
        )
        .expect("kept");

    let keys = beacon::app::load_keys(&store).expect("the box still starts");
    assert_eq!(keys.ids(), vec![good.id.clone()]);
}
