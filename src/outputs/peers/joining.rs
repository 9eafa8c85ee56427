//! The joining box's side of joining a fleet (issue 17), shared by `beacon fleet-join` and the
//! settings page of a running box: with the one-time code shown on a member's console, it
//! connects to that console over HTTPS, checks its certificate against the code's pin
//! *before* sending anything (so a box in the middle never sees the code), presents the code
//! with where its own console is (port and certificate pin, so the members can reach it),
//! and stores what it gets: the fleet's secrets and rich-notification keys (the store's
//! secrets tree, 0600) and the members to talk to (the answering box and those it knows).

use std::time::Duration;

use super::link::remember_members;
use super::pinned;
use crate::graph::fleet::{Bundle, MemberAddress};
use crate::store::{Store, StoreError};
use crate::web::join_code;

/// Why joining failed, in words.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the join code is incomplete: copy all of it, with the part after the dot (XXXX-XXXX-XXXX.PIN)")]
    Code,
    #[error("the other box's address must start with https:// (the join code pins its HTTPS certificate)")]
    Url,
    #[error(
        "could not reach {from} over HTTPS with the certificate the join code names: {reason}"
    )]
    Connect { from: String, reason: String },
    #[error("{from} refused: {reason}")]
    Refused { from: String, reason: String },
    #[error("{from} answered something that is not a fleet's secrets")]
    Answer { from: String },
    #[error("this box cannot start joining: {0}")]
    Open(String),
    #[error("the fleet's secrets could not be stored: {0}")]
    Store(#[from] StoreError),
}

/// This box, as it presents itself to the box it joins through.
#[derive(Debug, Clone)]
pub struct Joiner {
    /// Its name (device id).
    pub name: String,
    /// Its console's port and certificate SHA-256, when it serves HTTPS (without them the
    /// members cannot reach it: it hears of acknowledgements only through what it sends).
    pub console: Option<(u16, [u8; 32])>,
}

/// Joins the fleet of the box at `from` with `code` and stores what it gets in `store`.
/// Returns the fleet's id.
pub async fn join(
    store: &Store,
    from: &str,
    code: &str,
    joiner: &Joiner,
) -> Result<String, JoinError> {
    let (secret, pin) = join_code::split(code).ok_or(JoinError::Code)?;
    let from = from.trim().trim_end_matches('/').to_string();
    if !from.starts_with("https://") {
        return Err(JoinError::Url);
    }
    let bundle = fetch(&from, &secret, &pin, joiner).await?;
    install(store, &bundle, &from, &pin, &joiner.name)?;
    Ok(bundle.fleet_id)
}

/// Asks `from` for the fleet's bundle over HTTPS pinned to `pin`.
async fn fetch(from: &str, secret: &str, pin: &str, joiner: &Joiner) -> Result<Bundle, JoinError> {
    let connect = |reason: String| JoinError::Connect {
        from: from.to_string(),
        reason,
    };
    let client = pinned::client(pin, Duration::from_secs(30)).map_err(connect)?;
    let mut request = serde_json::json!({"code": secret, "name": joiner.name});
    if let Some((port, sha256)) = &joiner.console {
        request["port"] = serde_json::json!(port);
        request["pin"] = serde_json::json!(join_code::pin(sha256));
    }
    let response = client
        .post(format!("{from}/fleet/join"))
        .json(&request)
        .send()
        .await
        .map_err(|e| connect(pinned::chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let reason = response.text().await.unwrap_or_default();
        return Err(JoinError::Refused {
            from: from.to_string(),
            reason: format!("{status}: {}", reason.chars().take(300).collect::<String>()),
        });
    }
    response
        .json::<Bundle>()
        .await
        .map_err(|_| JoinError::Answer {
            from: from.to_string(),
        })
}

/// Stores the fleet's secrets and keys in place of this box's, and the members to talk to.
fn install(
    store: &Store,
    bundle: &Bundle,
    from: &str,
    pin: &str,
    me: &str,
) -> Result<(), JoinError> {
    if !super::install::install_secrets(store, bundle)? {
        return Err(JoinError::Answer {
            from: from.to_string(),
        });
    }
    let mut members = bundle.members.clone();
    if let Some(name) = &bundle.name {
        members.push(MemberAddress {
            name: name.clone(),
            url: from.to_string(),
            pin: pin.to_string(),
        });
    }
    remember_members(store, me, members, true)?;
    store.flush()?;
    Ok(())
}
