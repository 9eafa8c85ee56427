//! `POST /fleet/peer`: another box of this fleet telling this one it is alive, what it knows
//! of the members and what was acknowledged on it ([`crate::outputs::peers`]). No session: the
//! message is signed with the fleet's peer key, and only over HTTPS. A refusal is answered in
//! words and logged (the sender logs it too). A message that hands over the fleet's new
//! secrets (a rotation on the sender) restarts the cloud link with them.

use std::sync::Arc;

use chrono::Utc;
use warp::http::StatusCode;
use warp::reply::Response;

use super::respond;
use super::state::{Caller, Web};

/// See the module docs.
pub fn receive(web: Arc<Web>, caller: Caller, body: hyper::body::Bytes) -> Response {
    if !caller.peer.tls {
        return respond::text(
            StatusCode::FORBIDDEN,
            "Fleet messages need this Beacon's console over HTTPS.",
        );
    }
    let Some(peers) = &web.context.peers else {
        return respond::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "This Beacon does not talk to a fleet.",
        );
    };
    match peers.receive(&body, Utc::now()) {
        Ok(heard) if heard.rotated => {
            // The fleet's secrets and keys are new: the link takes them at its restart.
            if let Some(control) = web.context.cloud.clone() {
                tokio::spawn(async move { control.restart().await });
            }
            respond::text(StatusCode::OK, "New secrets taken.")
        }
        Ok(heard) => {
            tracing::debug!(from = heard.from, "fleet: status received");
            respond::text(StatusCode::OK, "Heard.")
        }
        Err(refusal) => {
            tracing::warn!(peer = %caller.peer.addr, %refusal, "fleet: message refused");
            respond::text(StatusCode::FORBIDDEN, &format!("Refused: {refusal}."))
        }
    }
}
