//! Step 2, the Event Hub form: the settings are checked, then tested live — the consumer's own
//! settings, one SASL_SSL connection, the hub's partitions read — and saved only when the test
//! worked; the link then restarts with them.

use std::sync::Arc;
use std::time::Duration;

use warp::http::StatusCode;
use warp::reply::Response;

use super::super::{field, Form};
use super::render::{page, store_failed, Typed};
use super::steps::admit;
use crate::cloud_settings::{self, FieldError, HubForm};
use crate::eventhub::consumer::ConsumerSettings;
use crate::web::respond;
use crate::web::state::{Caller, Web};
use crate::web::wizard::{Outcome, Step};

/// How long the live Event Hub test may take.
const HUB_TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Step 2: tests the Event Hub settings live and saves them when the test worked.
pub async fn event_hub(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, control) = match admit(&web, &caller, &form, Step::EventHub) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let store = web.context.store.clone();
    let stored = cloud_settings::stored_connection_string(&store)
        .or_else(|| control.file.eventhub.connection_string.clone());
    let typed = Typed::of(&form, &["namespace", "hub", "consumer_group", "partitions"]);
    let checked = cloud_settings::check_hub(
        &HubForm {
            namespace: field(&form, "namespace"),
            hub: field(&form, "hub"),
            consumer_group: field(&form, "consumer_group"),
            connection_string: form
                .get("connection_string")
                .map(String::as_str)
                .unwrap_or(""),
            partitions: field(&form, "partitions"),
        },
        stored.as_ref(),
    );
    let (choice, secret) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            return page(
                &web,
                &session,
                Some(problem),
                Some(typed),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    // The target exactly as the consumer will use it (the file's bootstrap override and CA
    // stay in force).
    let mut trial = (*control.file).clone();
    trial.eventhub.connection_string = secret.clone().or(stored);
    trial.eventhub.hub = Some(choice.hub.clone());
    let target = match trial.eventhub_target() {
        Ok(target) => target,
        Err(e) => {
            let problem = FieldError {
                field: "connection_string",
                label: "Connection string",
                reason: format!("{e} (the value is not shown)"),
            };
            return page(
                &web,
                &session,
                Some(problem),
                Some(typed),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let settings = ConsumerSettings {
        group_id: choice
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("beacon-{}", web.context.device_id)),
        client_id: format!("{}-setup", web.context.device_id),
        ca_file: trial.eventhub.ca_file.clone(),
        instance_id: None,
        max_batch: 1,
        commit: false,
        target,
    };
    let probed = tokio::task::spawn_blocking(move || {
        crate::eventhub::probe::probe(&settings, HUB_TEST_TIMEOUT)
    })
    .await
    .unwrap_or_else(|e| Err(format!("the test did not finish: {e}")));
    match probed {
        Ok(found) => {
            let mut words = format!(
                "Connected to {} over SASL_SSL: event hub '{}' has {} partition{}.",
                found.bootstrap,
                found.hub,
                found.partitions,
                if found.partitions == 1 { "" } else { "s" }
            );
            if let Some(expected) = choice
                .partitions
                .filter(|p| *p as usize != found.partitions)
            {
                words.push_str(&format!(
                    " You expected {expected}: Beacon reads every partition either way."
                ));
            }
            if let Err(e) = cloud_settings::save_hub(&store, &choice, secret) {
                return store_failed(&web, &session, &e);
            }
            tracing::info!(
                by = session.user,
                hub = choice.hub,
                namespace = choice.namespace,
                "setup: Event Hub settings tested and saved"
            );
            web.wizard.set_hub_test(Outcome::Worked(words));
            control.restart().await;
            respond::redirect("/setup#step-3")
        }
        Err(reason) => {
            tracing::warn!(
                by = session.user,
                problem = reason,
                "setup: Event Hub test failed; nothing saved"
            );
            web.wizard
                .set_hub_test(Outcome::Failed(format!("{reason}. Nothing was saved.")));
            page(&web, &session, None, Some(typed), StatusCode::BAD_GATEWAY)
        }
    }
}
