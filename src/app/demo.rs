//! `beacon demo`: the whole appliance on one machine without Azure — a fresh store in a
//! temporary directory, the simulated board (strobe, siren, trouble relays in memory), the
//! display mirror, recognition and the alarm, and the console on http://127.0.0.1:8080 with a
//! printed login. A built-in replay source plays a realistic emergency notification (the
//! H.7-style Teams message of `tests/fixtures/emergency/`, as a rich notification decrypts to)
//! every few minutes and whenever the dashboard's button asks. No Kafka, no Graph.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{AppError, Appliance, Core, Options};
use crate::config::Config;
use crate::graph::notification::ChangeType;
use crate::ingest::{InboxEntry, Notification};
use crate::web::session::Role;

/// The demonstration call: a Teams emergency message with caller, UPN, call-back number,
/// civic address and coordinates.
const CALL: &str = include_str!("../../tests/fixtures/emergency/en_h7_html_and_card.json");
/// The demo's notification group chat.
const CHAT_ID: &str = "19:beacon-demo-emergency-group@thread.v2";
/// The printed login.
pub const DEMO_USER: &str = "demo";

/// How `beacon demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Console address (plain HTTP; loopback only).
    pub listen: SocketAddr,
    /// Seconds between demonstration calls (0: only on the button).
    pub every: Duration,
    /// Seconds until the first call.
    pub first_after: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            every: Duration::from_secs(180),
            first_after: Duration::from_secs(15),
        }
    }
}

/// Runs the demo until Ctrl-C / SIGTERM. `announce` gets the console's URL, user and password.
pub async fn run<A>(options: DemoOptions, announce: A) -> Result<(), AppError>
where
    A: FnOnce(&str, &str, &str),
{
    let data_dir = std::env::temp_dir().join(format!("beacon-demo-{}", std::process::id()));
    let result = run_in(options, data_dir.clone(), announce).await;
    if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        tracing::warn!(dir = %data_dir.display(), error = %e, "demo data not removed");
    }
    result
}

async fn run_in<A>(options: DemoOptions, data_dir: PathBuf, announce: A) -> Result<(), AppError>
where
    A: FnOnce(&str, &str, &str),
{
    let shutdown = super::shutdown_signal();
    let config = Config {
        device_id: Some("beacon-demo".into()),
        data_dir,
        web: Some(crate::web::WebConfig {
            listen: options.listen,
            https: false,
            ..crate::web::WebConfig::default()
        }),
        ..Config::default()
    };
    let core = Core::open(&config)?;
    let password = crate::web::session::random_token()[..12].to_string();
    crate::web::password::Users::new(core.store.clone())
        .set(DEMO_USER, &password, Role::Admin)
        .map_err(|e| AppError::Config(e.to_string()))?;
    let (play_tx, mut play_rx) = mpsc::channel(4);
    let appliance = Appliance::start(
        config,
        core,
        Options {
            demo_call: Some(play_tx),
            ..Options::simulated()
        },
    )
    .await?;
    let Some(console) = appliance.console() else {
        return Err(AppError::Config(
            "the demo's console could not start (see the log)".into(),
        ));
    };
    announce(&console.url(), DEMO_USER, &password);
    let Some(inbox) = appliance.inbox() else {
        return Err(AppError::Config("the demo is fed directly".into()));
    };
    let counters = appliance.context().counters.clone();
    let (every, first_after) = (options.every, options.first_after);
    let player = tokio::spawn(async move {
        let mut next = Some(tokio::time::Instant::now() + first_after);
        loop {
            let due = next;
            let timer = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = timer => {
                    next = (!every.is_zero()).then(|| tokio::time::Instant::now() + every);
                }
                asked = play_rx.recv() => if asked.is_none() { return },
            }
            counters
                .records
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            counters.last_record_ms.store(
                Utc::now().timestamp_millis(),
                std::sync::atomic::Ordering::Relaxed,
            );
            if inbox.send(demo_entry(Utc::now())).await.is_err() {
                return;
            }
        }
    });
    shutdown.await;
    tracing::info!("demo: shutting down");
    // The player holds the inbox: gone before the appliance drains recognition.
    player.abort();
    let _ = player.await;
    appliance.stop().await
}

/// A demonstration notification received `now`: the fixture message with a new id and time.
pub fn demo_entry(now: chrono::DateTime<Utc>) -> InboxEntry {
    let message_id = now.timestamp_millis().to_string();
    let mut message: Value = serde_json::from_str(CALL).unwrap_or(Value::Null);
    if let Some(fields) = message.as_object_mut() {
        let stamp = Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        fields.insert("id".into(), Value::String(message_id.clone()));
        fields.insert("etag".into(), Value::String(message_id.clone()));
        fields.insert("chatId".into(), Value::String(CHAT_ID.into()));
        fields.insert("createdDateTime".into(), stamp.clone());
        fields.insert("lastModifiedDateTime".into(), stamp);
    }
    InboxEntry {
        key: format!("demo/{message_id}"),
        received_at: now,
        position: "demo".into(),
        notification: Notification::Message {
            subscription_id: "demo".into(),
            chat_id: CHAT_ID.into(),
            message_id,
            change_type: ChangeType::Created,
            message: Some(message),
        },
        raw: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_call_is_an_emergency_with_coordinates() {
        let entry = demo_entry(Utc::now());
        let Notification::Message {
            message: Some(message),
            ..
        } = entry.notification
        else {
            panic!("a message notification");
        };
        let verdict = crate::emergency::classify(
            &message,
            &crate::emergency::Context::default(),
            &crate::emergency::Rules::default(),
        );
        let crate::emergency::Classification::Emergency { call, .. } = verdict else {
            panic!("an emergency call, not {verdict:?}");
        };
        assert_eq!(call.caller.display_name, "Jordan Rivera");
        assert!(call.location.latitude.is_some());
    }
}
