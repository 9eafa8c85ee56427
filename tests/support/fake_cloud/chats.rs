//! Chats and chat messages (graph-teams.md D.1, D.2, G.6): the store tests post into, and
//! Graph's read endpoints over it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::errors::{self, GraphError};
use super::web::{json_response, message_time, Resp};
use super::{FakeOptions, GraphRequest};

/// `$top` maximum for chats and chat messages [INF: Graph's documented page limit is 50].
const MAX_TOP: usize = 50;

pub struct Chat {
    pub id: String,
    pub topic: Option<String>,
    pub chat_type: String,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    /// In posting order.
    messages: Vec<Value>,
    deleted: BTreeSet<String>,
}

#[derive(Default)]
pub struct Chats {
    pub chats: BTreeMap<String, Chat>,
    next_id: u64,
}

fn not_found(req: &GraphRequest) -> Resp {
    errors::graph(404, "NotFound", "NotFound", req.client_request_id())
}

fn bad_query(req: &GraphRequest, message: &str) -> Resp {
    errors::graph(400, "BadRequest", message, req.client_request_id())
}

fn time_of(message: &Value, field: &str) -> Option<DateTime<Utc>> {
    message[field]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Chats {
    pub fn add_chat(&mut self, id: &str, topic: Option<&str>, chat_type: &str) {
        let now = Utc::now();
        self.chats.entry(id.to_string()).or_insert_with(|| Chat {
            id: id.to_string(),
            topic: topic.map(str::to_string),
            chat_type: chat_type.to_string(),
            created: now,
            last_updated: now,
            messages: Vec::new(),
            deleted: BTreeSet::new(),
        });
    }

    /// Stores a new message (the chat is created as a group chat when unknown). Missing
    /// `id`, `etag`, `chatId`, `messageType`, `createdDateTime`, `lastModifiedDateTime` are
    /// filled in. Returns the stored message.
    pub fn post(&mut self, chat_id: &str, mut message: Value) -> Value {
        self.add_chat(chat_id, None, "group");
        let now = Utc::now();
        if message["id"].as_str().is_none() {
            self.next_id += 1;
            message["id"] = json!(format!(
                "{}{:03}",
                now.timestamp_millis(),
                self.next_id % 1000
            ));
        }
        let id = message["id"].as_str().unwrap_or_default().to_string();
        for (field, value) in [
            ("etag", json!(id)),
            ("chatId", json!(chat_id)),
            ("messageType", json!("message")),
            ("createdDateTime", json!(message_time(now))),
            ("lastModifiedDateTime", json!(message_time(now))),
        ] {
            if message[field].is_null() {
                message[field] = value;
            }
        }
        let chat = self.chats.get_mut(chat_id).expect("chat just added");
        chat.messages.retain(|m| m["id"] != message["id"]);
        chat.deleted.remove(&id);
        chat.messages.push(message.clone());
        chat.last_updated = now;
        message
    }

    /// Applies `patch` (top-level fields) to a message and stamps `lastModifiedDateTime` and
    /// `lastEditedDateTime`. Returns the new message.
    pub fn edit(&mut self, chat_id: &str, message_id: &str, patch: &Value) -> Option<Value> {
        self.change(chat_id, message_id, |m| {
            if let (Some(target), Some(fields)) = (m.as_object_mut(), patch.as_object()) {
                for (k, v) in fields {
                    target.insert(k.clone(), v.clone());
                }
            }
            m["lastEditedDateTime"] = json!(message_time(Utc::now()));
        })
    }

    /// Soft-deletes a message (`deletedDateTime` set). Graph reads answer 404 afterwards.
    pub fn delete(&mut self, chat_id: &str, message_id: &str) -> Option<Value> {
        let message = self.change(chat_id, message_id, |m| {
            m["deletedDateTime"] = json!(message_time(Utc::now()));
        })?;
        let chat = self.chats.get_mut(chat_id)?;
        chat.deleted.insert(message_id.to_string());
        Some(message)
    }

    fn change(
        &mut self,
        chat_id: &str,
        message_id: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let chat = self.chats.get_mut(chat_id)?;
        if chat.deleted.contains(message_id) {
            return None;
        }
        let message = chat.messages.iter_mut().find(|m| m["id"] == message_id)?;
        f(message);
        let now = Utc::now();
        message["lastModifiedDateTime"] = json!(message_time(now));
        chat.last_updated = now;
        Some(message.clone())
    }

    fn live(chat: &Chat) -> impl Iterator<Item = &Value> {
        chat.messages
            .iter()
            .filter(|m| !chat.deleted.contains(m["id"].as_str().unwrap_or_default()))
    }

    /// `GET /chats/{chat-id}/messages/{message-id}` (D.1). Deleted messages are 404 in the fake
    /// [INF: Graph may instead return them with `deletedDateTime` set].
    pub fn get_message(&self, req: &GraphRequest, chat_id: &str, message_id: &str) -> Resp {
        let found = self
            .chats
            .get(chat_id)
            .and_then(|c| Self::live(c).find(|m| m["id"] == message_id));
        match found {
            Some(message) => {
                let mut body = message.clone();
                body["@odata.context"] = json!(format!(
                    "{}/$metadata#chats('{chat_id}')/messages/$entity",
                    req.graph_url
                ));
                json_response(200, &body, &[])
            }
            None => not_found(req),
        }
    }

    fn chat_json(&self, opts: &FakeOptions, chat: &Chat, expand: &[String]) -> Value {
        let mut body = json!({
            "id": chat.id,
            "topic": chat.topic,
            "createdDateTime": message_time(chat.created),
            "lastUpdatedDateTime": message_time(chat.last_updated),
            "chatType": chat.chat_type,
            "webUrl": format!("https://teams.microsoft.com/l/chat/{}/0?tenantId={}", chat.id, opts.tenant_id),
            "tenantId": opts.tenant_id,
            "onlineMeetingInfo": null,
        });
        if expand.iter().any(|e| e == "lastMessagePreview") {
            body["lastMessagePreview"] = chat.messages.last().map_or(Value::Null, |m| {
                json!({
                    "id": m["id"],
                    "createdDateTime": m["createdDateTime"],
                    "isDeleted": chat.deleted.contains(m["id"].as_str().unwrap_or_default()),
                    "messageType": m["messageType"],
                    "eventDetail": m.get("eventDetail").cloned().unwrap_or(Value::Null),
                    "body": m["body"],
                    "from": m["from"],
                })
            });
        }
        if expand.iter().any(|e| e == "members") {
            body["members"] = json!(members(opts, chat));
        }
        body
    }

    /// `GET /me/chats` with `$top`, `$expand=lastMessagePreview|members` and
    /// `$orderby=lastMessagePreview/createdDateTime desc` (G.6).
    pub fn list_chats(&self, req: &GraphRequest, opts: &FakeOptions) -> Resp {
        let query = match Query::parse(
            req,
            &["$top", "$expand", "$orderby", "$skiptoken", "$select"],
        ) {
            Ok(q) => q,
            Err(e) => return e.respond(req),
        };
        let mut chats: Vec<&Chat> = self.chats.values().collect();
        match query.orderby.as_deref() {
            None => chats.sort_by_key(|c| std::cmp::Reverse(c.last_updated)),
            Some("lastMessagePreview/createdDateTime desc") => chats.sort_by_key(|c| {
                std::cmp::Reverse(
                    c.messages
                        .last()
                        .and_then(|m| time_of(m, "createdDateTime")),
                )
            }),
            Some(other) => return bad_query(req, &format!("Unsupported $orderby '{other}'.")),
        }
        let items = chats
            .into_iter()
            .map(|c| self.chat_json(opts, c, &query.expand))
            .collect();
        req.paged("chats", items, query.top.unwrap_or(opts.page_size))
    }

    /// `GET /chats/{chat-id}` (E.6 uses `?$expand=members`).
    pub fn get_chat(&self, req: &GraphRequest, opts: &FakeOptions, chat_id: &str) -> Resp {
        let query = match Query::parse(req, &["$expand", "$select"]) {
            Ok(q) => q,
            Err(e) => return e.respond(req),
        };
        match self.chats.get(chat_id) {
            Some(chat) => {
                let mut body = self.chat_json(opts, chat, &query.expand);
                body["@odata.context"] =
                    json!(format!("{}/$metadata#chats/$entity", req.graph_url));
                json_response(200, &body, &[])
            }
            None => not_found(req),
        }
    }

    /// `GET /chats/{chat-id}/messages` (G.6): newest first; `$top` ≤ 50; `$orderby`
    /// `lastModifiedDateTime desc` or `createdDateTime desc`; `$filter` on the same field with
    /// `gt`/`lt` joined by `and`.
    pub fn list_messages(&self, req: &GraphRequest, opts: &FakeOptions, chat_id: &str) -> Resp {
        let query = match Query::parse(
            req,
            &["$top", "$orderby", "$filter", "$skiptoken", "$select"],
        ) {
            Ok(q) => q,
            Err(e) => return e.respond(req),
        };
        let Some(chat) = self.chats.get(chat_id) else {
            return not_found(req);
        };
        let field = match query.orderby.as_deref() {
            None | Some("createdDateTime desc") => "createdDateTime",
            Some("lastModifiedDateTime desc") => "lastModifiedDateTime",
            Some(other) => return bad_query(req, &format!("Unsupported $orderby '{other}'.")),
        };
        let mut messages: Vec<&Value> = Self::live(chat).collect();
        messages.sort_by_key(|m| std::cmp::Reverse(time_of(m, field)));
        if let Some(filter) = &query.filter {
            for clause in filter.split(" and ") {
                let parts: Vec<&str> = clause.split_whitespace().collect();
                let (op, at) = match parts.as_slice() {
                    [f, op @ ("gt" | "lt"), value] if *f == field => {
                        match DateTime::parse_from_rfc3339(value) {
                            Ok(t) => (*op, t.with_timezone(&Utc)),
                            Err(_) => {
                                return bad_query(req, &format!("Invalid $filter value '{value}'."))
                            }
                        }
                    }
                    _ => return bad_query(req, &format!("Unsupported $filter '{filter}'.")),
                };
                messages.retain(|m| {
                    time_of(m, field).is_some_and(|t| if op == "gt" { t > at } else { t < at })
                });
            }
        }
        let items = messages.into_iter().cloned().collect();
        req.paged(
            &format!("chats('{chat_id}')/messages"),
            items,
            query.top.unwrap_or(opts.page_size),
        )
    }
}

/// The service account plus everyone who posted, as `aadUserConversationMember`s.
fn members(opts: &FakeOptions, chat: &Chat) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |id: &str, name: &str| {
        if seen.insert(id.to_string()) {
            out.push(json!({
                "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "id": super::web::guid(),
                "roles": ["owner"],
                "displayName": name,
                "userId": id,
                "tenantId": opts.tenant_id,
            }));
        }
    };
    add(&opts.user.id, &opts.user.display_name);
    for m in &chat.messages {
        if let Some(id) = m["from"]["user"]["id"].as_str() {
            add(
                id,
                m["from"]["user"]["displayName"]
                    .as_str()
                    .unwrap_or_default(),
            );
        }
    }
    out
}

/// The OData query options of a list request.
struct Query {
    top: Option<usize>,
    expand: Vec<String>,
    orderby: Option<String>,
    filter: Option<String>,
}

impl Query {
    /// Refuses options outside `allowed` with 400, as Graph does for unsupported ones [INF].
    fn parse(req: &GraphRequest, allowed: &[&str]) -> Result<Query, GraphError> {
        let mut q = Query {
            top: None,
            expand: Vec::new(),
            orderby: None,
            filter: None,
        };
        for (key, value) in &req.params {
            if !allowed.contains(&key.as_str()) {
                return Err(GraphError::new(
                    400,
                    "BadRequest",
                    format!(
                        "Query option '{key}' is not allowed. Allowed: {}.",
                        allowed.join(", ")
                    ),
                ));
            }
            match key.as_str() {
                "$top" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_TOP).contains(&n) => q.top = Some(n),
                    _ => return Err(GraphError::new(400, "BadRequest", format!("Invalid page size specified: '{value}'. Must be between 1 and {MAX_TOP} inclusive."))),
                },
                "$expand" => q.expand = value.split(',').map(|s| s.trim().to_string()).collect(),
                "$orderby" => q.orderby = Some(value.trim().to_string()),
                "$filter" => q.filter = Some(value.trim().to_string()),
                _ => {}
            }
        }
        Ok(q)
    }
}
