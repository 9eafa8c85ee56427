//! `POST /fleet/join`: a new box joining this box's fleet (issue 17). It presents the secret
//! part of a one-time join code ([`super::join_code`]) — having checked this console's
//! certificate against the code's pin first — and gets the fleet's secrets and keys
//! ([`crate::graph::fleet::Bundle`]). No session: the code is the authentication, and only
//! over HTTPS. Refusals are in words; the members who joined are kept for the settings page.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;

use super::respond;
use super::state::{Caller, Web};
use crate::graph::fleet::Bundle;
use crate::store::Store;

/// Where the boxes that joined through this one are listed (settings tree).
const MEMBERS_KEY: &str = "fleet/members";

/// What a joining box sends.
#[derive(Deserialize)]
pub struct JoinRequest {
    /// The code's secret part (or the whole code).
    pub code: String,
    /// The joining box's name (its device id), for the members list.
    pub name: String,
}

/// A box that joined through this one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub name: String,
    pub joined_at: DateTime<Utc>,
}

/// The boxes that joined through this one, oldest first.
pub fn members(store: &Store) -> Vec<Member> {
    store
        .settings
        .get(MEMBERS_KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn add_member(store: &Store, member: Member) -> Result<(), crate::store::StoreError> {
    let mut all = members(store);
    all.retain(|m| m.name != member.name);
    all.push(member);
    store
        .settings
        .insert(MEMBERS_KEY, &serde_json::json!(all))?;
    store.flush()
}

/// SHA-256 of the first certificate in a PEM file (what a join code pins).
pub fn certificate_sha256(pem_file: &Path) -> Option<[u8; 32]> {
    let pem = std::fs::read(pem_file).ok()?;
    let der = openssl::x509::X509::from_pem(&pem).ok()?.to_der().ok()?;
    Some(openssl::sha::sha256(&der))
}

/// See the module docs.
pub fn join(web: Arc<Web>, caller: Caller, body: hyper::body::Bytes) -> Response {
    if !caller.peer.tls || web.certificate_sha256.is_none() {
        return respond::text(
            StatusCode::FORBIDDEN,
            "Joining a fleet needs this Beacon's console over HTTPS.",
        );
    }
    let Ok(request) = serde_json::from_slice::<JoinRequest>(&body) else {
        return respond::text(
            StatusCode::BAD_REQUEST,
            "Not a join request: JSON with the join code and the joining box's name.",
        );
    };
    let name: String = request
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let now = Utc::now();
    let redeemed = match web.join_codes.lock() {
        Ok(mut codes) => codes.redeem(&request.code, now),
        Err(_) => Err(super::join_code::JoinRefusal::NoneOpen),
    };
    if let Err(refusal) = redeemed {
        tracing::warn!(peer = %caller.peer.addr, name, %refusal, "fleet join refused");
        return respond::text(StatusCode::FORBIDDEN, &format!("Refused: {refusal}."));
    }
    let store = &web.context.store;
    let bundle = match Bundle::of(store) {
        Ok(bundle) => bundle,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the fleet's secrets for a joining box");
            return respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This Beacon cannot read its fleet's secrets (see its log).",
            );
        }
    };
    if let Err(e) = add_member(
        store,
        Member {
            name: name.clone(),
            joined_at: now,
        },
    ) {
        tracing::error!(error = %e, "cannot record the fleet member");
    }
    tracing::info!(peer = %caller.peer.addr, name, fleet = bundle.fleet_id, "a box joined the fleet");
    let mut response = respond::json(&bundle);
    response.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    response
}
