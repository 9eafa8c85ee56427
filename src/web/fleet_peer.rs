//! `POST /fleet/peer`: another box of this fleet telling this one it is alive, what it knows
//! of the members and what was acknowledged on it ([`crate::outputs::peers`]). No session: the
//! message is signed with the fleet's peer key, and only over HTTPS. A refusal is answered in
//! words and logged (the sender logs it too).

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
        Ok(from) => {
            tracing::debug!(from, "fleet: status received");
            respond::text(StatusCode::OK, "Heard.")
        }
        Err(refusal) => {
            tracing::warn!(peer = %caller.peer.addr, %refusal, "fleet: message refused");
            respond::text(StatusCode::FORBIDDEN, &format!("Refused: {refusal}."))
        }
    }
}
