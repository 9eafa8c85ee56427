//! `/chats`: the service account's recent chat activity (every message Beacon has seen,
//! newest first), so a guard can see that messages arrive at all.

use askama::Template;
use warp::reply::Response;

use super::Layout;
use crate::web::records::{chat_lines, ChatLine};
use crate::web::respond;
use crate::web::respond::Audience;
use crate::web::session::Role;
use crate::web::state::{Caller, Web};

/// Messages shown.
const LIMIT: usize = 200;

#[derive(Template)]
#[template(path = "chats.html")]
struct ChatsPage {
    layout: Layout,
    lines: Vec<ChatLine>,
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    let session = match web.require(caller, Role::Guard, Audience::Page) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    respond::page(&ChatsPage {
        layout: Layout::new("Chat activity", "chats", &session),
        lines: chat_lines(&web.context.store, None, LIMIT),
    })
}
