//! The Microsoft-cloud stand-in of the VM tests (`scripts/vm-gpio`, `scripts/power-cut`). Not
//! part of the product. Each job is the smallest stand-in for a real service, or a reader of
//! what the appliance left behind:
//!
//! * `seed DATA_DIR OUT_DIR` (on the build host): opens the appliance's store the way Beacon
//!   does and leaves it as a signed-in, subscribed appliance would be: a subscription's
//!   clientState, a refresh token, and the rich-notification key (created by Beacon's own
//!   `load_keys`). Writes the key's public certificate (`cert.der`, `cert.id`) to OUT_DIR.
//! * `login LISTEN` (in the VM): the identity platform's token endpoint. Any POST to
//!   `…/oauth2/v2.0/token` gets a bearer token valid for an hour, so the token keeper reports
//!   "signed in" and the appliance has no sign-in trouble.
//! * `topic BOOTSTRAP CA TOPIC` and `post BOOTSTRAP CA TOPIC CERT_DIR MESSAGE.json` (in the VM):
//!   create the hub's topic over SASL_SSL (the test broker has no auto-create, like Event
//!   Hubs), and post a Teams chat message as Graph does: a rich change notification, the
//!   message sealed for the appliance's certificate, dated now, as one Event Hub record.
//!   Prints `posted <epoch µs> message <id> key <call key> offset <partition>:<offset>` when
//!   the broker has acknowledged it.
//! * `committed BOOTSTRAP CA TOPIC GROUP` (on the host, power-cut campaign): the offsets the
//!   appliance's consumer group has committed, one `committed <partition> <offset>` line each.
//! * `ledger DATA_DIR` (on the host, on a copy of the data partition's store after a power
//!   cut): opens the store as the next boot would (`Store::open_or_recover`) and prints what it
//!   holds: `call <key> raised <n> alarmed_locally <bool> written_back <m>` per recorded call
//!   (n: the alarm's `call_raised` audit records naming it; m: those of them a start wrote
//!   back after a cut took the original), `waiting <key>` per notification still in the
//!   inbox, `latched <key>` per call key the alarm's persisted state names, and
//!   `recovery <what>` when the store had to be recovered.

use std::path::Path;
use std::time::Duration;

use beacon::graph::client_state::ClientStates;
use beacon::secret::Secret;
use beacon::store::Store;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

/// The subscription the seeded store knows, and its clientState.
const SUBSCRIPTION: &str = "5e1a3c2e-7b0f-4c55-9d3a-2f6f0c1b9a10";
const CLIENT_STATE: &str = "vm-gpio-client-state-7c1e";
/// The stored refresh token (the stand-in accepts any).
const REFRESH_TOKEN: &str = "graph/refresh-token";
/// The hub's connection string password as the broker sees it (SASL PLAIN; any is accepted).
const HUB_PASSWORD: &str = "Endpoint=sb://beacon-vm.servicebus.windows.net/;SharedAccessKeyName=admin;SharedAccessKey=dm0tZ3Bpby1hZG1pbg==;EntityPath=beacon-vm";

type Result<T> = std::result::Result<T, String>;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        match args.as_slice() {
            ["seed", data, out] => seed(Path::new(data), Path::new(out)),
            ["login", listen] => login(listen).await,
            ["topic", bootstrap, ca, topic] => create_topic(bootstrap, ca, topic).await,
            ["post", bootstrap, ca, topic, cert, message] => {
                post(bootstrap, ca, topic, Path::new(cert), Path::new(message)).await
            }
            ["committed", bootstrap, ca, topic, group] => committed(bootstrap, ca, topic, group),
            ["ledger", data] => ledger(Path::new(data)),
            _ => Err("usage: beacon-vm-cloud seed DATA OUT | login ADDR | topic BOOTSTRAP CA TOPIC | post BOOTSTRAP CA TOPIC CERT_DIR MESSAGE.json | committed BOOTSTRAP CA TOPIC GROUP | ledger DATA".into()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beacon-vm-cloud: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn seed(data: &Path, out: &Path) -> Result<()> {
    let store = Store::open(data).map_err(|e| e.to_string())?;
    // The fleet of one this box is: its clientState is the one the stand-in publishes with,
    // and the seeded subscription is the fleet's.
    let states = ClientStates::load(&store).map_err(|e| e.to_string())?;
    let mut fleet = states.secrets().ok_or("no fleet secrets")?;
    fleet.client_state = Secret::new(CLIENT_STATE);
    states.replace(&store, fleet).map_err(|e| e.to_string())?;
    states
        .adopt(&store, SUBSCRIPTION)
        .map_err(|e| e.to_string())?;
    store
        .set_secret(REFRESH_TOKEN, &Secret::new("vm-gpio-refresh-token"))
        .map_err(|e| e.to_string())?;
    let keys = beacon::app::load_keys(&store).map_err(|e| e.to_string())?;
    let key = keys.current().ok_or("no rich-notification key")?;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    std::fs::write(out.join("cert.der"), key.certificate_der()).map_err(|e| e.to_string())?;
    std::fs::write(out.join("cert.id"), &key.id).map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    Ok(())
}

async fn login(listen: &str) -> Result<()> {
    use warp::Filter;
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| format!("{listen}: {e}"))?;
    let token = warp::post()
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| {
            eprintln!("beacon-vm-cloud: token request /{}", tail.as_str());
            warp::reply::json(&json!({
                "token_type": "Bearer",
                "access_token": "vm-gpio-access-token",
                "refresh_token": "vm-gpio-refresh-token",
                "expires_in": 3600,
                "scope": "https://graph.microsoft.com/.default offline_access"
            }))
        });
    eprintln!("beacon-vm-cloud: token endpoint on http://{addr}");
    warp::serve(token).run(addr).await;
    Ok(())
}

fn client(bootstrap: &str, ca: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", beacon::eventhub::connection::SASL_USERNAME)
        .set("sasl.password", HUB_PASSWORD)
        .set("ssl.ca.location", ca);
    config
}

async fn create_topic(bootstrap: &str, ca: &str, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client(bootstrap, ca).create().map_err(|e| e.to_string())?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .map_err(|e| e.to_string())?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("topic {name}: {code}")),
        }
    }
    Ok(())
}

async fn post(bootstrap: &str, ca: &str, topic: &str, cert: &Path, message: &Path) -> Result<()> {
    let der = std::fs::read(cert.join("cert.der")).map_err(|e| e.to_string())?;
    let cert_id = std::fs::read_to_string(cert.join("cert.id")).map_err(|e| e.to_string())?;
    let text =
        std::fs::read_to_string(message).map_err(|e| format!("{}: {e}", message.display()))?;
    let mut message: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    // Posted now: a new message id each time (no de-duplication), dated now (not late).
    let now = chrono::Utc::now();
    let id = now.timestamp_millis().to_string();
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    message["id"] = json!(id);
    message["createdDateTime"] = json!(stamp);
    message["lastModifiedDateTime"] = json!(stamp);
    let chat = message["chatId"]
        .as_str()
        .unwrap_or("19:beacon-vm@thread.v2")
        .to_string();
    let sealed = beacon::graph::crypto::seal(&der, cert_id.trim(), message.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let resource = format!("chats('{chat}')/messages('{id}')");
    let body = json!({"value": [{
        "subscriptionId": SUBSCRIPTION,
        "subscriptionExpirationDateTime": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "changeType": "created",
        "clientState": CLIENT_STATE,
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "resource": resource,
        "resourceData": {"id": id, "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": resource},
        "encryptedContent": {
            "data": sealed.data,
            "dataSignature": sealed.data_signature,
            "dataKey": sealed.data_key,
            "encryptionCertificateId": sealed.encryption_certificate_id,
            "encryptionCertificateThumbprint": sealed.encryption_certificate_thumbprint,
        }
    }]})
    .to_string();
    let producer: FutureProducer = client(bootstrap, ca)
        .set("message.timeout.ms", "20000")
        .create()
        .map_err(|e| e.to_string())?;
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to(topic).payload(&body),
            Duration::from_secs(20),
        )
        .await
        .map_err(|(e, _)| e.to_string())?;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    println!(
        "posted {at} message {id} key {chat}/{id} offset {}:{}",
        delivery.partition, delivery.offset
    );
    Ok(())
}

fn committed(bootstrap: &str, ca: &str, topic: &str, group: &str) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client(bootstrap, ca)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    let mut list = rdkafka::TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            list.add_partition(topic, p.id());
        }
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    for element in committed.elements() {
        let offset = match element.offset() {
            rdkafka::Offset::Offset(o) => o,
            _ => 0,
        };
        println!("committed {} {offset}", element.partition());
    }
    Ok(())
}

fn ledger(data: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    let now = chrono::Utc::now();
    let (store, recovery) = Store::open_or_recover(data, now).map_err(|e| e.to_string())?;
    if let Some(recovery) = recovery {
        println!("recovery {}", recovery.describe().replace('\n', " "));
    }
    let mut raised: BTreeMap<String, usize> = BTreeMap::new();
    let mut late: BTreeMap<String, usize> = BTreeMap::new();
    for (key, value) in store.audit.iter() {
        let record = value.map_err(|e| format!("audit/{key}: {e}"))?;
        if record["action"].as_str() == Some("call_raised") {
            let written_back =
                record["detail"].as_str() == Some(beacon::alarm::LOST_RAISE_DETAIL);
            for key in record["keys"].as_array().into_iter().flatten() {
                if let Some(key) = key.as_str() {
                    *raised.entry(key.to_string()).or_default() += 1;
                    if written_back {
                        *late.entry(key.to_string()).or_default() += 1;
                    }
                }
            }
        }
    }
    for (key, value) in store.calls.iter() {
        let value = value.map_err(|e| format!("calls/{key}: {e}"))?;
        let alarmed = value["alarmed_locally"].as_bool().unwrap_or(false);
        let n = raised.get(&key).copied().unwrap_or(0);
        let m = late.get(&key).copied().unwrap_or(0);
        println!("call {key} raised {n} alarmed_locally {alarmed} written_back {m}");
    }
    for (key, entry) in beacon::ingest::inbox(&store).iter() {
        let entry = entry.map_err(|e| format!("inbox/{key}: {e}"))?;
        if let beacon::ingest::Notification::Message {
            chat_id,
            message_id,
            ..
        } = &entry.notification
        {
            println!("waiting {chat_id}/{message_id}");
        }
    }
    // For a loss's diagnosis: what de-duplication saw, and what was refused or kept
    // unverified (a committed emergency in none of the lines above shows up here, or nowhere).
    for (key, _) in store.seen.iter() {
        println!("seen {key}");
    }
    for (_, value) in store.rejected.iter() {
        if let Ok(rejected) = value {
            let position = rejected.position.unwrap_or_default();
            println!("rejected {position} {}", rejected.reason.replace('\n', " "));
        }
    }
    for (_, value) in store.unverified.iter() {
        if let Ok(kept) = value {
            println!("unverified {} kept", kept.position);
        }
    }
    // The alarm's persisted state (its own file beside the store, which a recovered store
    // keeps; or an older Beacon's setting): every string in it that looks like a call key.
    if let Some(state) = beacon::alarm_task::stored_state(&store) {
        let state = serde_json::to_value(&state).map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        collect_keys(&state, &mut keys);
        keys.sort();
        keys.dedup();
        for key in keys {
            println!("latched {key}");
        }
    }
    Ok(())
}

/// Strings of the form `<chat id>/<message id>` anywhere in a JSON value.
fn collect_keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.contains("@thread") && s.contains('/') => {
            out.push(s.clone())
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}
