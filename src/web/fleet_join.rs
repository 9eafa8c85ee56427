//! `POST /fleet/join`: a new box joining this box's fleet (issue 17). It presents the secret
//! part of a one-time join code ([`super::join_code`]) — having checked this console's
//! certificate against the code's pin first — and gets the fleet's secrets and keys
//! ([`crate::graph::fleet::Bundle`]). No session: the code is the authentication, and only
//! over HTTPS. Refusals are in words; the members who joined are kept for the settings page.
//! The joining box says where its console is (port and certificate pin; the address is the
//! one it connects from) and gets this box's name and the other members it knows, so the
//! members reach each other ([`crate::outputs::peers`]).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;

use super::join_code::JoinCodes;
use super::respond;
use super::state::{Caller, Web};
use crate::graph::fleet::{Bundle, MemberAddress};
use crate::outputs::display::JoinCodeInfo;
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
    /// Its console's port and certificate pin, when it serves HTTPS.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub pin: Option<String>,
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

/// Puts the open join code (or none, once used or burnt) on the display.
pub fn show_on_display(web: &Web, codes: &JoinCodes, now: DateTime<Utc>) {
    web.context.status.join_code.send_replace(
        codes
            .open(now)
            .map(|(code, expires)| JoinCodeInfo { code, expires }),
    );
}

/// SHA-256 of the certificate the console serves now (what a join code pins); `None` over
/// plain HTTP or when the file cannot be read. Read each time: a renewal replaces it while
/// the console runs.
pub fn served_certificate_sha256(web: &Web) -> Option<[u8; 32]> {
    web.certificate_file
        .as_deref()
        .and_then(crate::outputs::peers::pinned::certificate_sha256)
}

/// See the module docs.
pub fn join(web: Arc<Web>, caller: Caller, body: hyper::body::Bytes) -> Response {
    if !caller.peer.tls || served_certificate_sha256(&web).is_none() {
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
        Ok(mut codes) => {
            let redeemed = codes.redeem(&request.code, now);
            show_on_display(&web, &codes, now);
            redeemed
        }
        Err(_) => Err(super::join_code::JoinRefusal::NoneOpen),
    };
    if let Err(refusal) = redeemed {
        tracing::warn!(peer = %caller.peer.addr, name, %refusal, "fleet join refused");
        return respond::text(StatusCode::FORBIDDEN, &format!("Refused: {refusal}."));
    }
    let store = &web.context.store;
    let mut bundle = match Bundle::of(store) {
        Ok(bundle) => bundle,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the fleet's secrets for a joining box");
            return respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This Beacon cannot read its fleet's secrets (see its log).",
            );
        }
    };
    let address = request
        .port
        .zip(
            request
                .pin
                .filter(|p| p.len() == 26 && p.chars().all(|c| c.is_ascii_alphanumeric())),
        )
        .map(|(port, pin)| MemberAddress {
            name: name.clone(),
            url: format!("https://{}", SocketAddr::new(caller.peer.addr.ip(), port)),
            pin: pin.to_ascii_uppercase(),
        });
    bundle.name = Some(web.context.device_id.clone());
    bundle.members = match &web.context.peers {
        Some(peers) => peers.addresses(),
        None => crate::outputs::peers::link::load_members(store).addresses(),
    };
    bundle.members.retain(|m| m.name != name);
    if let Some(address) = address {
        let learnt = match &web.context.peers {
            Some(peers) => peers.learn(address),
            None => crate::outputs::peers::link::remember_members(
                store,
                &web.context.device_id,
                vec![address],
                false,
            ),
        };
        if let Err(e) = learnt {
            tracing::error!(error = %e, "cannot record where the fleet member is");
        }
    }
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
