//! Graph's routing: bearer-token check (401 `InvalidAuthenticationToken`), permission check
//! (403), then `/me` (G.1), subscriptions (B) and chats (D, G.6).

use std::sync::Arc;

use serde_json::json;

use super::errors;
use super::identity::{AccessToken, TokenCheck};
use super::publish;
use super::subscriptions::publishing_validation_failed;
use super::web::{json_response, Resp};
use super::{GraphRequest, Inner};

/// Delegated permissions that allow reading chats and subscribing to chat messages (B.1, D.1).
const CHAT_SCOPES: &[&str] = &["Chat.Read", "Chat.ReadWrite"];
/// Delegated permissions that allow `GET /me`.
const ME_SCOPES: &[&str] = &[
    "user.read",
    "user.readwrite",
    "user.readbasic.all",
    "user.read.all",
];

pub async fn handle(inner: &Arc<Inner>, req: &GraphRequest<'_>) -> Resp {
    let token = inner
        .state()
        .identity
        .check_bearer(req.header("authorization"));
    let caller = match token {
        TokenCheck::Valid(t) => t,
        TokenCheck::Missing => return unauthorized(req, "Access token is empty."),
        TokenCheck::Unknown => {
            return unauthorized(req, "CompactToken parsing failed with error code: 80049217")
        }
        TokenCheck::Expired => {
            return unauthorized(req, "Lifetime validation failed, the token is expired.")
        }
    };
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    // An app-only token (client credentials) carries roles, no delegated scopes: it reaches
    // the subscriptions, whose own rules decide (emergency call events, B.10); nothing else
    // here is open to it.
    if caller.app_only && segments.first() != Some(&"subscriptions") {
        return errors::graph(
            403,
            "Forbidden",
            "Missing role permissions on the request. API requires one of 'Chat.Read.All, User.Read.All'. Application permissions on the request do not include them.",
            req.client_request_id(),
        );
    }
    let scopes = caller.scopes.clone();
    let needs = if segments == ["me"] {
        ME_SCOPES
    } else {
        CHAT_SCOPES
    };
    if !caller.app_only
        && !scopes
            .iter()
            .any(|s| needs.iter().any(|n| n.eq_ignore_ascii_case(s)))
    {
        return errors::graph(
            403,
            "Forbidden",
            &format!(
                "Missing scope permissions on the request. API requires one of '{}'. Scopes on the request '{}'",
                needs.join(", "),
                scopes.join(" ")
            ),
            req.client_request_id(),
        );
    }
    let opts = &inner.options;
    match (req.method, segments.as_slice()) {
        ("GET", ["me"]) => json_response(
            200,
            &json!({
                "@odata.context": format!("{}/$metadata#users/$entity", req.graph_url),
                "businessPhones": [],
                "displayName": opts.user.display_name,
                "givenName": null,
                "jobTitle": null,
                "mail": opts.user.user_principal_name,
                "mobilePhone": null,
                "officeLocation": null,
                "preferredLanguage": null,
                "surname": null,
                "userPrincipalName": opts.user.user_principal_name,
                "id": opts.user.id,
            }),
            &[],
        ),
        ("POST", ["subscriptions"]) => create_subscription(inner, req, &caller).await,
        ("GET", ["subscriptions"]) => inner.state().subscriptions.list(req, opts, &caller),
        ("GET", ["subscriptions", id]) => inner.state().subscriptions.get(req, opts, id, &caller),
        ("PATCH", ["subscriptions", id]) => {
            inner.state().subscriptions.update(req, opts, id, &caller)
        }
        ("DELETE", ["subscriptions", id]) => inner.state().subscriptions.delete(req, id, &caller),
        ("POST", ["subscriptions", id, "reauthorize"]) => {
            inner.state().subscriptions.reauthorize(req, id, &caller)
        }
        ("GET", ["me", "chats"]) => inner.state().chats.list_chats(req, opts),
        ("GET", ["chats", chat]) => inner.state().chats.get_chat(req, opts, chat),
        ("GET", ["chats", chat, "messages"]) => inner.state().chats.list_messages(req, opts, chat),
        // D.1: the message GET under /chats, /me/chats and /users/{id|upn}/chats.
        ("GET", ["chats", chat, "messages", message])
        | ("GET", ["me", "chats", chat, "messages", message])
        | ("GET", ["users", _, "chats", chat, "messages", message]) => {
            inner.state().chats.get_message(req, chat, message)
        }
        (_, ["subscriptions"] | ["subscriptions", _] | ["me"] | ["me", "chats"]) => errors::graph(
            405,
            "MethodNotAllowed",
            "The HTTP method is not allowed on this resource.",
            req.client_request_id(),
        ),
        _ => errors::graph(
            400,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segments.first().copied().unwrap_or_default()
            ),
            req.client_request_id(),
        ),
    }
}

fn unauthorized(req: &GraphRequest, message: &str) -> Resp {
    errors::graph(
        401,
        "InvalidAuthenticationToken",
        message,
        req.client_request_id(),
    )
}

/// `POST /subscriptions` (B.5): validate, check Graph can publish into the hubs, publish the
/// validation message (B.6), store, 201.
async fn create_subscription(
    inner: &Arc<Inner>,
    req: &GraphRequest<'_>,
    caller: &AccessToken,
) -> Resp {
    let sub = match inner
        .state()
        .subscriptions
        .validate_create(req, &inner.options, caller)
    {
        Ok(sub) => sub,
        Err(e) => return e.respond(req),
    };
    for hub in std::iter::once(&sub.hub).chain(sub.lifecycle_hub.as_ref()) {
        if !inner.publisher.can_publish(hub).await {
            return publishing_validation_failed(hub).respond(req);
        }
    }
    inner
        .publisher
        .deliver(vec![publish::validation(&sub.hub)])
        .await;
    inner.state().subscriptions.insert(req, &inner.options, sub)
}
