//! The Microsoft-cloud stand-in of the GPIO VM test (`scripts/vm-gpio`). Not part of the
//! product. Three jobs, each the smallest stand-in for a real service:
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
//!   Prints `posted <epoch µs>` when the broker has acknowledged it.

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
            _ => Err("usage: beacon-vm-cloud seed DATA OUT | login ADDR | topic BOOTSTRAP CA TOPIC | post BOOTSTRAP CA TOPIC CERT_DIR MESSAGE.json".into()),
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
    let token = warp::post().and(warp::path::tail()).map(|tail: warp::path::Tail| {
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
    let text = std::fs::read_to_string(message).map_err(|e| format!("{}: {e}", message.display()))?;
    let mut message: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    // Posted now: a new message id each time (no de-duplication), dated now (not late).
    let now = chrono::Utc::now();
    let id = now.timestamp_millis().to_string();
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    message["id"] = json!(id);
    message["createdDateTime"] = json!(stamp);
    message["lastModifiedDateTime"] = json!(stamp);
    let chat = message["chatId"].as_str().unwrap_or("19:beacon-vm@thread.v2").to_string();
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
    producer
        .send(FutureRecord::<(), _>::to(topic).payload(&body), Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e.to_string())?;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    println!("posted {at} message {id}");
    Ok(())
}
