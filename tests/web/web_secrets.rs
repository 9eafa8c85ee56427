//! No page or API answer contains a stored secret: the client secret and the Event Hub
//! connection string of the configuration, secrets in the store (refresh token, keys), and the
//! users' password hashes. The settings page says a secret is set, never what it is.

use crate::support::console::{add_users, emergency_message, Client, Console, ADMIN};
use beacon::config::Config;
use beacon::secret::Secret;
use beacon::web::WebConfig;

const CLIENT_SECRET: &str = "client-secret-Zq8~test-value-91";
const SAS_KEY: &str = "SasKeyTESTsecretValue0123456789abcdefABCDEF=";
const REFRESH: &str = "refresh-token-0.AVYA-test-secret";
const MQTT_PASSWORD: &str = "mqtt-password-Tq3-test";
const ROUTING_KEY: &str = "pagerduty-routing-R0UT1NG-test";
const SMTP_PASSWORD: &str = "smtp-password-Sm7-test";

#[tokio::test(flavor = "multi_thread")]
async fn no_page_or_api_answer_contains_a_secret() {
    let mut config = Config::default();
    config.graph.tenant_id = Some("contoso.onmicrosoft.com".into());
    config.graph.client_id = Some("11111111-2222-3333-4444-555555555555".into());
    config.graph.client_secret = Some(Secret::new(CLIENT_SECRET));
    config.eventhub.connection_string = Some(Secret::new(format!(
        "Endpoint=sb://contoso-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey={SAS_KEY};EntityPath=beacon"
    )));
    let web = WebConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        https: false,
        ..WebConfig::default()
    };
    config.mqtt.username = Some("beacon".into());
    config.mqtt.password = Some(Secret::new(MQTT_PASSWORD));
    config.notify.pagerduty_routing_key = Some(Secret::new(ROUTING_KEY));
    config.notify.smtp_username = Some("beacon".into());
    config.notify.smtp_password = Some(Secret::new(SMTP_PASSWORD));
    config.web = Some(web.clone());
    let console = Console::start_full(web, &config, |store| {
        add_users(store);
        store
            .set_secret("graph/refresh_token", &Secret::new(REFRESH))
            .expect("secret");
    })
    .await;
    let key = console
        .post_message(
            "19:secrets@thread.v2",
            "s-1",
            emergency_message("Jordan Rivera"),
        )
        .await;
    let id = beacon::web::records::call_id(&key);
    let mut admin = Client::new(&console.url());
    admin.login(ADMIN.0, ADMIN.1).await;
    let mut answers = String::new();
    for path in [
        "/".to_string(),
        "/live".into(),
        "/calls".into(),
        "/calls.csv".into(),
        format!("/calls/{id}"),
        "/chats".into(),
        "/settings".into(),
        "/api/calls".into(),
        format!("/api/calls/{id}"),
        "/api/health".into(),
        "/metrics".into(),
        "/login".into(),
    ] {
        let response = admin.get(&path).await;
        let status = response.status().as_u16();
        assert!(
            status == 200 || status == 503 || status == 303,
            "{path}: {status}"
        );
        answers.push_str(&format!("{:?}", response.headers()));
        answers.push_str(&response.text().await.unwrap_or_default());
    }
    let settings = admin
        .get("/settings")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        settings.contains("Client secret"),
        "the settings page lists it"
    );
    assert!(settings.contains("set (not shown)"), "and says it is set");
    for shown in [
        "mqtt.password",
        "notify.pagerduty_routing_key",
        "notify.smtp_password",
    ] {
        assert!(settings.contains(shown), "the settings page lists {shown}");
    }
    for secret in [
        CLIENT_SECRET,
        SAS_KEY,
        REFRESH,
        ADMIN.1,
        "$argon2",
        MQTT_PASSWORD,
        ROUTING_KEY,
        SMTP_PASSWORD,
    ] {
        assert!(!answers.contains(secret), "an answer contains {secret:?}");
    }
    // The store really holds them (the scan above could not have passed vacuously).
    assert!(console
        .store
        .secret("graph/refresh_token")
        .ok()
        .flatten()
        .is_some());
    console.stop().await;
}
