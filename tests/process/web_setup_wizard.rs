//! The setup wizard in a real headless Chromium, on `beacon run` started with nothing but the
//! test environment's addresses (no tenant, no client id, no connection string): the appliance
//! starts unconfigured, the first-run setup code sets the admin password, and the wizard goes
//! through OAuth settings, Event Hub settings (a wrong hub is refused by the live test and
//! nothing is saved), the device-code sign-in against the fake Microsoft cloud, the
//! subscription, and a test alarm — after which an emergency posted in the fake cloud arrives
//! through the real broker, is recognised without a restart of the process, appears on the
//! open dashboard without a reload and is acknowledged there (the lamps go off); the call's
//! page holds the notification as it arrived, clientState redacted. No page shows a secret. With `BEACON_SCREENSHOTS=dir` each step is saved as a PNG.

use std::process::Stdio;
use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::kafka::{broker, connection_string};
use crate::support::process::{beacon, field, hub_and_cloud, terminate, Log};
use crate::support::unique;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
const CHAT: &str = "19:wizard0c1e9a2b4c7d8e9f00112233aabb@thread.v2";
const ADMIN_PASSWORD: &str = "the chief's password";

#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_takes_an_unconfigured_appliance_to_a_working_subscription() {
    let (hub, cloud) = hub_and_cloud("wizard-hub", 2).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"wizard-test\"\ndata_dir = \"{}\"\n[eventhub]\nbootstrap_override = \"{}\"\nca_file = \"{}\"\n[graph]\nlogin_url = \"{}\"\ngraph_url = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\nhttps = false\n",
            dir.path().join("data").display(),
            broker().bootstrap,
            broker().ca.display(),
            cloud.login_url(),
            cloud.graph_url(),
        ),
    )
    .expect("config");

    let mut run = beacon(&["run"], &config)
        .env("BEACON_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let mut log = Log::follow(&mut run);
    // An appliance with nothing set up starts, says so, and offers its console.
    let code_line = log.wait_for("setup_code", WAIT).await;
    let code = field(&code_line, "setup_code").expect("setup code in the log");
    let listening = log.wait_for("console listening", WAIT).await;
    let addr = field(&listening, "addr").expect("console address");
    let base = format!("http://{addr}");
    log.wait_for("not consuming: the Event Hub is not set up", WAIT)
        .await;

    let browser = Browser::start().await;
    browser.goto(&base).await;
    browser.fill("#code", &code).await;
    browser.fill("#user", "chief").await;
    browser.fill("#password", ADMIN_PASSWORD).await;
    browser.fill("#confirm", ADMIN_PASSWORD).await;
    browser.click_on("#submit").await;
    browser.wait_for("#live", WAIT).await;

    // Step 1. Only step 1 is open; later forms are not offered.
    browser.goto(&format!("{base}/setup")).await;
    browser
        .wait_for("#progress-1[data-state='open']", WAIT)
        .await;
    assert!(
        browser.find("#hub-form").await.is_none(),
        "step 2 is locked"
    );
    browser.screenshot("setup-1-oauth").await;
    browser.fill("#tenant_id", "not a tenant").await;
    browser.fill("#client_id", &cloud.options().client_id).await;
    browser.click_on("#oauth-save").await;
    browser.wait_for_text("#problem", "Tenant", WAIT).await;
    browser
        .fill("#tenant_id", &cloud.options().tenant_domain)
        .await;
    browser.click_on("#oauth-save").await;
    browser
        .wait_for("#progress-1[data-state='done']", WAIT)
        .await;

    // Step 2: a hub that does not exist is refused by the live test; nothing is saved.
    let wrong = connection_string(&unique("no-such-hub"));
    browser.fill("#connection_string", wrong.expose()).await;
    browser.click_on("#hub-test-save").await;
    let refused = browser
        .wait_for_text("#hub-test", "Nothing was saved", WAIT)
        .await;
    assert!(refused.contains("no event hub named"), "{refused}");
    assert!(browser
        .find("#progress-2[data-state='done']")
        .await
        .is_none());
    browser.screenshot("setup-2-eventhub-refused").await;
    let right = connection_string(&hub);
    browser.fill("#hub", "").await;
    browser.fill("#connection_string", right.expose()).await;
    browser.fill("#partitions", "2").await;
    browser.click_on("#hub-test-save").await;
    let tested = browser
        .wait_for_text("#hub-test", "2 partitions", WAIT)
        .await;
    assert!(tested.contains(&hub), "{tested}");
    browser
        .wait_for("#progress-2[data-state='done']", WAIT)
        .await;
    let state = browser.wait_for("#connection-string-state", WAIT).await;
    assert_eq!(
        browser.text(&state).await,
        "Connection string: set (not shown)"
    );
    browser.screenshot("setup-2-eventhub").await;

    // Step 3: the device code is shown; the person approves it in the (fake) Microsoft page.
    browser.click_on("#sign-in-start").await;
    let shown = browser.wait_for("#user-code", WAIT).await;
    let user_code = browser.text(&shown).await;
    assert_eq!(cloud.pending_user_codes(), vec![user_code.clone()]);
    let countdown = browser.wait_for("#countdown", WAIT).await;
    assert!(browser.text(&countdown).await.contains(':'));
    browser.screenshot("setup-3-sign-in-code").await;

    assert!(cloud.approve(&user_code));

    // The page reloads by itself while the sign-in waits.
    let signed_in = browser
        .wait_for_text("#sign-in-result", "Signed in as", WAIT)
        .await;
    assert!(
        signed_in.contains(&cloud.options().user.user_principal_name),
        "{signed_in}"
    );
    browser
        .wait_for("#progress-3[data-state='done']", WAIT)
        .await;
    assert!(
        cloud.subscriptions().is_empty(),
        "no subscription before the admin creates it"
    );

    // Step 4: the summary, then create, then the result in words.
    let summary = browser.wait_for("#subscription-summary", WAIT).await;
    let summary = browser.text(&summary).await;
    assert!(summary.contains("getAllMessages"), "{summary}");
    assert!(summary.contains(&hub), "{summary}");
    browser.screenshot("setup-4-subscription").await;
    browser.click_on("#subscription-create").await;
    browser
        .wait_for_text("#subscription-result", "is active until", WAIT)
        .await;
    let subscriptions = cloud.subscriptions();
    assert_eq!(subscriptions.len(), 1, "one subscription");
    assert_eq!(subscriptions[0].hub, hub);
    browser
        .wait_for("#progress-4[data-state='done']", WAIT)
        .await;

    // Step 5: a test alarm shows as a test on the dashboard.
    browser.click_on("#test-alarm-send").await;
    browser
        .wait_for_text("#test-alarm-result", "Test alarm sent", WAIT)
        .await;
    browser.screenshot("setup-5-done").await;
    browser.goto(&base).await;
    browser.wait_for_text("#live", "TEST", WAIT).await;

    // The link runs with what the wizard saved: an emergency comes through the broker.
    let id = cloud
        .post_message(
            CHAT,
            json!({"importance": "high", "messageType": "message",
                   "from": {"user": {"id": "u-9", "displayName": "Kim Park"}},
                   "body": {"contentType": "html", "content": "<p>Kim Park has placed an Emergency Call to 911</p><p>Location: 1 Main St, Springfield</p>"}}),
        )
        .await;
    let line = log.wait_for("emergency call recognised", WAIT).await;
    assert!(line.contains(&id), "{line}");
    // On the dashboard opened before the call: no reload, the page follows the events.
    browser.wait_for_text("#live", "Kim Park", WAIT).await;
    let live = browser.wait_for_text("#live", "Strobe ON", WAIT).await;
    assert!(live.contains("1 Main St"), "{live}");
    browser.click_on("#acknowledge").await;
    let live = browser
        .wait_for_text("#live", "acknowledged by chief", WAIT)
        .await;
    assert!(live.contains("Strobe off"), "{live}");
    // The call's page keeps the notification as it came through the hub, clientState redacted.
    let client_state = subscriptions[0].client_state.clone().expect("client state");
    browser.goto(&format!("{base}/calls")).await;
    browser.click_on("#calls a[href^='/calls/']").await;
    let raw = browser
        .wait_for_text("#raw-notification", "\"changeType\": \"created\"", WAIT)
        .await;
    assert!(raw.contains(&id), "{raw}");
    assert!(raw.contains("(redacted)"), "{raw}");
    assert!(!browser.source().await.contains(&client_state));

    // No page shows a secret; neither does the log.
    let key = "dGVzdC1rZXktbm90LXJlYWw=";
    for path in ["/setup", "/settings", "/"] {
        browser.goto(&format!("{base}{path}")).await;
        browser.wait_for("main", WAIT).await;
        let html = browser.source().await;
        assert!(
            !html.contains(key),
            "{path} shows the connection string's key"
        );
    }
    browser.quit().await;
    assert!(terminate(run).await, "a clean stop");
    assert!(!log.text().contains(key), "the log shows the key");
}
