//! What the setup wizard keeps in the store: the Microsoft sign-in settings (tenant, client id,
//! client secret and its expiry) and the Event Hub settings (connection string, hub, consumer
//! group, expected partitions), laid over the configuration file by [`overlay`].
//!
//! Why in the store: the appliance's service runs with a read-only `/etc` (systemd
//! `ProtectSystem=strict`) and an admin sets it up from the web page, so what the page saves
//! lives beside the rest of the state (`settings` tree; the two secrets in the `secrets` tree,
//! file mode 0600). What the wizard saved wins over the file: it is the admin's latest word.
//! The file keeps what only an integrator sets (URLs, `bootstrap_override`, `ca_file`).
//!
//! The checks ([`check_oauth`], [`check_hub`]) are pure: a form in, settings or a
//! [`FieldError`] naming the field out. No error carries a secret's value.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::eventhub::connection::EventHubTarget;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

const OAUTH_KEY: &str = "wizard/oauth";
const HUB_KEY: &str = "wizard/eventhub";
const CLIENT_SECRET: &str = "wizard/graph.client_secret";
const CONNECTION_STRING: &str = "wizard/eventhub.connection_string";
const SUBSCRIBE_KEY: &str = "wizard/subscribe";
const CALL_EVENTS_KEY: &str = "wizard/call_events.policies";

/// The app registration the service account signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthChoice {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret_expires: Option<NaiveDate>,
}

/// The event hub the notifications arrive in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubChoice {
    /// `<ns>` of `<ns>.servicebus.windows.net`, from the connection string.
    pub namespace: String,
    pub hub: String,
    pub consumer_group: Option<String>,
    /// How many partitions the admin expects (the connection test compares).
    pub partitions: Option<u32>,
}

/// What the wizard has saved so far. Secrets only as "set".
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub oauth: Option<OAuthChoice>,
    pub client_secret_set: bool,
    pub hub: Option<HubChoice>,
    pub connection_string_set: bool,
}

/// A form field that is wrong, and why (never with a secret's value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {reason}")]
pub struct FieldError {
    /// The form field's name.
    pub field: &'static str,
    /// What the page calls it.
    pub label: &'static str,
    pub reason: String,
}

fn wrong(field: &'static str, label: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        label,
        reason: reason.into(),
    }
}

/// The OAuth step's form, as typed.
#[derive(Debug, Default)]
pub struct OAuthForm<'a> {
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    /// Empty: keep the stored one (or none).
    pub client_secret: &'a str,
    /// `YYYY-MM-DD` or empty.
    pub client_secret_expires: &'a str,
    /// Remove the stored client secret (public client).
    pub clear_secret: bool,
}

/// What to do with a stored secret.
#[derive(Debug)]
pub enum SecretChange {
    Keep,
    Set(Secret),
    Remove,
}

/// Checks the OAuth step.
pub fn check_oauth(form: &OAuthForm<'_>) -> Result<(OAuthChoice, SecretChange), FieldError> {
    let tenant = form.tenant_id.trim();
    if !(is_guid(tenant) || is_domain(tenant)) {
        return Err(wrong(
            "tenant_id",
            "Tenant",
            "enter the directory (tenant) id, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or the tenant's domain such as contoso.onmicrosoft.com",
        ));
    }
    let client = form.client_id.trim();
    if !is_guid(client) {
        return Err(wrong(
            "client_id",
            "Application (client) id",
            "enter the app registration's application id, a GUID such as 00000000-0000-0000-0000-000000000000",
        ));
    }
    let secret = form.client_secret.trim();
    let change = if form.clear_secret {
        SecretChange::Remove
    } else if secret.is_empty() {
        SecretChange::Keep
    } else if secret.len() > 1024 || secret.chars().any(char::is_control) {
        return Err(wrong(
            "client_secret",
            "Client secret",
            "a client secret is up to 1024 printable characters (the value is not shown)",
        ));
    } else {
        SecretChange::Set(Secret::new(secret.to_string()))
    };
    let expires = match form.client_secret_expires.trim() {
        "" => None,
        text => Some(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            wrong(
                "client_secret_expires",
                "Client secret expires",
                "enter the date as YYYY-MM-DD, as the Entra portal shows it",
            )
        })?),
    };
    Ok((
        OAuthChoice {
            tenant_id: tenant.to_string(),
            client_id: client.to_ascii_lowercase(),
            client_secret_expires: expires,
        },
        change,
    ))
}

/// The Event Hub step's form, as typed.
#[derive(Debug, Default)]
pub struct HubForm<'a> {
    pub namespace: &'a str,
    pub hub: &'a str,
    pub consumer_group: &'a str,
    /// Empty: keep the stored one.
    pub connection_string: &'a str,
    pub partitions: &'a str,
}

/// Checks the Event Hub step. `stored` is the connection string saved before, used when the
/// form leaves it empty.
pub fn check_hub(
    form: &HubForm<'_>,
    stored: Option<&Secret>,
) -> Result<(HubChoice, Option<Secret>), FieldError> {
    const CS: &str = "Connection string";
    let typed = form.connection_string.trim();
    let (secret, new) = if typed.is_empty() {
        match stored {
            Some(s) => (s.clone(), None),
            None => {
                return Err(wrong(
                    "connection_string",
                    CS,
                    "paste the connection string of a shared access policy with Listen (Event Hubs namespace → Shared access policies)",
                ))
            }
        }
    } else {
        let s = Secret::new(typed.to_string());
        (s.clone(), Some(s))
    };
    let target = EventHubTarget::parse(&secret).map_err(|e| {
        wrong(
            "connection_string",
            CS,
            format!("{e} (the value is not shown)"),
        )
    })?;
    let namespace_of_string = target
        .namespace_host
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let namespace = form.namespace.trim();
    let namespace = namespace
        .strip_suffix(".servicebus.windows.net")
        .unwrap_or(namespace);
    if !namespace.is_empty() && !namespace.eq_ignore_ascii_case(&namespace_of_string) {
        return Err(wrong(
            "namespace",
            "Namespace",
            format!(
                "the connection string is for namespace '{namespace_of_string}', not '{namespace}'"
            ),
        ));
    }
    let typed_hub = form.hub.trim();
    let hub = match (&target.entity_path, typed_hub) {
        (Some(path), "") => path.clone(),
        (Some(path), hub) if path != hub => {
            return Err(wrong(
                "hub",
                "Event hub",
                format!("the connection string is for event hub '{path}', not '{hub}'"),
            ))
        }
        (_, "") => {
            return Err(wrong(
                "hub",
                "Event hub",
                "enter the event hub's name (the connection string does not name one)",
            ))
        }
        (_, hub) => hub.to_string(),
    };
    if !crate::config::is_name(&hub, 256) {
        return Err(wrong(
            "hub",
            "Event hub",
            "an event hub name is 1 to 256 letters, digits, '-', '_' or '.'",
        ));
    }
    let group = form.consumer_group.trim();
    if group.len() > 256 || group.chars().any(char::is_control) {
        return Err(wrong(
            "consumer_group",
            "Consumer group",
            "up to 256 printable characters; leave it empty for beacon-<device id>",
        ));
    }
    let partitions = match form.partitions.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(n) if (1..=1024).contains(&n) => Some(n),
            _ => {
                return Err(wrong(
                    "partitions",
                    "Partitions",
                    "a whole number from 1 to 1024, as the event hub's overview shows it",
                ))
            }
        },
    };
    Ok((
        HubChoice {
            namespace: namespace_of_string,
            hub,
            consumer_group: (!group.is_empty()).then(|| group.to_string()),
            partitions,
        },
        new,
    ))
}

/// Saves the OAuth step. `in_force` is the (tenant, client id) in force before. A different
/// app registration means a new sign-in and a new subscription: the subscription then waits
/// until the admin creates it in the wizard. The same one (a new secret or expiry date) keeps
/// the subscription kept as it is.
pub fn save_oauth(
    store: &Store,
    choice: &OAuthChoice,
    secret: SecretChange,
    in_force: (Option<&str>, Option<&str>),
) -> Result<(), StoreError> {
    let same_registration = in_force.0 == Some(choice.tenant_id.as_str())
        && in_force
            .1
            .is_some_and(|c| c.eq_ignore_ascii_case(&choice.client_id));
    store
        .settings
        .insert(OAUTH_KEY, &serde_json::json!(choice))?;
    if !same_registration {
        store
            .settings
            .insert(SUBSCRIBE_KEY, &serde_json::json!(false))?;
    }
    match secret {
        SecretChange::Keep => {}
        SecretChange::Set(s) => store.set_secret(CLIENT_SECRET, &s)?,
        SecretChange::Remove => store.remove_secret(CLIENT_SECRET)?,
    }
    store.flush()
}

/// Saves the Event Hub step.
pub fn save_hub(
    store: &Store,
    choice: &HubChoice,
    secret: Option<Secret>,
) -> Result<(), StoreError> {
    store.settings.insert(HUB_KEY, &serde_json::json!(choice))?;
    if let Some(s) = secret {
        store.set_secret(CONNECTION_STRING, &s)?;
    }
    store.flush()
}

/// Whether the subscription keeper may create and keep the subscription: once the admin asked
/// for it in the wizard, and always on an appliance set up from the file alone (no OAuth
/// settings from the wizard).
pub fn subscribe_wanted(store: &Store) -> bool {
    match store.settings.get(SUBSCRIBE_KEY).ok().flatten() {
        Some(v) => v.as_bool().unwrap_or(false),
        None => true,
    }
}

/// Records the admin's "create the subscription".
pub fn want_subscription(store: &Store) -> Result<(), StoreError> {
    store
        .settings
        .insert(SUBSCRIBE_KEY, &serde_json::json!(true))?;
    store.flush()
}

/// What the wizard saved (an unreadable entry counts as not saved).
pub fn saved(store: &Store) -> Saved {
    let read = |key| store.settings.get(key).ok().flatten();
    Saved {
        oauth: read(OAUTH_KEY).and_then(|v| serde_json::from_value(v).ok()),
        client_secret_set: stored_client_secret(store).is_some(),
        hub: read(HUB_KEY).and_then(|v| serde_json::from_value(v).ok()),
        connection_string_set: stored_connection_string(store).is_some(),
    }
}

/// The saved connection string.
pub fn stored_connection_string(store: &Store) -> Option<Secret> {
    store.secret(CONNECTION_STRING).ok().flatten()
}

fn stored_client_secret(store: &Store) -> Option<Secret> {
    store.secret(CLIENT_SECRET).ok().flatten()
}

/// The emergency calling policies typed on the setup page (one a line, or separated by
/// commas), checked like `[call_events] policies` in the file. Empty: call events off.
pub fn check_call_event_policies(text: &str, config: &Config) -> Result<Vec<String>, FieldError> {
    let policies: Vec<String> = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let section = crate::graph::call_events::CallEventsConfig {
        policies: policies.clone(),
        ..config.call_events.clone()
    };
    section
        .validate(&config.graph)
        .map_err(|(_, reason)| wrong("policies", "Emergency calling policies", reason))?;
    Ok(policies)
}

/// Saves the emergency calling policies (empty: call events off).
pub fn save_call_event_policies(store: &Store, policies: &[String]) -> Result<(), StoreError> {
    store
        .settings
        .insert(CALL_EVENTS_KEY, &serde_json::json!(policies))?;
    store.flush()
}

/// `config` with what the wizard saved laid over it.
pub fn overlay(config: &Config, store: &Store) -> Config {
    let mut config = config.clone();
    let saved = saved(store);
    if let Some(oauth) = saved.oauth {
        config.graph.tenant_id = Some(oauth.tenant_id);
        config.graph.client_id = Some(oauth.client_id);
        config.graph.client_secret = stored_client_secret(store);
        config.graph.client_secret_expires = oauth.client_secret_expires;
    }
    if let (Some(hub), Some(cs)) = (saved.hub, stored_connection_string(store)) {
        config.eventhub.connection_string = Some(cs);
        config.eventhub.hub = Some(hub.hub);
        config.eventhub.consumer_group = hub.consumer_group;
    }
    if let Some(policies) = store
        .settings
        .get(CALL_EVENTS_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
    {
        config.call_events.policies = policies;
    }
    config
}

/// The configuration keys that what the wizard saved (as the store's keepsake lists it)
/// overrides in the file, in the order [`overlay`] applies them.
pub fn overridden_keys(kept: &crate::store::keepsake::Keepsake) -> Vec<&'static str> {
    let secret = |name: &str| kept.secrets_set.iter().any(|s| s == name);
    let mut keys = Vec::new();
    if kept.settings.contains_key(OAUTH_KEY) {
        keys.extend([
            "graph.tenant_id",
            "graph.client_id",
            "graph.client_secret",
            "graph.client_secret_expires",
        ]);
    }
    if kept.settings.contains_key(HUB_KEY) && secret(CONNECTION_STRING) {
        keys.extend([
            "eventhub.connection_string",
            "eventhub.hub",
            "eventhub.consumer_group",
        ]);
    }
    if kept.settings.contains_key(CALL_EVENTS_KEY) {
        keys.push("call_events.policies");
    }
    keys
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A DNS name with at least two labels.
fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: &str = "Endpoint=sb://contoso-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0a2V5dmFsdWU=;EntityPath=teams";

    #[test]
    fn oauth_accepts_a_guid_or_a_domain_and_keeps_the_secret_when_left_empty() {
        let (choice, change) = check_oauth(&OAuthForm {
            tenant_id: " contoso.onmicrosoft.com ",
            client_id: "0A1B2C3D-0000-4000-8000-000000000001",
            client_secret_expires: "2027-03-01",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(choice.tenant_id, "contoso.onmicrosoft.com");
        assert_eq!(choice.client_id, "0a1b2c3d-0000-4000-8000-000000000001");
        assert_eq!(
            choice.client_secret_expires,
            NaiveDate::from_ymd_opt(2027, 3, 1)
        );
        assert!(matches!(change, SecretChange::Keep));
    }

    #[test]
    fn oauth_errors_name_the_field() {
        let bad_tenant = check_oauth(&OAuthForm {
            tenant_id: "<script>",
            client_id: "0a1b2c3d-0000-4000-8000-000000000001",
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_tenant.field, "tenant_id");
        let bad_client = check_oauth(&OAuthForm {
            tenant_id: "contoso.onmicrosoft.com",
            client_id: "not-a-guid",
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_client.field, "client_id");
        let bad_date = check_oauth(&OAuthForm {
            tenant_id: "contoso.onmicrosoft.com",
            client_id: "0a1b2c3d-0000-4000-8000-000000000001",
            client_secret_expires: "1/3/2027",
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_date.field, "client_secret_expires");
    }

    #[test]
    fn hub_takes_namespace_and_hub_from_the_connection_string() {
        let (choice, new) = check_hub(
            &HubForm {
                connection_string: CS,
                partitions: "2",
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(choice.namespace, "contoso-ns");
        assert_eq!(choice.hub, "teams");
        assert_eq!(choice.partitions, Some(2));
        assert!(new.is_some());
    }

    #[test]
    fn hub_errors_never_show_the_key() {
        let broken = CS.replace("Endpoint=sb://", "Endpoint=http://");
        let error = check_hub(
            &HubForm {
                connection_string: &broken,
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(error.field, "connection_string");
        assert!(
            !error.to_string().contains("c2VjcmV0a2V5dmFsdWU"),
            "{error}"
        );
        let mismatch = check_hub(
            &HubForm {
                connection_string: CS,
                hub: "other",
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(mismatch.field, "hub");
        let namespace = check_hub(
            &HubForm {
                connection_string: CS,
                namespace: "fabrikam",
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(namespace.field, "namespace");
    }

    #[test]
    fn hub_without_a_connection_string_uses_the_stored_one_or_asks_for_it() {
        let missing = check_hub(&HubForm::default(), None).unwrap_err();
        assert_eq!(missing.field, "connection_string");
        let stored = Secret::new(CS.to_string());
        let (choice, new) = check_hub(&HubForm::default(), Some(&stored)).unwrap();
        assert_eq!(choice.hub, "teams");
        assert!(new.is_none());
    }

    #[test]
    fn emergency_calling_policies_typed_on_the_page_replace_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut file = Config::default();
        file.graph.tenant_id = Some("contoso.com".into());
        file.graph.client_id = Some("0a1b2c3d-0000-4000-8000-000000000001".into());
        file.call_events.policies = vec!["From-File".into()];
        assert_eq!(overlay(&file, &store).call_events.policies, ["From-File"]);
        let typed = check_call_event_policies(" HQ-Emergency\r\nBranch, East ", &file).unwrap();
        assert_eq!(typed, ["HQ-Emergency", "Branch", "East"]);
        let twice = check_call_event_policies("HQ\nhq", &file).unwrap_err();
        assert_eq!(twice.field, "policies");
        assert!(twice.reason.contains("listed twice"), "{twice}");
        save_call_event_policies(&store, &typed).unwrap();
        assert_eq!(overlay(&file, &store).call_events.policies, typed);
        // Emptied on the page: off, whatever the file says.
        save_call_event_policies(&store, &check_call_event_policies(" ", &file).unwrap()).unwrap();
        assert!(!overlay(&file, &store).call_events.enabled());
    }

    #[test]
    fn saved_settings_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut file = Config::default();
        file.graph.tenant_id = Some("file.example.com".into());
        let (oauth, secret) = check_oauth(&OAuthForm {
            tenant_id: "contoso.onmicrosoft.com",
            client_id: "0a1b2c3d-0000-4000-8000-000000000001",
            client_secret: "s3cr3t",
            ..Default::default()
        })
        .unwrap();
        save_oauth(&store, &oauth, secret, (Some("file.example.com"), None)).unwrap();
        let (hub, cs) = check_hub(
            &HubForm {
                connection_string: CS,
                consumer_group: "desk",
                ..Default::default()
            },
            None,
        )
        .unwrap();
        save_hub(&store, &hub, cs).unwrap();
        let config = overlay(&file, &store);
        assert_eq!(
            config.graph.tenant_id.as_deref(),
            Some("contoso.onmicrosoft.com")
        );
        assert_eq!(
            config
                .graph
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_string()),
            Some("s3cr3t".into())
        );
        assert_eq!(config.eventhub.consumer_group.as_deref(), Some("desk"));
        assert_eq!(config.eventhub_target().unwrap().topic(), "teams");
        let saved = saved(&store);
        assert!(saved.client_secret_set && saved.connection_string_set);
        assert!(
            !subscribe_wanted(&store),
            "new OAuth settings wait for the wizard's create"
        );
        want_subscription(&store).unwrap();
        assert!(subscribe_wanted(&store));
        // A new expiry date for the same registration does not stop the subscription.
        let same = OAuthChoice {
            client_secret_expires: NaiveDate::from_ymd_opt(2028, 1, 1),
            ..oauth.clone()
        };
        let in_force = (
            Some(oauth.tenant_id.as_str()),
            Some(oauth.client_id.as_str()),
        );
        save_oauth(&store, &same, SecretChange::Keep, in_force).unwrap();
        assert!(
            subscribe_wanted(&store),
            "same registration: still subscribed"
        );
    }
}
