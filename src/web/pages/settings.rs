//! `/settings` (admins only): the configuration in force — secrets shown only as "set" —,
//! the time zone times are shown in (a form to choose it), the console's users with a form to
//! add a guard or admin, API tokens, and the fleet (its id, a one-time join code for a new
//! box, joining another box's fleet from here, the members with when each was last seen and
//! whether it renews the subscriptions, whether an acknowledgement on another desk
//! acknowledges here too, the boxes that joined here, rotating its secrets, leaving it).

use std::sync::Arc;

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{csrf_ok, field, Form, Layout};
use crate::web::password;
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    config: Vec<(String, String)>,
    sections: Vec<crate::web::settings_view::Section>,
    users: Vec<(String, &'static str)>,
    /// API tokens: name, role, created, by whom.
    tokens: Vec<(String, &'static str, String, String)>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    /// The zone times are shown in (name) and a time in it, as an example.
    time_zone: String,
    time_zone_now: String,
    notice: Option<String>,
    problem: Option<String>,
    /// The fleet: its id, the open join code and until when, the boxes that joined here.
    fleet_id: String,
    join_code: Option<(String, String)>,
    members: Vec<(String, String)>,
    /// The other boxes as this one last heard from them.
    peers: Vec<PeerRow>,
    /// An acknowledgement on another desk acknowledges here too.
    peer_acks_silence: bool,
    /// The subscription an admin asked to delete and make again, awaiting confirmation.
    confirm_replace: Option<String>,
}

/// One member of the fleet as the page shows it.
struct PeerRow {
    name: String,
    url: String,
    /// "seen at …", "not seen since …" or "never seen".
    seen: String,
    /// "renews the subscriptions (last at …)" or why not.
    role: String,
}

fn peer_rows(web: &Web) -> Vec<PeerRow> {
    use crate::outputs::peers::members::{Members, Seen};
    let now = chrono::Utc::now();
    let members = match &web.context.peers {
        Some(peers) => peers.members(),
        None => crate::outputs::peers::link::load_members(&web.context.store)
            .members()
            .cloned()
            .collect(),
    };
    members
        .into_iter()
        .map(|m| PeerRow {
            seen: match Members::seen(&m, now) {
                Seen::Recently(at) => format!("seen at {}", super::time(at)),
                Seen::NotSince(at) => format!("not seen since {}", super::time(at)),
                Seen::Never => "never seen".into(),
            },
            role: match (m.last_seen, m.renews, m.last_renewed) {
                (None, ..) => "unknown until it is heard from".into(),
                (Some(_), true, Some(at)) => {
                    format!("renews the subscriptions (last at {})", super::time(at))
                }
                (Some(_), true, None) => "renews the subscriptions".into(),
                (Some(_), false, _) => {
                    "does not renew the subscriptions (not set up or not signed in)".into()
                }
            },
            name: m.address.name,
            url: m.address.url,
        })
        .collect()
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Audience::Page) {
        Ok(session) => page(web, &session, None, None, StatusCode::OK),
        Err(refused) => refused,
    }
}

fn page(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    page_with_token(web, session, notice, problem, None, status)
}

fn page_with_token(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
    new_token: Option<String>,
    status: StatusCode,
) -> Response {
    page_full(web, session, notice, problem, new_token, None, status)
}

fn page_full(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
    new_token: Option<String>,
    confirm_replace: Option<String>,
    status: StatusCode,
) -> Response {
    respond::page_with_status(
        &SettingsPage {
            layout: Layout::new("Settings", "settings", session),
            // What the setup wizard saved is in force too: show the file with it laid over.
            config: {
                let mut rows = match &web.context.cloud {
                    Some(control) => crate::web::summary(&control.settings(&web.context.store)),
                    None => web.summary.clone(),
                };
                if let Some(sha256) = web.context.status.certificate.borrow().clone() {
                    rows.push(("Console certificate SHA-256".into(), sha256));
                }
                rows
            },
            sections: web.sections.clone(),
            users: web
                .users
                .list()
                .into_iter()
                .map(|(n, r)| (n, r.name()))
                .collect(),
            tokens: web
                .tokens
                .list()
                .into_iter()
                .map(|t| (t.name, t.role.name(), super::time(t.created), t.created_by))
                .collect(),
            new_token,
            time_zone: crate::local_time::current().name().to_string(),
            time_zone_now: super::time(chrono::Utc::now()),
            notice,
            problem,
            fleet_id: crate::graph::fleet::FleetSecrets::load(&web.context.store)
                .ok()
                .flatten()
                .map(|f| f.id)
                .unwrap_or_default(),
            join_code: web
                .join_codes
                .lock()
                .ok()
                .and_then(|codes| codes.open(chrono::Utc::now()))
                .map(|(code, until)| (code, super::time(until))),
            members: crate::web::fleet_join::members(&web.context.store)
                .into_iter()
                .map(|m| (m.name, super::time(m.joined_at)))
                .collect(),
            peers: peer_rows(web),
            peer_acks_silence: crate::outputs::peers::link::silences(&web.context.store),
            confirm_replace,
        },
        status,
    )
}

/// Opens a join code for a new box (shown on this page for ten minutes).
pub fn fleet_code(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Some(fingerprint) = crate::web::fleet_join::served_certificate_sha256(&web) else {
        return answer(
            &web,
            &session,
            Err("Joining needs the console over HTTPS ([web] https = true).".into()),
        );
    };
    // The page shows the open code (and only to admins).
    if let Ok(mut codes) = web.join_codes.lock() {
        let now = chrono::Utc::now();
        codes.issue(&fingerprint, now);
        crate::web::fleet_join::show_on_display(&web, &codes, now);
    } else {
        return answer(
            &web,
            &session,
            Err("The join codes are unavailable.".into()),
        );
    }
    tracing::info!(by = session.user, "console: fleet join code opened");
    answer(
        &web,
        &session,
        Ok(format!(
            "Join code open for {} minutes. On the new box: Settings → Fleet → Join a fleet, or with its service stopped: beacon fleet-join --from {} --code <the code>.",
            crate::web::join_code::LIFETIME_MINUTES,
            web_address(&web),
        )),
    )
}

/// Gives the fleet new secrets (a stolen box): a new clientState, peer key and encryption key,
/// the fleet's subscriptions (chat and emergency events) replaced with them, and the new
/// secrets handed to every member this box reaches but the stolen one (`stolen`, chosen on the
/// page), which every box forgets. A member not reached must join again.
pub async fn fleet_rotate(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, keeper) = match admit_with_keeper(&web, &caller, &form) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let store = &web.context.store;
    let stolen: Vec<String> = Some(field(&form, "stolen"))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    // Said on the page only of a box that was a member here.
    let was_member = |name: &str| {
        web.context
            .peers
            .as_ref()
            .is_some_and(|peers| peers.members().iter().any(|m| m.address.name == name))
    };
    let stolen_member = stolen.first().filter(|name| was_member(name)).cloned();
    let before = match crate::graph::fleet::FleetSecrets::load(store) {
        Ok(Some(before)) => before,
        _ => {
            return answer(
                &web,
                &session,
                Err("The fleet's secrets cannot be read: nothing was rotated.".into()),
            )
        }
    };
    let now = chrono::Utc::now();
    let (keys, call_events) = match &web.context.cloud {
        Some(control) => {
            let handles = control.handles.borrow();
            (handles.keys.clone(), handles.call_events.clone())
        }
        None => (None, None),
    };
    // First the key: the subscriptions made again below are for the ring's current one (the
    // chat subscription with rich notifications on, the emergency-event ones always).
    if let Some(keys) = &keys {
        if let Err(e) = crate::graph::keys::rotate(store, keys, now) {
            return answer(
                &web,
                &session,
                Err(format!(
                    "The new rich-notification key cannot be kept ({e}): nothing was rotated."
                )),
            );
        }
    }
    if let Err(e) = keeper.rotate_fleet_secrets(now).await {
        return answer(&web, &session, Err(crate::graph::subscription::explain(&e)));
    }
    tracing::warn!(by = session.user, stolen = ?stolen, "console: the fleet's secrets were rotated");
    let mut said = vec!["The fleet's clientState, peer key and encryption key are new and its chat subscription was made again with them.".to_string()];
    if let Some(call_events) = call_events {
        said.push(match call_events.replace_all(now).await {
            Ok(()) => "The emergency-event subscriptions were made again with them.".into(),
            Err(problem) => format!("The emergency-event subscriptions: {problem}"),
        });
    }
    if let Some(peers) = &web.context.peers {
        let handed = match crate::graph::fleet::Bundle::of(store) {
            Ok(bundle) => {
                peers
                    .hand_over(&before.peer_key, bundle, &stolen, now)
                    .await
            }
            Err(e) => Err(e),
        };
        said.push(match handed {
            Ok(outcomes) => handed_over_in_words(&outcomes),
            Err(e) => format!("The new secrets could not be handed to the other boxes ({e}): each must join again."),
        });
    }
    if let Some(name) = stolen_member {
        said.push(format!(
            "{name} is no longer a member here and was not given them."
        ));
    }
    answer(&web, &session, Ok(said.join(" ")))
}

/// What came of handing the new secrets to each member, in words.
fn handed_over_in_words(outcomes: &[(String, Result<(), String>)]) -> String {
    if outcomes.is_empty() {
        return "No other box to hand them to.".into();
    }
    let took: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(name, _)| name.as_str())
        .collect();
    let missed: Vec<String> = outcomes
        .iter()
        .filter_map(|(name, o)| o.as_ref().err().map(|e| format!("{name} ({e})")))
        .collect();
    let mut words = Vec::new();
    if !took.is_empty() {
        words.push(format!("Handed to {}.", took.join(", ")));
    }
    if !missed.is_empty() {
        words.push(format!(
            "Not reached: {} — open a join code for each and join it again.",
            missed.join(", ")
        ));
    }
    words.join(" ")
}

/// Leaves the fleet: this box becomes a fleet of one.
pub async fn fleet_leave(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, keeper) = match admit_with_keeper(&web, &caller, &form) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let outcome = keeper
        .leave_fleet()
        .await
        .map(|fleet| {
            if let Some(peers) = &web.context.peers {
                if let Err(error) = peers.forget_all() {
                    tracing::error!(%error, "console: the fleet's members cannot be forgotten");
                }
            }
            tracing::warn!(by = session.user, fleet, "console: this box left its fleet");
            format!("This box left its fleet and is now fleet {fleet}. Give it its own service account or Event Hub: Graph allows one subscription per account, and the old fleet's notifications are refused here.")
        })
        .map_err(|e| crate::graph::subscription::explain(&e));
    answer(&web, &session, outcome)
}

/// Deletes the fleet's subscription and makes it again with this box's clientState — for a
/// stray subscription whose clientState was lost (adopted, but its notifications refused).
/// Without `confirm=yes` it only asks (the page names the subscription and what follows).
pub async fn fleet_replace_subscription(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let (session, keeper) = match admit_with_keeper(&web, &caller, &form) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    if field(&form, "confirm") != "yes" {
        let kept = keeper
            .status()
            .borrow()
            .subscription_id
            .clone()
            .unwrap_or_else(|| "(none kept now)".into());
        return page_full(&web, &session, None, None, None, Some(kept), StatusCode::OK);
    }
    let outcome = keeper
        .replace_subscription(chrono::Utc::now())
        .await
        .map(|deleted| {
            tracing::warn!(by = session.user, deleted, "console: the fleet's subscription was deleted and made again");
            format!(
                "Subscription {} deleted and made again with this fleet's clientState. Other boxes holding another clientState refuse its notifications until they join this box's fleet again.",
                deleted.as_deref().unwrap_or("(none)")
            )
        })
        .map_err(|e| crate::graph::subscription::explain(&e));
    answer(&web, &session, outcome)
}

/// Whether an acknowledgement on another desk acknowledges here too (`silence` = `on`).
pub fn fleet_acknowledgements(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let on = field(&form, "silence") == "on";
    let outcome = crate::outputs::peers::link::set_silences(&web.context.store, on)
        .map(|()| {
            tracing::warn!(by = session.user, silence = on, "console: acknowledgements on other desks");
            if on {
                "An acknowledgement on another desk of the fleet now acknowledges the same call here too.".to_string()
            } else {
                "An acknowledgement on another desk is now only shown here; this desk keeps alerting until someone acknowledges here.".to_string()
            }
        })
        .map_err(|e| format!("The choice could not be saved: {e}"));
    answer(&web, &session, outcome)
}

/// Joins another box's fleet from here (`from`: its console's address, `code`: the join code
/// it shows): the fleet's secrets and keys are fetched over HTTPS pinned by the code, stored,
/// and the running link restarted with them.
pub async fn fleet_join(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    use crate::outputs::peers::joining::{self, Joiner};
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let joiner = Joiner {
        name: web.context.device_id.clone(),
        console: crate::web::fleet_join::served_certificate_sha256(&web)
            .zip(web.port.get().copied())
            .map(|(sha256, port)| (port, sha256)),
    };
    let joined = joining::join(
        &web.context.store,
        field(&form, "from"),
        field(&form, "code"),
        &joiner,
    )
    .await;
    let outcome = match joined {
        Ok(fleet) => {
            tracing::warn!(by = session.user, fleet, "console: this box joined a fleet");
            if let Some(peers) = &web.context.peers {
                peers.reload();
            }
            match &web.context.cloud {
                Some(control) => {
                    control.restart().await;
                    Ok(format!("This box joined fleet {fleet} and its link restarted with the fleet's secrets: it adopts the fleet's subscription."))
                }
                None => Ok(format!("This box joined fleet {fleet}.")),
            }
        }
        Err(error) => {
            tracing::warn!(by = session.user, %error, "console: joining a fleet failed");
            Err(format!("Not joined: {error}."))
        }
    };
    answer(&web, &session, outcome)
}

/// The console's address as a box on the network would use it.
fn web_address(web: &Web) -> String {
    match web.config.listen.port() {
        443 => "https://<this box>".to_string(),
        port => format!("https://<this box>:{port}"),
    }
}

/// [`admit`], and the running subscription keeper the fleet's actions go through (or the
/// page saying there is none yet).
#[allow(clippy::result_large_err)]
fn admit_with_keeper(
    web: &Web,
    caller: &Caller,
    form: &Form,
) -> Result<(Session, Arc<crate::graph::subscription::SubscriptionKeeper>), Response> {
    let session = admit(web, caller, form)?;
    let keeper = web
        .context
        .cloud
        .as_ref()
        .and_then(|control| control.handles.borrow().keeper.clone());
    match keeper {
        Some(keeper) => Ok((session, keeper)),
        None => Err(answer(
            web,
            &session,
            Err("No subscription is kept on this box yet: set it up first.".into()),
        )),
    }
}

/// The checks every settings form starts with: an admin's session and its CSRF token.
#[allow(clippy::result_large_err)]
fn admit(web: &Web, caller: &Caller, form: &Form) -> Result<Session, Response> {
    let session = web.require(caller, Role::Admin, Audience::Page)?;
    if !csrf_ok(&session, form) {
        return Err(respond::csrf_refused());
    }
    Ok(session)
}

/// The form's `role` field.
fn role_of(form: &Form) -> Result<Role, String> {
    match field(form, "role") {
        "admin" => Ok(Role::Admin),
        "guard" => Ok(Role::Guard),
        _ => Err("The role is guard or admin.".into()),
    }
}

/// The page again with what a form did: a notice (200) or a problem (400).
fn answer(web: &Web, session: &Session, outcome: Result<String, String>) -> Response {
    match outcome {
        Ok(notice) => page(web, session, Some(notice), None, StatusCode::OK),
        Err(problem) => page(web, session, None, Some(problem), StatusCode::BAD_REQUEST),
    }
}

/// Adds (or replaces) a user.
pub fn add_user(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let user = field(&form, "user");
    let outcome = role_of(&form).and_then(|role| {
        let password = form.get("password").map(String::as_str).unwrap_or("");
        let confirm = form.get("confirm").map(String::as_str).unwrap_or("");
        password::check_new(password, confirm)
            .and_then(|()| web.users.set(user, password, role))
            .map_err(|problem| problem.to_string())?;
        web.sessions.remove_user(user);
        tracing::info!(
            by = session.user,
            user,
            role = role.name(),
            "console: user set"
        );
        Ok(format!("{user} can now log in as {}.", role.name()))
    });
    answer(&web, &session, outcome)
}

/// Makes an API token and shows it once.
pub fn create_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "name");
    let made = role_of(&form).and_then(|role| {
        web.tokens
            .create(name, role, &session.user, chrono::Utc::now())
            .map(|token| (token, role))
            .map_err(|problem| problem.to_string())
    });
    match made {
        Ok((token, role)) => {
            tracing::info!(
                by = session.user,
                name,
                role = role.name(),
                "console: API token created"
            );
            page_with_token(
                &web,
                &session,
                Some(format!(
                    "API token {name} created. Copy it now: it is not shown again."
                )),
                None,
                Some(token),
                StatusCode::OK,
            )
        }
        Err(problem) => answer(&web, &session, Err(problem)),
    }
}

/// Revokes an API token.
pub fn revoke_token(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "name");
    let outcome = web
        .tokens
        .revoke(name)
        .map(|()| {
            tracing::info!(by = session.user, name, "console: API token revoked");
            format!("API token {name} revoked.")
        })
        .map_err(|problem| problem.to_string());
    answer(&web, &session, outcome)
}

/// Chooses the time zone times are shown in (an IANA name; empty: the configuration file's or
/// the system's again). Kept in the store, so it outlasts a restart and wins over the file.
pub fn set_time_zone(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match admit(&web, &caller, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let name = field(&form, "time_zone");
    let store = &web.context.store;
    let outcome = if name.is_empty() {
        store
            .settings
            .remove(crate::local_time::SAVED_KEY)
            .map_err(|e| e.to_string())
            .map(|_| {
                crate::local_time::chosen(None, web.file_time_zone.as_deref())
                    .unwrap_or_else(crate::local_time::Zone::system)
            })
    } else {
        crate::local_time::Zone::named(name)
            .map_err(|problem| format!("Time zone: {problem}."))
            .and_then(|zone| {
                store
                    .settings
                    .insert(
                        crate::local_time::SAVED_KEY,
                        &serde_json::json!(zone.name()),
                    )
                    .map_err(|e| e.to_string())
                    .map(|()| zone)
            })
    }
    .map(|zone| {
        let shown = zone.format(chrono::Utc::now());
        tracing::info!(
            by = session.user,
            zone = zone.name(),
            "console: time zone set"
        );
        let said = format!("Times are now shown in {} (now {shown}).", zone.name());
        crate::local_time::set_current(zone);
        said
    });
    answer(&web, &session, outcome)
}
